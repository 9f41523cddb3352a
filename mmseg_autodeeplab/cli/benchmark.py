"""``tools/benchmark.py``: Auto-DeepLab-S/M/L next to mmseg's baselines.

Every model is built from a config (ours in ``configs/autodeeplab/``, the
baselines from mmseg's own packaged configs via ``mmseg::``), with
``pretrained=None`` (nothing is downloaded), 19 classes, SyncBN reverted to
BN, in eval mode, and measured the same way:

* parameters of the inference network: backbone + neck + decode head
  (auxiliary heads, used only for training, are left out; the JSON also gives
  the count with them);
* multiply-adds (MACs) of one ``1x3xHxW`` forward through backbone + neck +
  decode head in tensor mode (``EncoderDecoder._forward``: logits at the
  head's resolution, the final resize to the input size excluded), counted
  by mmengine's :class:`~mmengine.analysis.FlopAnalyzer`, i.e. exactly the
  ``'flops'`` of ``mmengine.analysis.get_model_complexity_info(wrapper,
  inputs=(x,))`` (mmengine's "flops" are MACs) without its second,
  activation-counting trace;
* latency of the same forward, batch 1: ``--warmup`` untimed runs, then
  ``--repeat`` timed ones (``torch.cuda.synchronize`` around each on GPU);
  median, min, max and the interquartile range are reported.

``--config FILE`` (repeatable) adds any segmentor config (a decoded one, a
custom one, another mmseg model) to the same run, built and measured the
same way (with ``--num-classes`` classes, like the rest of the table).

``--onnxruntime`` adds a second runtime: each model's same forward is
exported to ONNX (``tools/export_onnx.py``'s recipe: TorchScript exporter,
opset 17, static input size), checked against PyTorch on the timing input
(max abs difference recorded) and timed in onnxruntime's CPU provider with
the same threads, warm-up and repeats. A model that does not export gets a
dash and the reason in the JSON.

Ratios are given against ``--reference`` (DeepLabV3+ R-101-D8 by default).
Results are written as Markdown and JSON (atomically, after every model, so
an interrupted run keeps what it measured).
"""
import os
import os.path as osp
import statistics
import sys
import time

from ..analysis import (OneLineParser, SegmentorLogits, build_segmentor,
                        config_path, count_macs, hw_type, int_at_least,
                        load_avg, load_config, machine_info, machine_line)
from ..utils import exit_with_error

#: name -> (label, config). ``mmseg::`` configs come from mmseg's package.
MODEL_ZOO = {
    'autodeeplab-s': ('Auto-DeepLab-S', 'autodeeplab/autodeeplab-s_paper-'
                      'genotype_8xb2-1.5m_cityscapes-769x769.py'),
    'autodeeplab-m': ('Auto-DeepLab-M', 'autodeeplab/autodeeplab-m_paper-'
                      'genotype_8xb2-1.5m_cityscapes-769x769.py'),
    'autodeeplab-l': ('Auto-DeepLab-L', 'autodeeplab/autodeeplab-l_paper-'
                      'genotype_8xb2-1.5m_cityscapes-769x769.py'),
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
}
DEFAULT_MODELS = list(MODEL_ZOO)
REFERENCE = 'deeplabv3plus-r101'


class BenchmarkError(Exception):
    """Bad input for the benchmark; the message is one line."""


def config_entries(paths):
    """``(name, label, path)`` for each ``--config`` file (label: stem)."""
    entries = []
    for path in paths:
        if not osp.isfile(path):
            raise BenchmarkError(f'--config {path}: no such config file')
        stem = osp.splitext(osp.basename(path))[0]
        entries.append((f'config:{stem}', stem, path))
    names = [e[0] for e in entries]
    if len(set(names)) != len(names):
        raise BenchmarkError('--config lists two configs with the same file '
                             'name')
    return entries


