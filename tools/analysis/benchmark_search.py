"""Speed, memory and FLOP rate of the search supernet, per variant.

Usage: python tools/analysis/benchmark_search.py [--config CONFIG]
       [--variants per-edge fused ...] [--crop HxW] [--batch N]
       [--baseline DIR] [--rounds N] [--out DIR]

Each variant runs in a fresh subprocess (its peak memory is its own: peak
RSS, or CUDA max allocated), all of them side by side, so their ratios hold
on a shared, noisy machine; ``--baseline DIR`` runs each also with another
checkout's package, just before: a before/after table from one run. Per
variant: ``search_iter_s`` (weight step on one batch + α/β step on another:
the search loop's own ``SearchSteps``, with the config's ``train_cfg``
remedies) and ``weight_step_s`` (medians of ``--repeat`` after
``--warmup``); ``macs_fwd``, one forward's multiply-adds, counted once (mmengine's counter,
``fused`` in eval mode: every variant computes the same network);
``flop_rate`` = ``6 * macs_fwd / weight_step_s`` (backward ~ 2 forwards) as
a fraction of the dense fp32 matmul rate of the same process.

Projection: each variant's measured times, scaled by the config's schedule
(:func:`project_search`: trainA iterations per epoch x epochs, the
weight-only epochs before ``arch_start_epoch`` at the weight-step time, the
rest at the search-iteration time), answer "how long will this search take
here": ``--variants fused fused+amp`` gives it with and without ``--amp``.
Data loading and validation are not counted.
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

import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
sys.path[:0] = [p for p in (HERE, REPO) if p not in sys.path]

from measure import (machine_info, machine_line, markdown_table,  # noqa: E402
                     timed, write_report)

from mmseg_autodeeplab.analysis import (OneLineParser,  # noqa: E402
                                        SegmentorLogits, build_segmentor,
                                        count_macs, hw_type, int_at_least,
                                        load_config)
from mmseg_autodeeplab.utils import exit_with_error  # noqa: E402

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
#: the worker of a checkout older than this script (--baseline)
OLD_WORKER = 'mmseg_autodeeplab.cli.benchmark_search'


def add_supernet_args(p, crop):
    """The flags :func:`build_supernet` and :func:`synthetic_batch` read."""
    p.add_argument('--config', default=DEFAULT_CONFIG,
                   help='search config (model, optimizers and train_cfg '
                   f'remedies are taken from it; default {DEFAULT_CONFIG})')
    p.add_argument('--crop', type=hw_type(1), default=(crop, crop),
                   help=f'HxW of the batch (default {crop}x{crop})')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--filter-multiplier', type=int_at_least(1), default=None,
                   help='F of the supernet (default: the config\'s)')
    p.add_argument('--num-layers', type=int_at_least(1), default=None,
                   help='L of the supernet (default: the config\'s)')


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0])
    add_supernet_args(p, 321)
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
    p.add_argument('--_worker', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# worker side (one variant in a fresh process; prints one JSON line)
def _sync(device):
    return torch.cuda.synchronize if device == 'cuda' else None


def matmul_rate(device, n=2048):
    """Dense fp32 matmul FLOP/s on ``device`` (median of 5 after one)."""
    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    return 2 * n**3 / statistics.median(
        timed(lambda: a @ b, 1, 5, _sync(device)))


def build_supernet(args, variant='fused'):
    """``(segmentor, cfg)``: the config's search segmentor as ``variant``
    (``args``: config, filter_multiplier, num_layers)."""
    from mmseg_autodeeplab.utils import sync_search_channels
    cfg = load_config(args.config)
    backbone = cfg.model.backbone
    backbone.impl = VARIANTS[variant]['impl']
    backbone.with_cp = VARIANTS[variant].get('with_cp', False)
    if args.filter_multiplier:
        backbone.filter_multiplier = args.filter_multiplier
    if args.num_layers:
        backbone.num_layers = args.num_layers
    sync_search_channels(cfg)
    cfg.model.data_preprocessor.size = tuple(args.crop)  # no padding
    model = build_segmentor(cfg)
    model.init_weights()
    return model, cfg


def synthetic_batch(args, num_classes, seed):
    """A data batch as the search's dataloader yields it (``args``: crop,
    batch): random images and labels of one seed."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = args.crop
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(args.batch):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g,
                                    dtype=torch.uint8))
        s = SegDataSample()
        label = torch.randint(0, num_classes, (1, h, w), generator=g)
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def search_steps(args, variant, device):
    """``(steps, batch_a, batch_b)``: the search loop's :class:`SearchSteps`
    on a fresh supernet of ``variant`` (``train_cfg``'s remedies, ``--amp``
    as tools/search.py sets it) and two fixed batches for its weight and
    α/β steps."""
    from mmengine.optim import build_optim_wrapper

    from mmseg_autodeeplab.cli.search import enable_amp
    from mmseg_autodeeplab.engine.search_loop import SearchSteps
    opts = VARIANTS[variant]
    model, cfg = build_supernet(args, variant)
    if opts.get('amp'):
        enable_amp(cfg)
    model.to(device).train()
    if opts.get('channels_last'):
        model.to(memory_format=torch.channels_last)
    steps = SearchSteps(model, build_optim_wrapper(model, cfg.optim_wrapper),
                        **{k: cfg.train_cfg.get(k)
                           for k in SearchSteps.cfg_keys})
    batch_a, batch_b = (synthetic_batch(
        args, cfg.model.decode_head.num_classes, seed) for seed in (0, 1))
    return steps, batch_a, batch_b


