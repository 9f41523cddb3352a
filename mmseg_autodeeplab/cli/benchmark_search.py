"""``tools/benchmark_search.py``: speed, memory and FLOP rate of the supernet.

Each variant runs in a fresh subprocess (its peak memory is its own: peak
RSS, or CUDA max allocated), all of them side by side, so their ratios hold
on a shared, noisy machine; ``--baseline DIR`` runs each also with another
checkout's package, just before: a before/after table from one run. Per
variant: ``search_iter_s`` (weight step on one batch + α/β step on another)
and ``weight_step_s`` (medians of ``--repeat`` after ``--warmup``);
``macs_fwd``, one forward's multiply-adds, counted once (mmengine's counter,
``fused`` in eval mode: every variant computes the same network);
``flop_rate`` = ``6 * macs_fwd / weight_step_s`` (backward ~ 2 forwards) as
a fraction of the dense fp32 matmul rate of the same process.
``--contention`` times the fused weight step alone and beside a competing
copy of itself, with torch's default threads and with the search loop's
``ThreadGovernor``. ``--simultaneous`` times whole searches
(``tools/search.py``, ``--search-options`` on ``--config``): one alone, then
two identical ones started at the same moment (``--baseline DIR``: also one
alone with that checkout, first).

Projection: each variant's measured times, scaled by the config's schedule
(:func:`project_search`: trainA iterations per epoch x epochs, the
weight-only epochs before ``arch_start_epoch`` at the weight-step time, the
rest at the search-iteration time), answer "how long will this search take
here": ``--variants fused fused+amp`` gives it with and without ``--amp``.
Data loading and validation are not counted.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from ..analysis import (OneLineParser, SegmentorLogits, build_segmentor,
                        count_macs, hw_type, int_at_least, load_config,
                        machine_info, machine_line, markdown_table, timed,
                        write_report)
from ..utils import exit_with_error

VARIANTS = {
    # name: backbone impl / runtime options; per-edge is the readable
    # reference (each cell applied to each input, every edge its own convs)
    'per-edge': dict(impl='per_edge'),
    'fused': dict(impl='fused'),
    'fused+cp': dict(impl='fused', with_cp=True),
    # the coarsest level (1/8 of the activations) kept, not recomputed
    'fused+cp012': dict(impl='fused', with_cp=(0, 1, 2)),
    'fused+channels_last': dict(impl='fused', channels_last=True),
    # the search's --amp: bfloat16 on CPU, float16 + loss scaling on CUDA
    'fused+amp': dict(impl='fused', amp=True),
    'fused+cp+amp': dict(impl='fused', with_cp=True, amp=True),
}
DEFAULT_CONFIG = osp.join(
    'configs', 'autodeeplab_search',
    'autodeeplab-search_f8-l12_1xb2-40e_cityscapes-321x321.py')
DEMO_CONFIG = osp.join(
    'configs', 'autodeeplab_search',
    'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')
#: --simultaneous: the demo search cut to 3 epochs (α/β from the 2nd)
SEARCH_OPTIONS = ['train_cfg.max_epochs=3', 'train_cfg.arch_start_epoch=1']
WORKER = 'mmseg_autodeeplab.cli.benchmark_search'


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=None,
                   help='search config (model + optimizers are taken from '
                   f'it; default {DEFAULT_CONFIG}, with --simultaneous '
                   f'{DEMO_CONFIG})')
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
    p.add_argument('--train-images', type=int_at_least(2), default=None,
                   help='images in the training set (before its trainA/'
                   'trainB split), for the projected search time; default: '
                   'counted from the config\'s data_root')
    p.add_argument('--no-macs', action='store_true',
                   help='skip the multiply-add count (slow at large crops)')
    p.add_argument('--out', default='work_dirs/benchmark_search',
                   help='folder for benchmark_search.{json,md}')
    p.add_argument('--contention', action='store_true',
                   help='time the fused weight step alone and beside one '
                   'competing copy of itself, with torch\'s default threads '
                   'and with the search loop\'s thread governor (CPU)')
    p.add_argument('--simultaneous', action='store_true',
                   help='time a whole search (tools/search.py on --config) '
                   'alone, then two identical ones started together (CPU, '
                   'torch threads as the search chooses them)')
    p.add_argument('--search-options', nargs='+', default=SEARCH_OPTIONS,
                   metavar='KEY=VALUE', help='--simultaneous: cfg-options of '
                   f'the searches (default: {" ".join(SEARCH_OPTIONS)})')
    p.add_argument('--data-root', default='data/demo_cityscapes',
                   help='--simultaneous: the searches\' data root')
    p.add_argument('--_worker', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.config is None:
        args.config = DEMO_CONFIG if args.simultaneous else DEFAULT_CONFIG
    return args


# --------------------------------------------------------------------------
# worker side (one variant in a fresh process; prints one JSON line)
def _sync(device):
    return torch.cuda.synchronize if device == 'cuda' else None


def matmul_rate(device, n=2048):
    """Dense fp32 matmul FLOP/s on ``device`` (median of 5 after one)."""
    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    return 2 * n**3 / statistics.median(
        timed(lambda: a @ b, 1, 5, _sync(device)))


def _build(args, variant='fused'):
    from ..utils import sync_search_channels
    cfg = load_config(args.config)
    backbone = cfg.model.backbone
    backbone.impl = VARIANTS[variant]['impl']
    backbone.with_cp = VARIANTS[variant].get('with_cp', False)
    if args.filter_multiplier:
        backbone.filter_multiplier = args.filter_multiplier
    if args.num_layers:
        backbone.num_layers = args.num_layers
    sync_search_channels(cfg)
    cfg.model.data_preprocessor.size = None
    model = build_segmentor(cfg)
    model.init_weights()
    return model, cfg


def _batch(args, device, num_classes, seed, channels_last=False):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = args.crop
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(args.batch, 3, h, w, generator=g).to(device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    samples = []
    for _ in range(args.batch):
        s = SegDataSample()
        label = torch.randint(0, num_classes, (1, h, w), generator=g)
        s.gt_sem_seg = PixelData(data=label.to(device))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w)))
        samples.append(s)
    return inputs, samples


def _steps(args, variant, device):
    """``(weight_step, arch_step)`` of a fresh supernet of ``variant``."""
    from ..engine import AutoDeepLabOptimWrapperConstructor
    from ..engine.amp import scale_loss
    from ..engine.utils import find_supernet, only_grad_for
    opts = VARIANTS[variant]
    model, cfg = _build(args, variant)
    weights = dict(cfg.optim_wrapper.weights)
    if opts.get('amp'):  # what tools/search.py --amp sets
        weights.update(type='AmpOptimWrapper', loss_scale='dynamic')
    model.to(device).train()
    wrappers = AutoDeepLabOptimWrapperConstructor(
        dict(weights=weights, arch=cfg.optim_wrapper.arch))(model)
    if opts.get('channels_last'):
        model.to(memory_format=torch.channels_last)
    params = find_supernet(model).arch_parameters()
    batch_a, batch_b = (
        _batch(args, device, cfg.model.decode_head.num_classes, seed,
               opts.get('channels_last')) for seed in (0, 1))

    def loss_of(batch, wrapper):
        # the search loop's steps: autocast (if any) in optim_context
        with wrapper.optim_context(model):
            losses = model.loss(*batch)
        return model.parse_losses(losses)[0]

    def weight_step():
        wrappers['weights'].update_params(loss_of(batch_a,
                                                  wrappers['weights']))
        for p in params:
            p.grad = None

    def arch_step():
        with only_grad_for(model, params):  # as the search loop
            loss = scale_loss(wrappers['arch'],
                              loss_of(batch_b, wrappers['arch']))
            grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads):
            p.grad = g
        wrappers['arch'].step()
        wrappers['arch'].zero_grad()

    return weight_step, arch_step


def _worker(args, variant):
    device = 'cuda' if args.device == 'cuda' or (
        args.device == 'auto' and torch.cuda.is_available()) else 'cpu'
    from ..engine.amp import resolve_amp_dtype
    out = dict(variant=variant, device=device)
    if VARIANTS[variant].get('amp'):
        try:
            out['amp_dtype'] = str(resolve_amp_dtype(None, device))[6:]
        except ValueError as e:
            return dict(variant=variant, skipped=str(e))
    weight_step, arch_step = _steps(args, variant, device)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    for key, step in (('weight_step', weight_step),
                      ('search_iter', lambda: (weight_step(), arch_step()))):
        times = timed(step, args.warmup, args.repeat, _sync(device))
        out[f'{key}_s'] = statistics.median(times)
        out[f'{key}_spread_s'] = [min(times), max(times)]
    if device == 'cuda':
        out.update(peak_memory_bytes=torch.cuda.max_memory_allocated(),
                   peak_memory_kind='cuda max allocated')
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out.update(peak_memory_bytes=rss, peak_memory_kind='peak RSS')
    return dict(out, macs_fwd=None, matmul_flops_per_s=matmul_rate(device))


def _contention_worker(args, policy):
    """Fused weight steps (CPU) under a thread policy: 'default' (torch's
    own count) or 'governor' (the search loop's ThreadGovernor)."""
    from ..utils.threads import ThreadGovernor
    weight_step, _ = _steps(args, 'fused', 'cpu')
    governor = ThreadGovernor() if policy == 'governor' else None
    times = []
    for _ in range(args.warmup + args.repeat):
        times += timed(weight_step, 0, 1)
        if governor is not None:
            governor.step(times[-1])
    measured = times[args.warmup:]
    return dict(policy=policy, weight_step_s=statistics.median(measured),
                mean_s=statistics.fmean(measured), max_s=max(measured),
                times_s=[round(x, 4) for x in times])


def _count_macs(args):
    """Forward multiply-adds of the network (eval mode), counted on the
    ``per_edge`` reference: mmengine's tracer does not see inside the fused
    path's autograd Functions (``relu_conv``, ``sep_stage``) and would miss
    their convs."""
    model, cfg = _build(args, 'per-edge')
    inputs, _ = _batch(args, 'cpu', cfg.model.decode_head.num_classes, 0)
    return dict(variant='macs',
                macs_fwd=count_macs(SegmentorLogits(model).eval(), inputs))


# --------------------------------------------------------------------------
# projection of the whole search from the measured step times
#: Cityscapes' train_fine images: the paper's search set, assumed when the
#: config's data_root is not on this machine
CITYSCAPES_TRAIN = 2975


def search_schedule(train_images, batch, max_epochs, arch_start_epoch,
                    drop_last=False):
    """``(iters_per_epoch, weight_only_epochs, full_epochs)`` of a search
    on ``train_images`` split into trainA / trainB halves (trainA gets the
    odd one, as :class:`~..datasets.SearchSplitDataset`), one process."""
    half = (train_images + 1) // 2
    iters = half // batch if drop_last else -(-half // batch)
    return iters, arch_start_epoch, max_epochs - arch_start_epoch


def project_search(weight_step_s, search_iter_s, iters_per_epoch,
                   weight_only_epochs, full_epochs):
    """Projected seconds of a whole search: the weight-only epochs at the
    weight-step time, the full (weight + α/β) epochs at the search-iteration
    time; data loading and validation not counted."""
    weight_only = iters_per_epoch * weight_only_epochs * weight_step_s
    full = iters_per_epoch * full_epochs * search_iter_s
    return dict(iters_per_epoch=iters_per_epoch,
                weight_only_iters=iters_per_epoch * weight_only_epochs,
                full_iters=iters_per_epoch * full_epochs,
                weight_only_s=weight_only, full_s=full,
                total_s=weight_only + full)


def _train_images(args, cfg):
    """``(count, how it was found)`` of the config's training images."""
    if args.train_images:
        return args.train_images, '--train-images'
    dataset = cfg.train_dataloader.dataset
    inner = dataset.get('dataset', dataset)  # inside SearchSplitDataset
    try:
        from mmseg.registry import DATASETS
        return len(DATASETS.build(inner)), f'counted in {inner.data_root}'
    except Exception:  # no data here: the paper's Cityscapes, or unknown
        if 'Cityscapes' in str(inner.get('type')):
            return CITYSCAPES_TRAIN, ('Cityscapes train_fine (data_root not '
                                      'found here)')
        return None, None


def _projection(args, results):
    """Markdown lines projecting the config's whole search per variant."""
    cfg = load_config(args.config)
    loop = cfg.train_cfg
    images, source = _train_images(args, cfg)
    if images is None:
        return ['', 'Projected search time: the config\'s data_root was '
                'not found; pass --train-images N to project it.']
    iters, weight_only, full = search_schedule(
        images, args.batch, loop.max_epochs, loop.get('arch_start_epoch', 20),
        cfg.train_dataloader.get('drop_last', False))
    cells = []
    for r in results:
        if 'skipped' in r:
            continue
        r['projection'] = p = project_search(
            r['weight_step_s'], r['search_iter_s'], iters, weight_only, full)
        amp = f' ({r["amp_dtype"]})' if 'amp_dtype' in r else ''
        cells.append([
            r['variant'] + amp, f'{p["weight_only_iters"]} x '
            f'{r["weight_step_s"]:.3f} s', f'{p["full_iters"]} x '
            f'{r["search_iter_s"]:.3f} s', f'{p["total_s"] / 3600:.1f}',
            f'{r["peak_memory_bytes"] / 1e9:.2f}'])
    return ['', f'Projected search ({osp.basename(args.config)}: '
            f'{images} training images ({source}) -> trainA '
            f'{(images + 1) // 2}, {iters} iterations/epoch at batch '
            f'{args.batch}; {weight_only} weight-only + {full} full epochs; '
            f'crop {args.crop[0]}x{args.crop[1]}):', ''] + markdown_table(
        ['variant', 'weight-only iterations', 'full iterations (weight + '
         'α/β)', 'projected search (h)', 'peak memory (GB)'], cells) + [
        '', 'Measured step times x the schedule; data loading and '
        'validation not counted.']


# --------------------------------------------------------------------------
# driver side
def _worker_cmd(args, worker):
    """A ``worker`` subprocess, with only the flags that workers of every
    revision take (``--baseline`` runs another checkout's)."""
    cmd = [sys.executable, '-m', WORKER, '--_worker', worker, '--config',
           args.config, '--crop', '{}x{}'.format(*args.crop)]
    for flag in ('batch', 'device', 'warmup', 'repeat', 'filter_multiplier',
                 'num_layers'):
        if getattr(args, flag) is not None:
            cmd += ['--' + flag.replace('_', '-'), str(getattr(args, flag))]
    return cmd


def _run(cmd, what, copies=1, **kwargs):
    """The JSON lines of ``copies`` workers run at once; a one-line exit
    with the last error line of one that fails."""
    # files, not pipes: a worker blocked on a full pipe would not run
    # beside its partner (mmengine logs a lot at model init)
    with contextlib.ExitStack() as stack:
        files = [[stack.enter_context(tempfile.TemporaryFile('w+'))
                  for _ in range(2)] for _ in range(copies)]
        procs = [subprocess.Popen(cmd, stdout=o, stderr=e, text=True,
                                  **kwargs) for o, e in files]
        outs = []
        for p, (o, e) in zip(procs, files):
            p.wait()
            o.seek(0)
            e.seek(0)
            if p.returncode:
                tail = e.read().strip().splitlines() or ['?']
                exit_with_error(f'{what} failed: {tail[-1]}', 1)
            outs.append(json.loads(o.read().strip().splitlines()[-1]))
        return outs


def _contention(args):
    """Each policy alone, then two copies at once; ``(rows, table)``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    rows = []
    for policy in ('default', 'governor'):
        cmd = _worker_cmd(args, 'contention:' + policy)
        print(f'[{policy}] alone, then beside a competing copy ...',
              flush=True)
        rows.append(dict(policy=policy, alone=_run(cmd, policy, env=env)[0],
                         pair=_run(cmd, policy, 2, env=env)))
    base = rows[0]['alone']['weight_step_s']
    cells = []
    for r in rows:
        alone = r['alone']['weight_step_s']
        pair = statistics.fmean(p['weight_step_s'] for p in r['pair'])
        mean = statistics.fmean(p['mean_s'] for p in r['pair'])
        worst = max(p['max_s'] for p in r['pair'])
        name = {'default': 'torch default',
                'governor': 'search loop (ThreadGovernor)'}[r['policy']]
        cells.append([name, f'{alone:.3f}', f'{pair:.3f}',
                      f'{mean:.3f} / {worst:.3f}', f'{pair / alone:.2f}x',
                      f'{alone / base:.2f}x'])
    table = markdown_table(
        ['threads', 'alone: median step (s)', 'beside a copy: median (s)',
         'beside: mean / max (s)', 'beside / alone',
         'alone / torch default alone'], cells)
    return rows, table


def _search_cmd(args, work_dir, tree=None):
    """``tools/search.py`` of this package (or of the checkout ``tree``)."""
    root = osp.abspath(tree) if tree else osp.dirname(osp.dirname(
        osp.dirname(osp.abspath(__file__))))
    data = osp.abspath(args.data_root)
    # a relative config is the checkout's own
    config = osp.join(root, args.config) if tree else args.config
    return [sys.executable, osp.join(root, 'tools', 'search.py'),
            osp.abspath(config), '--work-dir', work_dir,
            '--cfg-options', *args.search_options,
            f'train_dataloader.dataset.dataset.data_root={data}',
            f'val_dataloader.dataset.data_root={data}',
            f'test_dataloader.dataset.data_root={data}']


def _searches(cmds, what, **kwargs):
    """Run ``cmds`` at the same moment; their wall times (s) and thread
    changes (the loop's 'CPU threads a -> b' lines)."""
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile('w+'))
                for _ in cmds]
        start = time.perf_counter()
        procs = [subprocess.Popen(c, stdout=f, stderr=subprocess.STDOUT,
                                  text=True, **kwargs)
                 for c, f in zip(cmds, logs)]
        ended = {}
        while len(ended) < len(procs):  # each one's own exit time
            for i, p in enumerate(procs):
                if i not in ended and p.poll() is not None:
                    ended[i] = time.perf_counter() - start
            time.sleep(0.05)
        runs = []
        for i, (p, f) in enumerate(zip(procs, logs)):
            seconds = ended[i]
            f.seek(0)
            text = f.read()
            if p.returncode:
                tail = text.strip().splitlines() or ['?']
                exit_with_error(f'{what} failed: {tail[-1]}', 1)
            runs.append(dict(seconds=round(seconds, 1),
                             thread_changes=text.count('CPU threads ')))
        return runs