# --------------------------------------------------------------------------
# building
def build_model(name, num_classes=19, filter_multiplier=None, path=None):
    """Build a benchmark model in eval mode (no pretrained weights, BN).

    Args:
        name (str): a key of :data:`MODEL_ZOO` (or any name with ``path``).
        num_classes (int): classes of every head.
        filter_multiplier (int, optional): F for the Auto-DeepLab models
            (head channels follow); ignored for the baselines.
        path (str, optional): a config file (``--config``), built as is.

    Returns:
        EncoderDecoder: the segmentor.
    """
    if path is not None:
        try:
            cfg = load_config(path)
        except Exception as e:
            raise BenchmarkError(f'--config {path}: cannot load it '
                                 f'({type(e).__name__}: {e})') from None
        return build_segmentor(cfg, num_classes).eval()
    cfg = load_config(config_path(MODEL_ZOO[name][1]))
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
    """``(params without auxiliary heads, all params)``."""
    total = infer = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if not name.startswith('auxiliary_head.'):
            infer += p.numel()
    return infer, total


def measure_latency(wrapper, x, repeat, warmup):
    """Per-run seconds of ``wrapper(x)`` after ``warmup`` untimed runs."""
    import torch
    cuda = x.is_cuda
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeat):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            wrapper(x)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return times


def measure_onnxruntime(wrapper, x, repeat, warmup, threads):
    """Export ``wrapper`` (static, at ``x``'s size), check it against
    PyTorch on ``x`` and time it in onnxruntime.

    Returns:
        dict: latency stats (:func:`latency_stats`), ``max_abs_diff`` vs
        PyTorch, ``export_seconds``.
    """
    import tempfile

    import numpy as np
    import torch

    from .export_onnx import ort_session, to_onnx
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'model.onnx')
        t0 = time.time()
        to_onnx(wrapper, x, path)
        export_seconds = time.time() - t0
        session = ort_session(path, threads)
        feed = {'input': x.cpu().numpy()}
        times = []
        for i in range(warmup + repeat):
            t1 = time.perf_counter()
            out = session.run(None, feed)[0]
            if i >= warmup:
                times.append(time.perf_counter() - t1)
    with torch.inference_mode():
        ref = wrapper(x).cpu().numpy()
    stats = latency_stats(times)
    stats['max_abs_diff'] = float(np.abs(ref - out).max())
    stats['max_abs_output'] = float(np.abs(ref).max())
    stats['export_seconds'] = round(export_seconds, 1)
    return stats


def latency_stats(times):
    """Median/min/max/IQR in milliseconds of a list of seconds."""
    ms = sorted(t * 1e3 for t in times)
    if len(ms) >= 2:
        q1, _, q3 = statistics.quantiles(ms, n=4, method='inclusive')
    else:
        q1 = q3 = ms[0]
    return dict(median_ms=statistics.median(ms), min_ms=ms[0],
                max_ms=ms[-1], q1_ms=q1, q3_ms=q3, runs_ms=ms)


# --------------------------------------------------------------------------
# report
def _ratio(row, ref, key):
    if ref is None or row.get(key) is None or not ref.get(key):
        return None
    return row[key] / ref[key]


def add_ratios(rows, reference):
    """Add ``*_ratio`` fields vs the ``reference`` row (None if absent)."""
    ref = next((r for r in rows if r['name'] == reference), None)
    for row in rows:
        row['params_ratio'] = _ratio(row, ref, 'params')
        row['macs_ratio'] = _ratio(row, ref, 'macs')
        lat = row.get('latency') or {}
        ref_lat = (ref or {}).get('latency') or {}
        row['latency_ratio'] = (lat['median_ms'] / ref_lat['median_ms']
                                if lat and ref_lat else None)
        ort = row.get('onnxruntime') or {}
        ref_ort = (ref or {}).get('onnxruntime') or {}
        row['ort_latency_ratio'] = (ort['median_ms'] / ref_ort['median_ms']
                                    if ort and ref_ort else None)
        row['ort_speedup'] = (lat['median_ms'] / ort['median_ms']
                              if lat and ort else None)
    return rows