def _worker(args, variant):
    device = 'cuda' if args.device == 'cuda' or (
        args.device == 'auto' and torch.cuda.is_available()) else 'cpu'
    from mmseg_autodeeplab.engine.amp import resolve_amp_dtype
    out = dict(variant=variant, device=device)
    if VARIANTS[variant].get('amp'):
        try:
            out['amp_dtype'] = str(resolve_amp_dtype(None, device))[6:]
        except ValueError as e:
            return dict(variant=variant, skipped=str(e))
    steps, batch_a, batch_b = search_steps(args, variant, device)

    def weight_step():
        steps.weight_step(batch_a)

    def arch_step():
        steps.arch_step(batch_b)

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


def count_supernet_macs(args):
    """Forward multiply-adds of the network (eval mode), counted on the
    ``per_edge`` reference: mmengine's tracer does not see inside the fused
    path's autograd Functions (``relu_conv``, ``sep_stage``) and would miss
    their convs."""
    model, _ = build_supernet(args, 'per-edge')
    inputs = torch.randn(args.batch, 3, *args.crop,
                         generator=torch.Generator().manual_seed(0))
    return dict(variant='macs',
                macs_fwd=count_macs(SegmentorLogits(model).eval(), inputs))


# --------------------------------------------------------------------------
# projection of the whole search from the measured step times
#: Cityscapes' train_fine images: the paper's search set, assumed when the
#: config's data_root is not on this machine
CITYSCAPES_TRAIN = 2975


def train_a_size(train_images):
    """Images in trainA (the weights' half), as the search splits them."""
    from mmseg_autodeeplab.datasets import SearchSplitDataset
    return len(SearchSplitDataset.split_indices(train_images, 0)[0])


def search_schedule(train_images, batch, max_epochs, arch_start_epoch,
                    drop_last=False, world_size=1):
    """``(iters_per_epoch, weight_only_epochs, full_epochs)`` of a search
    on ``train_images`` split as :class:`SearchSplitDataset` splits them,
    with ``world_size`` processes (mmengine's sampler: a rank's share
    rounded up)."""
    per_rank = -(-train_a_size(train_images) // world_size)
    iters = per_rank // batch if drop_last else -(-per_rank // batch)
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


def projection_lines(args, results):
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
            f'{train_a_size(images)}, {iters} iterations/epoch at batch '
            f'{args.batch}; {weight_only} weight-only + {full} full epochs; '
            f'crop {args.crop[0]}x{args.crop[1]}):', ''] + markdown_table(
        ['variant', 'weight-only iterations', 'full iterations (weight + '
         'α/β)', 'projected search (h)', 'peak memory (GB)'], cells) + [
        '', 'Measured step times x the schedule; data loading and '
        'validation not counted.']


# --------------------------------------------------------------------------
# driver side
def _worker_cmd(args, worker, tree=None):
    """A ``worker`` subprocess (of the checkout ``tree``, or this one), with
    only the flags that workers of every revision take."""
    script = osp.join(tree, 'tools', 'analysis', 'benchmark_search.py') \
        if tree else osp.abspath(__file__)
    entry = [script] if osp.isfile(script) else ['-m', OLD_WORKER]
    cmd = [sys.executable, *entry, '--_worker', worker, '--config',
           args.config, '--crop', '{}x{}'.format(*args.crop)]
    for flag in ('batch', 'device', 'warmup', 'repeat', 'filter_multiplier',
                 'num_layers'):
        if getattr(args, flag) is not None:
            cmd += ['--' + flag.replace('_', '-'), str(getattr(args, flag))]
    return cmd


def _run(cmd, what, **kwargs):
    """The JSON line of a worker; a one-line exit with the last error line
    if it fails."""
    # a file, not a pipe: mmengine logs a lot at model init
    with tempfile.TemporaryFile('w+') as err:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err,
                             text=True, **kwargs)
        if out.returncode:
            err.seek(0)
            tail = err.read().strip().splitlines() or ['?']
            exit_with_error(f'{what} failed: {tail[-1]}', 1)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
        r = _run(_worker_cmd(args, variant, tree), what, cwd=tree, env=env)
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
        out = count_supernet_macs(args) if args._worker == 'macs' \
            else _worker(args, args._worker)
        print(json.dumps(out))
        return 0
    if args.baseline and not osp.isdir(osp.join(args.baseline,
                                                'mmseg_autodeeplab')):
        exit_with_error(f'--baseline {args.baseline!r}: no '
                        'mmseg_autodeeplab package there')
    results = _variants(args)
    machine = machine_info(results[0].get('device', 'cpu')
                           if results else 'cpu')
    table = _table(args, results, machine) + projection_lines(args, results)
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
