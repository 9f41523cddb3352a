"""Where a supernet weight step goes: torch.profiler on one warm step.

Usage: python tools/analysis/profile_step.py [VARIANT] [benchmark_search
       flags: --crop 129x129 --batch 2 --filter-multiplier F ...]

Prints the op table and the self time grouped by kind (convolutions, BN,
copies / views / allocations, elementwise, ...) and what lies outside any op
(Python, autograd engine). VARIANT is one of benchmark_search's (default
``fused``); the step is the one benchmark_search times.
"""
import collections
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

#: (kind, substrings of the lower-cased op name), first match wins
KINDS = (
    ('conv backward', ('convolution_backward', )),
    ('conv forward', ('conv', )),
    ('BN backward', ('batch_norm_backward', )),
    ('BN forward', ('batch_norm', )),
    ('copies, views, allocations',
     ('copy_', 'cat', 'contiguous', 'clone', 'repeat', 'empty', '::to',
      'index', 'slice', 'view', 'reshape', 'stack', 'as_strided', 'expand',
      'narrow', 'select', 'unsqueeze', 'permute', 'resize', 'zero', 'fill',
      'new_', '_to_copy')),
    ('ReLU', ('relu', 'threshold')),
    ('pooling', ('pool', )),
    ('elementwise (α/β weighting, sums)', ('mul', 'add', 'sum', 'div',
                                           'sub')),
    ('optimizer', ('sgd', 'foreach', 'optim')),
    ('resize', ('upsample', 'interp')),
)


def kind_of(name):
    name = name.lower()
    return next((k for k, keys in KINDS if any(s in name for s in keys)),
                'other')


def main(argv=None):
    import torch
    from torch.profiler import ProfilerActivity, profile

    from benchmark_search import VARIANTS, parse_args, search_steps
    argv = list(sys.argv[1:] if argv is None else argv)
    variant = argv.pop(0) if argv and argv[0] in VARIANTS else 'fused'
    args = parse_args(['--crop', '129x129', '--batch', '2'] + argv)
    steps, batch, _ = search_steps(args, variant, 'cpu')

    def weight_step():
        steps.weight_step(batch)

    weight_step()  # warm-up: oneDNN primitives are created once
    weight_step()
    t = time.perf_counter()
    weight_step()
    plain = time.perf_counter() - t
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        weight_step()
        profiled = time.perf_counter() - t
    events = prof.key_averages()
    print(events.table(sort_by='self_cpu_time_total', row_limit=25))
    times, calls = collections.Counter(), collections.Counter()
    for e in events:
        times[kind_of(e.key)] += e.self_cpu_time_total / 1e6
        calls[kind_of(e.key)] += e.count
    total = sum(times.values())
    print(f'{variant} weight step, crop {args.crop[0]}x{args.crop[1]}, '
          f'batch {args.batch}, {torch.get_num_threads()} threads: '
          f'{plain:.3f} s ({profiled:.3f} s profiled), {total:.3f} s in '
          f'{sum(calls.values())} op calls')
    for kind, seconds in times.most_common():
        print(f'  {kind:36s} {seconds:7.3f} s {100 * seconds / total:5.1f}%'
              f'  {calls[kind]} calls')
    print(f'  {"outside any op (Python, autograd)":36s} '
          f'{profiled - total:7.3f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