def _simultaneous(args, machine):
    """One search alone (and the baseline's), then two at once."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = ([('alone (baseline)', [args.baseline])] if args.baseline
                else []) + [('alone', [None]), ('two at once', [None, None])]
        for i, (name, trees) in enumerate(jobs):
            print(f'[{i + 1}/{len(jobs)}] {name} ...', flush=True)
            cmds = [_search_cmd(args, osp.join(tmp, f'{i}_{k}'), tree)
                    for k, tree in enumerate(trees)]
            run_env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [
                osp.abspath(trees[0]), env.get('PYTHONPATH')]))) \
                if trees[0] else env
            runs = _searches(cmds, name, env=run_env, cwd=tmp)
            print('    ' + ', '.join(f'{r["seconds"]:.1f} s' for r in runs),
                  flush=True)
            rows.append(dict(name=name, runs=runs))
    alone = next(r for r in rows if r['name'] == 'alone')['runs'][0][
        'seconds']
    cells = [[r['name'], ' / '.join(f'{x["seconds"]:.1f}' for x in r['runs']),
              ' / '.join(f'{x["seconds"] / alone:.2f}x' for x in r['runs']),
              ' / '.join(str(x['thread_changes']) for x in r['runs'])]
             for r in rows]
    table = markdown_table(['searches', 'wall time each (s)',
                            'vs this checkout alone', 'thread changes'],
                           cells)
    table += ['', f'`tools/search.py {args.config} --cfg-options '
              f'{" ".join(args.search_options)}` (data {args.data_root}), '
              'each in a fresh process with torch\'s threads left to the '
              'search; wall time from the start of all the processes of a '
              f'row to each one\'s exit; {machine_line(machine)}.']
    return rows, table


def _table(args, results, machine):
    head = (f'Supernet benchmark: config {osp.basename(args.config)}, crop '
            f'{args.crop[0]}x{args.crop[1]}, batch {args.batch}'
            + (f', F={args.filter_multiplier}' if args.filter_multiplier
               else '') + (f', L={args.num_layers}' if args.num_layers
                           else ''))
    base = next((r for r in results if 'skipped' not in r), None)
    cells = []
    for r in results:
        if 'skipped' in r:
            cells.append([r['variant'], f'skipped: {r["skipped"]}'] + [''] * 5)
            continue
        ratio = base['search_iter_s'] / r['search_iter_s']
        macs = f"{r['macs_fwd'] / 1e9:.2f}" if r['macs_fwd'] else '-'
        rate = f'{100 * r["flop_rate"]:.1f}%' if 'flop_rate' in r else '-'
        amp = f' ({r["amp_dtype"]})' if 'amp_dtype' in r else ''
        cells.append([
            r['variant'] + amp, r['device'],
            f'{r["search_iter_s"]:.3f} (x{ratio:.2f})',
            f'{r["weight_step_s"]:.3f}', f'{r["peak_memory_bytes"] / 1e9:.2f}'
            f' ({r["peak_memory_kind"]})', macs, rate])
    table = markdown_table(
        ['variant', 'device', 'search iter (s)', 'weight step (s)',
         'peak memory (GB)', 'fwd MACs (G)', 'FLOP rate vs matmul'], cells)
    return [head, '', f'Machine: {machine_line(machine)}', ''] + table + [
        '', 'Speed-ups (xN) are relative to the first row, measured in the '
        f'same run ({args.rounds} interleaved round(s); times: median of the '
        'rounds\' medians). Forward MACs: mmengine\'s counter on the '
        '`per-edge` implementation (every variant computes the same '
        'network; the tracer cannot see inside the fused kernels); FLOP '
        'rate = 6 x MACs / weight step / dense matmul FLOP/s.'
        + (f' Rows marked (baseline): the package in {args.baseline}.'
           if args.baseline else '')]


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


def _variants(args):
    """Every variant (and baseline) per round, then the MAC count."""
    results, macs = {}, None
    trees = ([args.baseline] if args.baseline else []) + [None]
    jobs = [(v, tree) for _ in range(args.rounds) for v in args.variants
            for tree in trees] + ([] if args.no_macs else [('macs', None)])
    for i, (variant, tree) in enumerate(jobs):
        what = 'counting forward multiply-adds' if variant == 'macs' \
            else variant + (' (baseline)' if tree else '')
        print(f'[{i + 1}/{len(jobs)}] {what} ...', flush=True)
        # the checkout's package first on sys.path
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
            osp.abspath(tree), os.environ.get('PYTHONPATH')]))) if tree \
            else None
        r = _run(_worker_cmd(args, variant), what, cwd=tree, env=env)[0]
        if variant == 'macs':
            macs = r['macs_fwd']
            print(f'    {macs / 1e9:.2f} GMACs', flush=True)
            continue
        r['variant'] = what
        if what not in results:
            results[what] = r
        elif 'skipped' not in r:
            _merge_round(results[what], r)
        if 'skipped' not in r:
            print(f'    search iter {r["search_iter_s"]:.3f}s, weight step '
                  f'{r["weight_step_s"]:.3f}s, peak '
                  f'{r["peak_memory_bytes"] / 1e9:.2f} GB', flush=True)
    for r in results.values():
        if 'skipped' not in r and macs:
            r['macs_fwd'] = macs
            r['flop_rate'] = 6 * macs / r['weight_step_s'] / r[
                'matmul_flops_per_s']
    return list(results.values())


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        exit_with_error(f'config {args.config!r} not found')
    if args.batch < 2:
        exit_with_error('--batch must be >= 2 (BN in the ASPP image pooling '
                        'needs more than one value per channel)')
    if args._worker:
        kind, _, policy = args._worker.partition(':')
        out = _contention_worker(args, policy) if kind == 'contention' \
            else _count_macs(args) if kind == 'macs' else _worker(args, kind)
        print(json.dumps(out))
        return 0
    if args.simultaneous:
        if args.baseline and not osp.isfile(osp.join(args.baseline, 'tools',
                                                     'search.py')):
            exit_with_error(f'--baseline {args.baseline!r}: no '
                            'tools/search.py there')
        machine = machine_info('cpu')
        rows, table = _simultaneous(args, machine)
        name, result = 'simultaneous', dict(
            machine=machine, rows=rows, config=args.config,
            search_options=args.search_options)
    elif args.contention:
        machine = machine_info('cpu')
        rows, table = _contention(args)
        table += ['', f'Fused weight step, crop {args.crop[0]}x'
                  f'{args.crop[1]}, batch {args.batch}, {args.repeat} steps '
                  f'after {args.warmup} warm-up; {machine_line(machine)}.']
        name, result = 'contention', dict(machine=machine, rows=rows)
    else:
        if args.baseline and not osp.isdir(osp.join(args.baseline,
                                                    'mmseg_autodeeplab')):
            exit_with_error(f'--baseline {args.baseline!r}: no '
                            'mmseg_autodeeplab package there')
        results = _variants(args)
        machine = machine_info(results[0].get('device', 'cpu')
                               if results else 'cpu')
        table = _table(args, results, machine) + _projection(args, results)
        name = 'benchmark_search'
        result = dict(args={k: v for k, v in vars(args).items()
                            if k != '_worker'},
                      machine=machine, results=results)
    text = '\n'.join(table)
    print(text)
    write_report(args.out, name, result, text + '\n')
    print(f'wrote {osp.join(args.out, name + ".json")} and .md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
