"""How many aten ops one supernet step dispatches (issue 32).

Usage: python tools/analysis/count_ops.py [--variants fused per-edge ...]
       [--config CONFIG] [--crop 129x129] [--batch 2]
       [--filter-multiplier 8] [--num-layers 12] [--top 25] [--json PATH]

On a GPU every op is a kernel launch of several microseconds whatever its
size, so the op count bounds a step's speed there; on a CPU it shows what
the step is made of. Counts are deterministic: they need no quiet machine.

The steps counted are the search loop's own (``SearchSteps``, built from the
config as ``benchmark_search.py`` builds the steps it times: the config's
optimizers and ``train_cfg`` remedies, ``--amp`` as tools/search.py sets
it): for each variant one warm-up weight step and α/β step run, then one
more of each is counted with a ``TorchDispatchMode``: every aten op that
reaches the dispatcher (data preprocessing, forward, loss, backward,
optimizer), split into views (ops whose output aliases their input without
writing it: ``view``, ``slice``, ``select``, ``expand``, ... free on any
device) and the rest. The weight step is the one every iteration of a search
runs (forward + loss + backward + SGD on the weights), the α/β step the one
it adds from ``arch_start_epoch`` on (the loss on another batch, its
gradient w.r.t. α/β only, weights frozen, and the architecture optimizer's
step).
"""
import collections
import json
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [p for p in (HERE, osp.dirname(osp.dirname(HERE)))
                if p not in sys.path]

from benchmark_search import (VARIANTS, add_supernet_args,  # noqa: E402
                              search_steps)

from mmseg_autodeeplab.analysis import OneLineParser  # noqa: E402
from mmseg_autodeeplab.utils import exit_with_error  # noqa: E402


def is_view(op):
    """True for an op overload whose output aliases an input it does not
    write (no data moves: free on any device)."""
    return bool(getattr(op, 'is_view', False))


def count_ops(step_fn):
    """Run ``step_fn()`` once and count the aten ops it dispatches.

    Args:
        step_fn (Callable[[], Any]): the step; its autograd backward runs on
            this thread (CPU), so its ops are counted too.

    Returns:
        collections.Counter: ``{op overload: calls}``, e.g.
        ``{torch.ops.aten.convolution.default: 12, ...}``.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = collections.Counter()

    class _Count(TorchDispatchMode):

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[func] += 1
            return func(*args, **(kwargs or {}))

    with _Count():
        step_fn()
    return counts


def split(counts):
    """``(non-view calls, view calls)`` of a :func:`count_ops` result."""
    view = sum(n for op, n in counts.items() if is_view(op))
    return sum(counts.values()) - view, view


def count_kernels(step_fn):
    """CUDA kernels launched by ``step_fn()`` (torch.profiler's device
    events), after a synchronisation."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step_fn()
        torch.cuda.synchronize()
    return sum(e.count for e in prof.key_averages()
               if e.device_type == torch.autograd.DeviceType.CUDA)


def measure(args, variant, device='cpu'):
    """:func:`count_ops` of one warm weight step and one warm α/β step of
    ``variant`` (``args``: the flags of ``add_supernet_args``):
    ``({'weight': Counter, 'arch': Counter}, kernels)``; ``kernels``:
    :func:`count_kernels` of each step on CUDA, else None."""
    import torch
    torch.manual_seed(0)
    search, batch_a, batch_b = search_steps(args, variant, device)
    steps = dict(weight=lambda: search.weight_step(batch_a),
                 arch=lambda: search.arch_step(batch_b))
    for step in steps.values():  # warm-up: lazily built state
        step()
    counts = {name: count_ops(step) for name, step in steps.items()}
    kernels = None
    if device == 'cuda':
        kernels = {name: count_kernels(step) for name, step in steps.items()}
    return counts, kernels


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0])
    add_supernet_args(p, 129)
    p.add_argument('--variants', nargs='+', default=['fused'],
                   choices=sorted(VARIANTS))
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                   help='cuda: also count the CUDA kernels each step '
                   'launches (torch.profiler)')
    p.add_argument('--top', type=int, default=25,
                   help='print the TOP most frequent non-view ops per step '
                   '(0: none)')
    p.add_argument('--json', default=None, metavar='PATH',
                   help='write every count to PATH')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        exit_with_error(f'config {args.config!r} not found')
    if args.batch < 2:  # as benchmark_search.py
        exit_with_error('--batch must be >= 2 (BN in the ASPP image pooling '
                        'needs more than one value per channel)')
    crop = args.crop
    result = {}
    rows = []
    for variant in args.variants:
        steps, kernels = measure(args, variant, args.device)
        result[variant] = {}
        for step, counts in steps.items():
            ops, view = split(counts)
            launched = kernels[step] if kernels else None
            result[variant][step] = dict(
                ops=ops, views=view, cuda_kernels=launched,
                counts={str(op): n for op, n in counts.most_common()})
            rows.append((variant, step, ops, view,
                         '-' if launched is None else f'{launched:,}'))
            if args.top:
                print(f'== {variant}, {step} step: {ops} ops, {view} views; '
                      f'the {args.top} most frequent non-view ops')
                shown = [(op, n) for op, n in counts.most_common()
                         if not is_view(op)][:args.top]
                for op, n in shown:
                    print(f'  {n:8d}  {op}')
    print(f'ops dispatched per step, crop {crop[0]}x{crop[1]}, batch '
          f'{args.batch}, {args.device} ({args.config})')
    print('| variant | step | ops (not views) | views | CUDA kernels |')
    print('|---|---|---:|---:|---:|')
    for variant, step, ops, view, launched in rows:
        name = 'weight' if step == 'weight' else 'α/β'
        print(f'| {variant} | {name} | {ops:,} | {view:,} | {launched} |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
