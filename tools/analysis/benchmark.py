"""Parameters, multiply-adds and latency: Auto-DeepLab-S/M/L next to
mmseg's baselines.

Usage: python tools/analysis/benchmark.py [--models NAME ...] [--size HxW]
       [--device cpu|cuda[:N]] [--repeat N] [--warmup W] [--no-latency]
       [--no-macs] [--reference NAME] [--filter-multiplier F] [--out DIR]
       [--config FILE ...] [--onnxruntime]

Every model (ours from ``configs/autodeeplab/``, the baselines from mmseg's
packaged configs, any ``--config``) is built the same way (no pretrained
weights, ``--num-classes`` classes, BN, eval mode) and measured on one
``1x3xHxW`` forward to the logits at the head's resolution: parameters
without the auxiliary heads (the JSON also gives them with), multiply-adds
as mmengine counts them, and latency at batch 1 (median, min-max and
interquartile range of ``--repeat`` runs after ``--warmup``); with
``--onnxruntime`` also the latency of the same forward exported as
``tools/export_onnx.py`` does, in onnxruntime's CPU provider. Ratios refer
to ``--reference``; the reports are rewritten after every model.
"""
import os.path as osp
import re
import statistics
import sys
import time
import warnings

import torch

HERE = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [p for p in (HERE, osp.dirname(osp.dirname(HERE)))
                if p not in sys.path]

from measure import (add_report_args, machine_info,  # noqa: E402
                     machine_line, markdown_table, timed, write_report)

from mmseg_autodeeplab.analysis import (OneLineParser,  # noqa: E402
                                        SegmentorLogits, build_segmentor,
                                        count_macs, hw_type, int_at_least,
                                        load_config, require_deploy)
from mmseg_autodeeplab.utils import exit_with_error  # noqa: E402
from mmseg_autodeeplab.utils.threads import load_average  # noqa: E402
from mmseg_autodeeplab.utils.configs import resolve_config  # noqa: E402

#: name -> (label, config). ``mmseg::`` configs come from mmseg's package.
MODEL_ZOO = {
    f'autodeeplab-{s}': (f'Auto-DeepLab-{s.upper()}', f'autodeeplab/'
                         f'autodeeplab-{s}_paper-genotype_8xb2-1.5m_'
                         'cityscapes-769x769.py') for s in 'sml'}
MODEL_ZOO.update({
    'deeplabv3plus-r50': (
        'DeepLabV3+ R-50-D8', 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_'
        '4xb2-80k_cityscapes-512x1024.py'),
    'deeplabv3plus-r101': (
        'DeepLabV3+ R-101-D8', 'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_'
        '4xb2-80k_cityscapes-512x1024.py'),
    'pspnet-r101': ('PSPNet R-101-D8', 'mmseg::pspnet/pspnet_r101-d8_4xb2-'
                    '80k_cityscapes-512x1024.py'),
    'bisenetv2': ('BiSeNetV2', 'mmseg::bisenetv2/bisenetv2_fcn_4xb4-160k_'
                  'cityscapes-1024x1024.py'),
})
REFERENCE = 'deeplabv3plus-r101'


def build_model(name, num_classes=19, filter_multiplier=None, path=None):
    """A benchmark model in eval mode: ``MODEL_ZOO[name]`` (the Auto-DeepLab
    ones at ``filter_multiplier`` F, if given) or the config file ``path``
    as it is."""
    if path is not None:
        try:
            cfg = load_config(path)
        except Exception as e:
            raise ValueError(f'--config {path}: cannot load it '
                             f'({type(e).__name__}: {e})') from None
        return build_segmentor(cfg, num_classes).eval()
    cfg = load_config(resolve_config(MODEL_ZOO[name][1]))
    backbone = cfg.model.backbone
    if filter_multiplier is not None and backbone.type == 'AutoDeepLabNet':
        head = cfg.model.decode_head
        for key in ('in_channels', 'c1_in_channels'):
            # every cell's width is linear in F
            head[key] = head[key] * filter_multiplier // \
                backbone.filter_multiplier
        backbone.filter_multiplier = filter_multiplier
    return build_segmentor(cfg, num_classes).eval()