def _f(value, scale=1., digits=2, suffix=''):
    return '–' if value is None else f'{value / scale:.{digits}f}{suffix}'


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
        '(--no-latency).',
        f'Command: `{result["command"]}`',
        '',
    ]
    if ort:
        lines[-1:-1] = [
            f'onnxruntime {result.get("onnxruntime_version")} '
            '(CPUExecutionProvider, same threads): the same forward '
            'exported to ONNX (opset 17, static size), same input, warm-up '
            'and repeats; PyTorch / ORT > 1 means onnxruntime is faster.']
    header = ['Model', 'Params (M)', f'MACs @{h}x{w} (G)',
              'Latency median (ms)', 'min–max (ms)', 'IQR (ms)',
              f'Params / {ref}', f'MACs / {ref}', f'Latency / {ref}']
    if ort:
        header += ['ORT latency median (ms)', 'ORT min–max (ms)',
                   'PyTorch / ORT', f'ORT latency / {ref}']
    lines += ['| ' + ' | '.join(header) + ' |',
              '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|']
    for r in result['models']:
        lat = r.get('latency')
        cells = [r['label'], _f(r['params'], 1e6), _f(r.get('macs'), 1e9)]
        if lat:
            cells += [f'{lat["median_ms"]:.1f}',
                      f'{lat["min_ms"]:.1f}–{lat["max_ms"]:.1f}',
                      f'{lat["q1_ms"]:.1f}–{lat["q3_ms"]:.1f}']
        else:
            cells += ['–', '–', '–']
        cells += [_f(r['params_ratio'], digits=3, suffix='×'),
                  _f(r['macs_ratio'], digits=3, suffix='×'),
                  _f(r['latency_ratio'], digits=3, suffix='×')]
        if ort:
            o = r.get('onnxruntime')
            cells += ([f'{o["median_ms"]:.1f}',
                       f'{o["min_ms"]:.1f}–{o["max_ms"]:.1f}'] if o else
                      ['–', '–'])
            cells += [_f(r.get('ort_speedup'), digits=2, suffix='×'),
                      _f(r.get('ort_latency_ratio'), digits=3, suffix='×')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    if not any(r['name'] == result['reference'] for r in result['models']):
        lines += ['', f'(Ratios need the reference {result["reference"]} '
                  'among --models.)']
    return '\n'.join(lines) + '\n'


# --------------------------------------------------------------------------
# command line
def parse_args(argv=None):
    parser = OneLineParser(
        description='Parameters, multiply-adds and latency of Auto-DeepLab '
        'S/M/L and mmseg baselines, side by side.')
    parser.add_argument('--models', nargs='+', default=DEFAULT_MODELS,
                        metavar='NAME', help='models to measure (default: '
                        f'all): {", ".join(MODEL_ZOO)}')
    parser.add_argument('--size', type=hw_type(32), default=(1024, 2048),
                        help='input HxW (default 1024x2048)')
    parser.add_argument('--device', default='cpu',
                        help='cpu, cuda or cuda:N (default cpu)')
    parser.add_argument('--repeat', type=int_at_least(1), default=10,
                        help='timed runs per model (default 10)')
    parser.add_argument('--warmup', type=int_at_least(0), default=2,
                        help='untimed runs before timing (default 2)')
    parser.add_argument('--no-latency', action='store_true',
                        help='count parameters and MACs only')
    parser.add_argument('--no-macs', action='store_true',
                        help='skip MAC counting (parameters and latency)')
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
    parser.add_argument('--out', default='work_dirs/benchmark',
                        help='folder for benchmark.json and benchmark.md')
    return parser.parse_args(argv)


def check_args(args):
    """Raise :class:`BenchmarkError` (one line) on unusable arguments."""
    valid = ', '.join(MODEL_ZOO)
    unknown = [m for m in args.models if m not in MODEL_ZOO]
    if unknown:
        raise BenchmarkError(f'unknown model {unknown[0]!r}; valid names: '
                             f'{valid}')
    if len(set(args.models)) != len(args.models):
        raise BenchmarkError('--models lists a model twice')
    config_entries(args.config)
    if args.onnxruntime:
        if args.device != 'cpu':
            raise BenchmarkError('--onnxruntime times the CPU provider: use '
                                 '--device cpu')
        if args.no_latency:
            raise BenchmarkError('--onnxruntime measures latency: drop '
                                 '--no-latency')
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as e:
            raise BenchmarkError(
                f'--onnxruntime needs the deploy extra ({e.name} is '
                "missing): pip install 'mmseg-autodeeplab[deploy]'") from None
    if args.reference not in MODEL_ZOO:
        raise BenchmarkError(f'unknown --reference {args.reference!r}; '
                             f'valid names: {valid}')
    import torch
    dev = args.device
    if dev.startswith('cuda'):
        if not torch.cuda.is_available():
            raise BenchmarkError(f'--device {dev}: CUDA is not available '
                                 'here; use --device cpu')
        try:
            torch.device(dev)
        except RuntimeError:
            raise BenchmarkError(f'--device {dev}: not a device') from None
    elif dev != 'cpu':
        raise BenchmarkError(f'--device {dev}: expected cpu, cuda or cuda:N')


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _write(result, out_dir):
    from ..utils import atomic_write_json, atomic_write_text
    os.makedirs(out_dir, exist_ok=True)
    add_ratios(result['models'], result['reference'])
    atomic_write_json(osp.join(out_dir, 'benchmark.json'), result)
    atomic_write_text(osp.join(out_dir, 'benchmark.md'),
                      render_markdown(result))


def run(args, command=''):
    """Measure every model; returns the result dict (also written)."""
    import torch
    check_args(args)
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
    # (name, label, config as shown, file for --config entries)
    entries = [(name, ) + MODEL_ZOO[name] + (None, ) for name in args.models]
    entries += [(name, label, path, path)
                for name, label, path in config_entries(args.config)]
    start = time.time()
    n = len(entries)
    for i, (name, label, config, path) in enumerate(entries, 1):
        if args.filter_multiplier and name.startswith('autodeeplab'):
            label += f' (F={args.filter_multiplier})'
        t0 = time.time()
        _log(f'[{i}/{n}] {label}: building from {config}')
        model = build_model(name, args.num_classes, args.filter_multiplier,
                            path)
        params, params_all = inference_params(model)
        row = dict(name=name, label=label, config=config,
                   params=params, params_with_aux=params_all, macs=None,
                   latency=None)
        _log(f'[{i}/{n}] {label}: {params / 1e6:.2f}M parameters')
        wrapper = SegmentorLogits(model).eval().to(device)
        torch.manual_seed(0)
        x = torch.rand(1, 3, h, w, device=device)
        if not args.no_macs:
            t1 = time.time()
            row['macs'] = count_macs(wrapper, x)
            row['macs_seconds'] = round(time.time() - t1, 1)
            _log(f'[{i}/{n}] {label}: {row["macs"] / 1e9:.2f} GMACs '
                 f'@{h}x{w} (counted in {row["macs_seconds"]:.0f} s)')
        if not args.no_latency:
            stats = latency_stats(measure_latency(wrapper, x, args.repeat,
                                                  args.warmup))
            row['latency'] = stats
            _log(f'[{i}/{n}] {label}: latency median '
                 f'{stats["median_ms"]:.1f} ms (min {stats["min_ms"]:.1f}, '
                 f'max {stats["max_ms"]:.1f}; {args.repeat} runs)')
        if args.onnxruntime:
            try:
                ort = measure_onnxruntime(wrapper, x, args.repeat,
                                          args.warmup,
                                          torch.get_num_threads())
            except Exception as e:  # a baseline that does not export
                row['onnxruntime_error'] = (f'{type(e).__name__}: '
                                            + ' '.join(str(e).split())[:300])
                _log(f'[{i}/{n}] {label}: onnxruntime: not measured '
                     f'({row["onnxruntime_error"]})')
            else:
                row['onnxruntime'] = ort
                _log(f'[{i}/{n}] {label}: onnxruntime latency median '
                     f'{ort["median_ms"]:.1f} ms (max abs diff vs PyTorch '
                     f'{ort["max_abs_diff"]:.2e}; exported in '
                     f'{ort["export_seconds"]:.0f} s)')
        row['seconds'] = round(time.time() - t0, 1)
        result['models'].append(row)
        result['seconds'] = round(time.time() - start, 1)
        _write(result, args.out)
        del wrapper, model, x
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    result['complete'] = True
    result['machine']['load_avg_end'] = load_avg()
    _write(result, args.out)
    return result


def main(argv=None):
    import warnings
    args = parse_args(argv)
    command = 'python tools/benchmark.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            # mmseg's deprecation/alignment notices would bury the progress
            warnings.filterwarnings('ignore', category=UserWarning,
                                    module=r'mmseg(\.|$)')
            result = run(args, command.strip())
    except (BenchmarkError, FileNotFoundError) as e:
        exit_with_error(e)
    print(render_markdown(result), end='')
    _log(f'written {osp.join(args.out, "benchmark.md")} and benchmark.json '
         f'({result["seconds"]:.0f} s)')
    return 0


__all__ = ['MODEL_ZOO', 'BenchmarkError', 'build_model', 'count_macs',
           'measure_latency', 'latency_stats', 'machine_info', 'add_ratios',
           'render_markdown', 'inference_params', 'run', 'main']
