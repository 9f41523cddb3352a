"""``tools/benchmark_search.py``: speed, memory and FLOP rate of the supernet.

Each measured variant runs in a fresh subprocess, so its peak memory (CPU:
peak RSS; GPU: max allocated) belongs to that variant alone. All variants of
one invocation run side by side on the same machine, so their ratios are
meaningful even on a shared, noisy machine. ``--baseline DIR`` also runs
every variant with the package of another checkout (e.g. ``git archive REV
| tar -x -C DIR``), just before the same variant of this one: a before/after
table from one run.

Measured per variant:

* ``search_iter_s``: one full search iteration (weight step on one batch +
  α/β step on another), median of ``--repeat`` after ``--warmup``;
* ``weight_step_s``: the weight step alone;
* ``macs_fwd``: multiply-adds of one forward pass (mmengine's counter),
  counted once, in a separate process, on the ``fused`` implementation in
  eval mode: every variant computes the same network; the fused one does
  each H(l-2) branch once (the per-edge reference repeats it for each
  incoming input). The counter also charges the α scale that the fused BNs
  apply (+1.5% at F=2, L=4 against the earlier count without it);
* ``flop_rate``: ``3 * 2 * macs_fwd / weight_step_s`` (forward + backward
  ~ 3 forwards) as a fraction of the dense fp32 matmul rate measured in the
  same process.
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from ..analysis import (OneLineParser, SegmentorLogits, build_segmentor,
                        count_macs, hw_type, int_at_least, load_config,
                        machine_info, machine_line)
from ..utils import exit_with_error

VARIANTS = {
    # name: backbone impl / runtime options
    # per-edge: every cell applied separately to each input, every edge its
    # own small convs, plain BN (the readable reference)
    'per-edge': dict(impl='per_edge'),
    'fused': dict(impl='fused'),
    'fused+cp': dict(impl='fused', with_cp=True),
    'fused+channels_last': dict(impl='fused', channels_last=True),
    'fused+amp': dict(impl='fused', amp=True),
}
DEFAULT_CONFIG = osp.join(
    'configs', 'autodeeplab_search',
    'autodeeplab-search_f8-l12_1xb2-40e_cityscapes-321x321.py')


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=DEFAULT_CONFIG,
                   help='search config (model + optimizers are taken from it)')
    p.add_argument('--crop', type=hw_type(1), default=(321, 321),
                   help='HxW of the batch (default 321x321)')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--filter-multiplier', type=int_at_least(1), default=None)
    p.add_argument('--num-layers', type=int_at_least(1), default=None)
    p.add_argument('--variants', nargs='+', default=['per-edge', 'fused'],
                   choices=sorted(VARIANTS))
    p.add_argument('--baseline', metavar='DIR', default=None,
                   help='also time each variant with the package in DIR (a '
                   'checkout of an earlier revision; a relative --config is '
                   'read from DIR too), run just before this one')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu',
                                                        'cuda'])
    p.add_argument('--warmup', type=int_at_least(0), default=1)
    p.add_argument('--repeat', type=int_at_least(1), default=3)
    p.add_argument('--rounds', type=int_at_least(1), default=1,
                   help='run the variants (and baselines) this many times, '
                   'interleaved, each in a fresh process; the table gives '
                   'the median of the per-round medians (a shared, noisy '
                   'machine)')
    p.add_argument('--no-macs', action='store_true',
                   help='skip the multiply-add count (slow at large crops)')
    p.add_argument('--out', default='work_dirs/benchmark_search',
                   help='folder for benchmark_search.{json,md}')
    p.add_argument('--contention', action='store_true',
                   help='time the fused weight step alone and beside one '
                   'competing copy of itself, with torch\'s default threads '
                   'and with the search loop\'s thread governor (CPU)')
    p.add_argument('--_worker', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def matmul_rate(device, n=2048, repeat=5):
    """Dense fp32 matmul FLOP/s on ``device`` (median of ``repeat``)."""
    import torch
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    times = []
    for _ in range(repeat + 1):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times[1:])


def _sync(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def _build(args, variant):
    from ..engine import AutoDeepLabOptimWrapperConstructor
    from ..utils import sync_search_channels
    cfg = load_config(args.config)
    backbone = cfg.model.backbone
    opts = VARIANTS[variant]
    backbone.impl = opts['impl']
    backbone.with_cp = opts.get('with_cp', False)
    if args.filter_multiplier:
        backbone.filter_multiplier = args.filter_multiplier
    if args.num_layers:
        backbone.num_layers = args.num_layers
    sync_search_channels(cfg)
    cfg.model.data_preprocessor.size = None
    model = build_segmentor(cfg)
    model.init_weights()
    wrappers = AutoDeepLabOptimWrapperConstructor(
        dict(weights=cfg.optim_wrapper.weights,
             arch=cfg.optim_wrapper.arch))(model)
    return model, wrappers, cfg


def _batch(args, device, num_classes, seed):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = args.crop
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(args.batch, 3, h, w, generator=g).to(device)
    samples = []
    for _ in range(args.batch):
        s = SegDataSample()
        label = torch.randint(0, num_classes, (1, h, w), generator=g)
        s.gt_sem_seg = PixelData(data=label.to(device))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w)))
        samples.append(s)
    return inputs, samples


def _worker(args, variant):
    import torch
    device = 'cuda' if args.device == 'cuda' or (
        args.device == 'auto' and torch.cuda.is_available()) else 'cpu'
    opts = VARIANTS[variant]
    if opts.get('amp') and device != 'cuda':
        return dict(variant=variant, skipped='amp needs a GPU')
    model, wrappers, cfg = _build(args, variant)
    model.to(device)
    if opts.get('channels_last'):
        model.to(memory_format=torch.channels_last)
    model.train()
    from mmseg_autodeeplab.engine.utils import find_supernet
    params = find_supernet(model).arch_parameters()
    num_classes = cfg.model.decode_head.num_classes
    batch_a = _batch(args, device, num_classes, 0)
    batch_b = _batch(args, device, num_classes, 1)
    if opts.get('channels_last'):
        batch_a = (batch_a[0].contiguous(memory_format=torch.channels_last),
                   batch_a[1])
        batch_b = (batch_b[0].contiguous(memory_format=torch.channels_last),
                   batch_b[1])
    amp = torch.autocast('cuda', dtype=torch.bfloat16) if opts.get(
        'amp') else None

    def loss_of(batch):
        if amp is None:
            losses = model.loss(*batch)
        else:
            with amp:
                losses = model.loss(*batch)
        return model.parse_losses(losses)[0]

    def weight_step():
        wrappers['weights'].update_params(loss_of(batch_a))
        for p in params:
            p.grad = None

    def arch_step():
        grads = torch.autograd.grad(loss_of(batch_b), params)
        for p, g in zip(params, grads):
            p.grad = g
        wrappers['arch'].step()
        wrappers['arch'].zero_grad()

    def timed(fn):
        times = []
        for i in range(args.warmup + args.repeat):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t)
        return times

    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    w_times = timed(weight_step)
    it_times = timed(lambda: (weight_step(), arch_step()))
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated()
        peak_kind = 'cuda max allocated'
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak_kind = 'peak RSS'
    rate = matmul_rate(device)
    result = dict(
        variant=variant, device=device,
        weight_step_s=statistics.median(w_times),
        weight_step_spread_s=[min(w_times), max(w_times)],
        search_iter_s=statistics.median(it_times),
        search_iter_spread_s=[min(it_times), max(it_times)],
        peak_memory_bytes=int(peak), peak_memory_kind=peak_kind,
        macs_fwd=None, matmul_flops_per_s=rate)
    return result


def _contention_worker(args, policy):
    """Weight steps under a thread policy: 'default' (torch's own count)
    or 'governor' (the search loop's :class:`ThreadGovernor`)."""
    from ..utils.threads import ThreadGovernor
    model, wrappers, cfg = _build(args, 'fused')
    model.train()
    batch = _batch(args, 'cpu', cfg.model.decode_head.num_classes, 0)
    governor = ThreadGovernor() if policy == 'governor' else None
    times = []
    for _ in range(args.warmup + args.repeat):
        t = time.perf_counter()
        loss = model.parse_losses(model.loss(*batch))[0]
        wrappers['weights'].update_params(loss)
        times.append(time.perf_counter() - t)
        if governor is not None:
            governor.step(times[-1])
    measured = times[args.warmup:]
    return dict(policy=policy, weight_step_s=statistics.median(measured),
                mean_s=statistics.fmean(measured), max_s=max(measured),
                times_s=[round(x, 4) for x in times])


def _contention(args):
    """Each policy alone, then two copies at once; one table."""
    rows = []
    for policy in ('default', 'governor'):
        cmd = [sys.executable, '-m', 'mmseg_autodeeplab.cli.benchmark_search',
               '--config', args.config, '--crop', '{}x{}'.format(*args.crop),
               '--batch', str(args.batch), '--device', 'cpu', '--warmup',
               str(args.warmup), '--repeat', str(args.repeat), '--_worker',
               'contention:' + policy]
        for flag, value in (('--filter-multiplier', args.filter_multiplier),
                            ('--num-layers', args.num_layers)):
            if value:
                cmd += [flag, str(value)]
        env = {k: v for k, v in os.environ.items() if k not in (
            'OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
        print(f'[{policy}] alone ...', flush=True)
        alone = _json_of(subprocess.run(cmd, capture_output=True, text=True,
                                        env=env), policy)
        print(f'[{policy}] beside a competing copy ...', flush=True)
        # files, not pipes: a worker blocked on a full pipe would not run
        # beside its partner (mmengine logs a lot at model init)
        with tempfile.TemporaryDirectory() as tmp:
            logs = [(open(osp.join(tmp, f'{i}.out'), 'w+'),
                     open(osp.join(tmp, f'{i}.err'), 'w+')) for i in range(2)]
            procs = [subprocess.Popen(cmd, stdout=o, stderr=e, text=True,
                                      env=env) for o, e in logs]
            pair = []
            for p, (o, e) in zip(procs, logs):
                code = p.wait()
                o.seek(0)
                e.seek(0)
                pair.append(_json_of(subprocess.CompletedProcess(
                    p.args, code, o.read(), e.read()), policy))
                o.close()
                e.close()
        rows.append(dict(policy=policy, alone=alone, pair=pair))
    return rows


def _json_of(proc, what):
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ['?']
        exit_with_error(f'{what} failed: {tail[0]}', 1)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _contention_table(args, rows, machine):
    base = rows[0]['alone']['weight_step_s']
    lines = [
        '| threads | alone: median step (s) | beside a copy: median (s) | '
        'beside: mean / max (s) | beside / alone | alone / torch default '
        'alone |', '|---|---:|---:|---:|---:|---:|']
    for r in rows:
        alone = r['alone']['weight_step_s']
        pair = statistics.fmean(p['weight_step_s'] for p in r['pair'])
        mean = statistics.fmean(p['mean_s'] for p in r['pair'])
        worst = max(p['max_s'] for p in r['pair'])
        name = {'default': 'torch default',
                'governor': 'search loop (ThreadGovernor)'}[r['policy']]
        lines.append(f'| {name} | {alone:.3f} | {pair:.3f} | {mean:.3f} / '
                     f'{worst:.3f} | {pair / alone:.2f}x | '
                     f'{alone / base:.2f}x |')
    lines += ['', f'Fused weight step, crop {args.crop[0]}x{args.crop[1]}, '
              f'batch {args.batch}, {args.repeat} steps after {args.warmup} '
              f'warm-up; {machine_line(machine)}.']
    return '\n'.join(lines)


def _count_macs(args):
    """Forward multiply-adds of the network (``fused``, eval mode)."""
    model, _, cfg = _build(args, 'fused')
    inputs, _ = _batch(args, 'cpu', cfg.model.decode_head.num_classes, 0)
    return dict(variant='macs',
                macs_fwd=count_macs(SegmentorLogits(model).eval(), inputs))


def _table(args, results, machine):
    head = (f'Supernet benchmark: config {osp.basename(args.config)}, crop '
            f'{args.crop[0]}x{args.crop[1]}, batch {args.batch}'
            + (f', F={args.filter_multiplier}' if args.filter_multiplier
               else '') + (f', L={args.num_layers}' if args.num_layers
                           else ''))
    lines = [head, '',
             f'Machine: {machine_line(machine)}', '',
             '| variant | device | search iter (s) | weight step (s) | '
             'peak memory (GB) | fwd MACs (G) | FLOP rate vs matmul |',
             '|---|---|---|---|---|---|---|']
    base = next((r for r in results if 'skipped' not in r), None)
    for r in results:
        if 'skipped' in r:
            lines.append(f'| {r["variant"]} | skipped: {r["skipped"]} |'
                         ' | | | | |')
            continue
        ratio = base['search_iter_s'] / r['search_iter_s']
        macs = r['macs_fwd'] / 1e9 if r['macs_fwd'] else float('nan')
        rate = f'{100 * r["flop_rate"]:.1f}%' if 'flop_rate' in r else '-'
        lines.append(
            f'| {r["variant"]} | {r["device"]} | {r["search_iter_s"]:.3f} '
            f'(x{ratio:.2f}) | {r["weight_step_s"]:.3f} | '
            f'{r["peak_memory_bytes"] / 1e9:.2f} ({r["peak_memory_kind"]}) '
            f'| {macs:.2f} | {rate} |')
    lines.append('')
    lines.append('Speed-ups (xN) are relative to the first row, measured '
                 f'in the same run ({args.rounds} interleaved round(s); '
                 'times: median of the rounds\' medians). Forward MACs: '
                 'mmengine\'s counter on the `fused` implementation (every '
                 'variant computes the same network); FLOP rate = 6 x MACs '
                 '/ weight step / dense matmul FLOP/s.'
                 + (f' Rows marked (baseline): the package in '
                    f'{args.baseline}.' if args.baseline else ''))
    return '\n'.join(lines)


def _merge_round(into, r):
    """Fold another round of a variant into its row (median of the rounds'
    medians; spread and peak memory over all rounds)."""
    for key in ('search_iter', 'weight_step', 'matmul_flops_per'):
        rounds = into.setdefault(key + '_s_rounds', [into[key + '_s']])
        rounds.append(r[key + '_s'])
        into[key + '_s'] = statistics.median(rounds)
    for key in ('search_iter_spread_s', 'weight_step_spread_s'):
        into[key] = [min(into[key][0], r[key][0]),
                     max(into[key][1], r[key][1])]
    into['peak_memory_bytes'] = max(into['peak_memory_bytes'],
                                    r['peak_memory_bytes'])


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        exit_with_error(f'config {args.config!r} not found')
    if args.batch < 2:
        exit_with_error('--batch must be >= 2 (BN in the ASPP image pooling '
                        'needs more than one value per channel)')
    if args._worker:
        if args._worker.startswith('contention:'):
            out = _contention_worker(args, args._worker.split(':', 1)[1])
        elif args._worker == 'macs':
            out = _count_macs(args)
        else:
            out = _worker(args, args._worker)
        print(json.dumps(out))
        return 0
    if args.contention:
        machine = machine_info('cpu')
        rows = _contention(args)
        table = _contention_table(args, rows, machine)
        os.makedirs(args.out, exist_ok=True)
        from ..utils import atomic_write_json, atomic_write_text
        atomic_write_json(osp.join(args.out, 'contention.json'),
                          dict(machine=machine, rows=rows))
        atomic_write_text(osp.join(args.out, 'contention.md'), table + '\n')
        print(table)
        return 0
    if args.baseline and not osp.isdir(osp.join(args.baseline,
                                                'mmseg_autodeeplab')):
        exit_with_error(f'--baseline {args.baseline!r}: no mmseg_autodeeplab '
                        'package there')
    results, macs = [], None
    trees = ([args.baseline] if args.baseline else []) + [None]
    jobs = [(v, tree) for _ in range(args.rounds) for v in args.variants
            for tree in trees]
    jobs += [] if args.no_macs else [('macs', None)]
    for i, (variant, tree) in enumerate(jobs):
        what = 'counting forward multiply-adds' if variant == 'macs' \
            else variant + (' (baseline)' if tree else '')
        print(f'[{i + 1}/{len(jobs)}] {what} ...', flush=True)
        cmd = [sys.executable, '-m', 'mmseg_autodeeplab.cli.benchmark_search',
               '--config', args.config, '--crop', '{}x{}'.format(*args.crop),
               '--batch',
               str(args.batch), '--device', args.device, '--warmup',
               str(args.warmup), '--repeat', str(args.repeat),
               '--_worker', variant]
        for flag, value in (('--filter-multiplier', args.filter_multiplier),
                            ('--num-layers', args.num_layers)):
            if value:
                cmd += [flag, str(value)]
        env = dict(os.environ)
        if tree:  # the checkout's package first on sys.path
            env['PYTHONPATH'] = os.pathsep.join(
                [osp.abspath(tree)] + env.get('PYTHONPATH', '').split(
                    os.pathsep)).rstrip(os.pathsep)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tree,
                              env=env)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ['?']
            exit_with_error(f'{what} failed: {tail[0]}', 1)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if variant == 'macs':
            macs = r['macs_fwd']
            print(f'    {macs / 1e9:.2f} GMACs', flush=True)
            continue
        if tree:
            r['variant'] += ' (baseline)'
        same = next((x for x in results if x['variant'] == r['variant']),
                    None)
        if same is None:
            results.append(r)
        elif 'skipped' not in r:
            _merge_round(same, r)
        if 'skipped' not in r:
            print(f'    search iter {r["search_iter_s"]:.3f}s, weight step '
                  f'{r["weight_step_s"]:.3f}s, peak '
                  f'{r["peak_memory_bytes"] / 1e9:.2f} GB', flush=True)
    for r in results:
        if 'skipped' not in r and macs:
            r['macs_fwd'] = macs
            r['flop_rate'] = 6 * macs / r['weight_step_s'] / r[
                'matmul_flops_per_s']
    machine = machine_info(results[0].get('device', 'cpu')
                           if results else 'cpu')
    table = _table(args, results, machine)
    print(table)
    from ..utils import atomic_write_json, atomic_write_text
    os.makedirs(args.out, exist_ok=True)
    atomic_write_json(osp.join(args.out, 'benchmark_search.json'),
                      dict(args={k: v for k, v in vars(args).items()
                                 if not k.startswith('_')},
                           machine=machine, results=results))
    atomic_write_text(osp.join(args.out, 'benchmark_search.md'), table + '\n')
    print(f'wrote {osp.join(args.out, "benchmark_search.json")} and .md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