def inference_params(model):
    """``(parameters without the auxiliary heads, all parameters)``."""
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    return (sum(v for n, v in sizes.items()
                if not n.startswith('auxiliary_head.')), sum(sizes.values()))


def measure_onnxruntime(wrapper, x, repeat, warmup, threads):
    """Latency stats of ``wrapper``'s ONNX export in onnxruntime (CPU), with
    ``max_abs_diff`` / ``max_abs_output`` vs PyTorch, ``export_seconds``."""
    import io

    import numpy as np

    from mmseg_autodeeplab.cli.export_onnx import ort_session, to_onnx
    buffer, t0 = io.BytesIO(), time.time()
    to_onnx(wrapper, x, buffer)
    export_seconds = time.time() - t0
    session = ort_session(buffer.getvalue(), threads)
    feed = {'input': x.cpu().numpy()}
    stats = latency_stats(timed(lambda: session.run(None, feed), warmup,
                                repeat))
    with torch.inference_mode():
        ref = wrapper(x).cpu().numpy()
    out = session.run(None, feed)[0]
    return dict(stats, max_abs_diff=float(np.abs(ref - out).max()),
                max_abs_output=float(np.abs(ref).max()),
                export_seconds=round(export_seconds, 1))


def latency_stats(times):
    """Median/min/max/IQR in milliseconds of a list of seconds."""
    ms = sorted(t * 1e3 for t in times)
    q1, _, q3 = statistics.quantiles(ms, n=4, method='inclusive') \
        if len(ms) >= 2 else ms * 3
    return dict(median_ms=statistics.median(ms), min_ms=ms[0],
                max_ms=ms[-1], q1_ms=q1, q3_ms=q3, runs_ms=ms)


def add_ratios(rows, reference):
    """Add ``*_ratio`` fields vs the ``reference`` row (None if absent)."""
    ref = next((r for r in rows if r['name'] == reference), {})

    def ratio(a, b):
        return a / b if a is not None and b else None

    def median(row, key):
        return (row.get(key) or {}).get('median_ms')

    for row in rows:
        for key in ('params', 'macs'):
            row[f'{key}_ratio'] = ratio(row.get(key), ref.get(key))
        row['latency_ratio'] = ratio(median(row, 'latency'),
                                     median(ref, 'latency'))
        row['ort_latency_ratio'] = ratio(median(row, 'onnxruntime'),
                                         median(ref, 'onnxruntime'))
        row['ort_speedup'] = ratio(median(row, 'latency'),
                                   median(row, 'onnxruntime'))
    return rows


def _f(value, scale=1., digits=2, suffix=''):
    return '–' if value is None else f'{value / scale:.{digits}f}{suffix}'


def _spread(stats):
    """Median, min–max and IQR cells of :func:`latency_stats`."""
    if not stats:
        return ['–'] * 3
    return [f'{stats["median_ms"]:.1f}',
            f'{stats["min_ms"]:.1f}–{stats["max_ms"]:.1f}',
            f'{stats["q1_ms"]:.1f}–{stats["q3_ms"]:.1f}']


