"""``tools/export_onnx.py``: a segmentor config + checkpoint -> ONNX, verified.

Exported: backbone + neck + decode head of an mmseg ``EncoderDecoder`` and
the final bilinear resize, i.e. mmseg's whole-image inference before its
argmax. Input ``input`` ``(N, 3, H, W)`` float32, normalised by the config's
``data_preprocessor`` (as mmdeploy expects); output ``logits`` ``(N, C, H,
W)`` or (``--output labels``) ``labels`` ``(N, H, W)`` int64; ``--dynamic``
makes N, H and W dynamic. torch's TorchScript exporter traces once, so a
dynamic export is also checked at a second, odd size, where a resize or pad
frozen as a constant would show. The file appears only after
``onnx.checker`` and onnxruntime agree with PyTorch (``--atol``,
``--min-agreement``).
"""
import io
import os.path as osp

import numpy as np
import torch

from ..analysis import (OneLineParser, SegmentorLogits, load_segmentor,
                        require_deploy)
from ..utils import atomic_write_bytes, error_line, exit_with_error

#: opset of the TorchScript exporter (Resize with align_corners, GELU, ...).
OPSET = 17


class SegmentorForExport(SegmentorLogits):
    """``image -> logits (N, C, H, W)`` or ``labels (N, H, W)`` at the input
    size, as mmseg's whole-image inference computes them."""

    def __init__(self, segmentor, output='logits'):
        super().__init__(segmentor, resize=True, labels=output == 'labels')


def to_onnx(module, x, path, output_name='logits', dynamic_axes=None):
    """``torch.onnx.export`` as every export here does it: TorchScript
    exporter (the dynamo one needs onnxscript), opset :data:`OPSET`,
    constant folding, input ``input``."""
    with torch.no_grad():
        torch.onnx.export(module, (x, ), path, input_names=['input'],
                          output_names=[output_name],
                          dynamic_axes=dynamic_axes, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)


def ort_session(path, threads=None):
    """An onnxruntime CPU session of ``path`` (an ONNX file or its bytes)
    with ``threads`` intra-op threads (default: onnxruntime's choice)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def export(model, out, shape, dynamic=False, output='logits', batch=1,
           check_shape=None, atol=1e-4, min_agreement=0.9999):
    """Export ``model`` (eval mode) to ``out`` (``.onnx``), traced at
    ``shape`` ``(H, W)`` with ``batch`` images, and verify it at ``shape``
    and, if ``dynamic``, at ``check_shape`` (default about 1.5x, odd): max
    abs logit difference <= ``atol``, argmax agreement >= ``min_agreement``.
    The file appears only if every check passes.

    Returns:
        list[dict]: per checked size, ``shape``, ``max_abs_diff`` (None for
        labels), ``argmax_agreement`` and ``max_abs_output`` (the scale of
        PyTorch's output, for reading the difference).

    Raises:
        ValueError: one line on any failure (nothing is left at ``out``).
    """
    import onnx
    wrapper = SegmentorForExport(model, output).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, *shape, generator=gen)
    sizes = [tuple(shape)]
    axes = None
    if dynamic:
        sizes.append(tuple(check_shape or ((s + s // 2) | 1 for s in shape)))
        nhw = {0: 'batch', 2: 'height', 3: 'width'}
        axes = {'input': nhw, output: {0: 'batch', 1: 'height', 2: 'width'}
                if output == 'labels' else nhw}
    buffer = io.BytesIO()  # verified in memory: a failed export writes nothing
    records = []
    try:
        to_onnx(wrapper, x, buffer, output, axes)
        data = buffer.getvalue()
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
        session = ort_session(data)
        for size in sizes:
            xi = torch.randn(batch, 3, *size, generator=gen)
            with torch.no_grad():
                ref = wrapper(xi).numpy()
            got = session.run(None, {'input': xi.numpy()})[0]
            where = f'at {size[0]}x{size[1]}'
            if got.shape != ref.shape:
                raise ValueError(f'onnxruntime output {got.shape} vs '
                                 f'PyTorch {ref.shape} {where}')
            if output == 'labels':
                diff, agree = None, float((ref == got).mean())
            else:
                diff = float(np.abs(ref - got).max())
                agree = float((ref.argmax(1) == got.argmax(1)).mean())
            records.append(dict(shape=size, max_abs_diff=diff,
                                argmax_agreement=agree,
                                max_abs_output=float(abs(ref).max())))
            if (diff or 0) > atol or agree < min_agreement:
                shown = 'n/a' if diff is None else f'{diff:.3g}'
                raise ValueError(
                    f'onnxruntime disagrees with PyTorch {where}: max abs '
                    f'logit difference {shown} (limit {atol:g}), argmax '
                    f'agreement {agree:.6f} (limit {min_agreement:g})')
        atomic_write_bytes(out, data)
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f'export at {shape[0]}x{shape[1]} failed '
                         f'({type(e).__name__}: {error_line(e)[:300]})'
                         ) from None
    return records


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = OneLineParser(
        description='Export a segmentor (config + checkpoint) to ONNX and '
        'verify it with onnx.checker and onnxruntime against PyTorch.')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint (.pth); 'none' "
                        'exports random weights (for a dry run)')
    parser.add_argument('--out', required=True, help='.onnx file to write')
    parser.add_argument('--shape', nargs=2, type=int, required=True,
                        metavar=('H', 'W'), help='input size traced')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch, height and width')
    parser.add_argument('--check-shape', nargs=2, type=int,
                        metavar=('H', 'W'), help='second size checked with '
                        '--dynamic (default: about 1.5x the export size, '
                        'odd)')
    parser.add_argument('--output', choices=('logits', 'labels'),
                        default='logits', help='graph output: logits or '
                        'argmax labels')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument('--min-agreement', type=float, default=0.9999)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        metavar='KEY=VALUE', help='config overrides')
    args = parser.parse_args(argv)
    for flag, value in (('--shape', args.shape), ('--batch', [args.batch]),
                        ('--check-shape', args.check_shape or [1])):
        if min(value) < 1:
            parser.error(f'{flag} must be positive, got {value}')
    if not args.out.endswith('.onnx'):
        parser.error(f'--out must be a .onnx path, got {args.out}')
    return args


def main(argv=None):
    args = parse_args(argv)
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    try:
        require_deploy('ONNX export')
        model, _ = load_segmentor(args.config, ckpt, args.cfg_options)
        records = export(model, args.out, tuple(args.shape), args.dynamic,
                         args.output, args.batch, args.check_shape,
                         args.atol, args.min_agreement)
    except (ValueError, OSError) as e:
        exit_with_error(e)
    print(f'wrote {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB, '
          f'opset {OPSET}, {"dynamic" if args.dynamic else "static"} '
          f'{args.shape[0]}x{args.shape[1]}, output {args.output})')
    for r in records:
        diff = r['max_abs_diff']
        print(f'onnxruntime vs PyTorch at {r["shape"][0]}x{r["shape"][1]}: '
              f'max abs logit diff '
              f'{"n/a" if diff is None else f"{diff:.2e}"} (outputs up to '
              f'{r["max_abs_output"]:.3g}), argmax agreement '
              f'{100 * r["argmax_agreement"]:.4f}%')
    return 0