def render_markdown(result):
    """The Markdown report (machine line, command, table)."""
    m = result['machine']
    h, w = result['size']
    ref = MODEL_ZOO.get(result['reference'], (result['reference'], ))[0]
    ort = result.get('onnxruntime')
    lines = [
        f'Input 1x3x{h}x{w}, batch 1, {result["num_classes"]} classes; '
        f'{machine_line(m)}; 1-min load average {m.get("load_avg_start")} '
        f'at start, {m.get("load_avg_end")} at end.',
        f'Latency: median of {result["repeat"]} timed runs after '
        f'{result["warmup"]} warm-up runs (min–max and interquartile range '
        'beside it).' if result['latency'] else 'Latency: not measured '
        '(--no-latency).']
    if ort:
        lines.append(
            f'onnxruntime {result.get("onnxruntime_version")} '
            '(CPUExecutionProvider, same threads): the same forward '
            'exported to ONNX (opset 17, static size), same input, warm-up '
            'and repeats; PyTorch / ORT > 1 means onnxruntime is faster.')
    lines += [f'Command: `{result["command"]}`', '']
    header = ['Model', 'Params (M)', f'MACs @{h}x{w} (G)',
              'Latency median (ms)', 'min–max (ms)', 'IQR (ms)',
              f'Params / {ref}', f'MACs / {ref}', f'Latency / {ref}']
    if ort:
        header += ['ORT latency median (ms)', 'ORT min–max (ms)',
                   'PyTorch / ORT', f'ORT latency / {ref}']
    rows = []
    for r in result['models']:
        cells = [r['label'], _f(r['params'], 1e6), _f(r.get('macs'), 1e9)]
        cells += _spread(r.get('latency'))
        cells += [_f(r[f'{k}_ratio'], digits=3, suffix='×')
                  for k in ('params', 'macs', 'latency')]
        if ort:
            cells += _spread(r.get('onnxruntime'))[:2] + [
                _f(r.get('ort_speedup'), digits=2, suffix='×'),
                _f(r.get('ort_latency_ratio'), digits=3, suffix='×')]
        rows.append(cells)
    lines += markdown_table(header, rows)
    if not any(r['name'] == result['reference'] for r in result['models']):
        lines += ['', f'(Ratios need the reference {result["reference"]} '
                  'among --models.)']
    return '\n'.join(lines) + '\n'


def parse_args(argv=None):
    parser = OneLineParser(
        description='Parameters, multiply-adds and latency of Auto-DeepLab '
        'S/M/L and mmseg baselines, side by side.')
    parser.add_argument('--models', nargs='+', default=list(MODEL_ZOO),
                        metavar='NAME', help='models to measure (default: '
                        f'all): {", ".join(MODEL_ZOO)}')
    parser.add_argument('--size', type=hw_type(32), default=(1024, 2048),
                        help='input HxW (default 1024x2048)')
    parser.add_argument('--device', default='cpu',
                        help='cpu, cuda or cuda:N (default cpu)')
    parser.add_argument('--repeat', type=int_at_least(1), default=10,
                        help='timed runs per model (default 10)')
    add_report_args(parser, 'benchmark', 2, 'untimed runs')
    parser.add_argument('--no-latency', action='store_true',
                        help='count parameters and MACs only')
    parser.add_argument('--config', action='append', default=[],
                        metavar='FILE', help='also measure this segmentor '
                        'config (repeatable; e.g. a decoded one)')
    parser.add_argument('--onnxruntime', action='store_true',
                        help='also export each model to ONNX and time it in '
                        "onnxruntime (CPU; needs the deploy extra)")
    parser.add_argument('--reference', default=REFERENCE,
                        help=f'model the ratios refer to (default '
                        f'{REFERENCE})')
    parser.add_argument('--num-classes', type=int_at_least(1), default=19)
    parser.add_argument('--filter-multiplier', '-F', type=int_at_least(1),
                        default=None, help='override F of the Auto-DeepLab '
                        'models (e.g. for a quick smoke run)')
    parser.add_argument('--threads', type=int_at_least(1), default=None,
                        help='torch CPU threads (default: torch\'s choice)')
    return parser.parse_args(argv)


def check_args(args):
    """The models to measure, ``(name, label, config, --config file)``;
    a one-line ``ValueError`` on unusable arguments."""
    for what, name in [('model', m) for m in args.models] + [
            ('--reference', args.reference)]:
        if name not in MODEL_ZOO:
            raise ValueError(f'unknown {what} {name!r}; valid names: '
                             f'{", ".join(MODEL_ZOO)}')
    entries = [(name, *MODEL_ZOO[name], None) for name in args.models]
    for path in args.config:
        if not osp.isfile(path):
            raise ValueError(f'--config {path}: no such config file')
        stem = osp.splitext(osp.basename(path))[0]
        entries.append((f'config:{stem}', stem, path, path))
    names = [e[0] for e in entries]
    if len(set(names)) != len(names):
        raise ValueError('a model is listed twice (in --models, or two '
                         '--config files with the same file name)')
    if args.onnxruntime:
        if args.device != 'cpu' or args.no_latency:
            raise ValueError('--onnxruntime measures latency on the CPU: '
                             'use --device cpu and drop --no-latency')
        require_deploy('--onnxruntime')
    if not re.fullmatch(r'cpu|cuda(:\d+)?', args.device):
        raise ValueError(f'--device {args.device}: expected cpu, cuda or '
                         'cuda:N')
    if args.device != 'cpu' and not torch.cuda.is_available():
        raise ValueError(f'--device {args.device}: CUDA is not available '
                         'here; use --device cpu')
    return entries


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _write(result, out_dir):
    add_ratios(result['models'], result['reference'])
    write_report(out_dir, 'benchmark', result, render_markdown(result))


def run(args, command=''):
    """Measure every model; returns the result dict (also written)."""
    entries = check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    h, w = args.size
    result = dict(size=[h, w], num_classes=args.num_classes,
                  device=args.device, repeat=args.repeat,
                  warmup=args.warmup, latency=not args.no_latency,
                  macs_counted=not args.no_macs, reference=args.reference,
                  filter_multiplier=args.filter_multiplier,
                  command=command, machine=machine_info(device),
                  onnxruntime=args.onnxruntime, complete=False, models=[])
    if args.onnxruntime:
        import onnxruntime
        result['onnxruntime_version'] = onnxruntime.__version__
    start = time.time()
    for i, (name, label, config, path) in enumerate(entries, 1):
        if args.filter_multiplier and name.startswith('autodeeplab'):
            label += f' (F={args.filter_multiplier})'
        t0 = time.time()

        def log(msg):
            _log(f'[{i}/{len(entries)}] {label}: {msg}')

        model = build_model(name, args.num_classes, args.filter_multiplier,
                            path)
        params, params_all = inference_params(model)
        row = dict(name=name, label=label, config=config, params=params,
                   params_with_aux=params_all, macs=None, latency=None)
        log(f'{params / 1e6:.2f}M parameters ({config})')
        wrapper = SegmentorLogits(model).eval().to(device)
        torch.manual_seed(0)
        x = torch.rand(1, 3, h, w, device=device)
        if not args.no_macs:
            t1 = time.time()
            row['macs'] = count_macs(wrapper, x)
            row['macs_seconds'] = round(time.time() - t1, 1)
            log(f'{row["macs"] / 1e9:.2f} GMACs @{h}x{w} (counted in '
                f'{row["macs_seconds"]:.0f} s)')
        if not args.no_latency:
            with torch.inference_mode():
                lat = row['latency'] = latency_stats(timed(
                    lambda: wrapper(x), args.warmup, args.repeat,
                    torch.cuda.synchronize if x.is_cuda else None))
            log(f'latency median {lat["median_ms"]:.1f} ms (min '
                f'{lat["min_ms"]:.1f}, max {lat["max_ms"]:.1f}; '
                f'{args.repeat} runs)')
        if args.onnxruntime:
            try:
                ort = row['onnxruntime'] = measure_onnxruntime(
                    wrapper, x, args.repeat, args.warmup,
                    torch.get_num_threads())
                log(f'onnxruntime latency median {ort["median_ms"]:.1f} ms '
                    f'(max abs diff vs PyTorch {ort["max_abs_diff"]:.2e}; '
                    f'exported in {ort["export_seconds"]:.0f} s)')
            except Exception as e:  # a baseline that does not export
                row['onnxruntime_error'] = (f'{type(e).__name__}: '
                                            + ' '.join(str(e).split())[:300])
                log(f'onnxruntime: not measured ({row["onnxruntime_error"]})')
        row['seconds'] = round(time.time() - t0, 1)
        result['models'].append(row)
        result['seconds'] = round(time.time() - start, 1)
        _write(result, args.out)
        del wrapper, model, x
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    result['complete'] = True
    result['machine']['load_avg_end'] = round(load_average(), 2)
    _write(result, args.out)
    return result


def main(argv=None):
    args = parse_args(argv)
    command = 'python tools/analysis/benchmark.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            # mmseg's deprecation/alignment notices would bury the progress
            warnings.filterwarnings('ignore', category=UserWarning,
                                    module=r'mmseg(\.|$)')
            result = run(args, command.strip())
    except (ValueError, FileNotFoundError) as e:
        exit_with_error(e)
    print(render_markdown(result), end='')
    _log(f'written {osp.join(args.out, "benchmark.md")} and benchmark.json '
         f'({result["seconds"]:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
