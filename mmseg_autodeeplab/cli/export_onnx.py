"""``tools/export_onnx.py``: a segmentor config + checkpoint -> ONNX, verified.

What is exported: the inference network of an mmseg ``EncoderDecoder``
(backbone + neck + decode head; no auxiliary head) with the final bilinear
resize to the input size, i.e. what mmseg's whole-image inference computes
before its argmax. Shapes:

* input ``input``: ``(N, 3, H, W)`` float32, already normalised by the
  config's ``data_preprocessor`` (mean/std, RGB order), as mmdeploy's
  segmentation exports expect;
* output ``logits``: ``(N, num_classes, H, W)`` float32, or with
  ``--output labels``: ``labels`` ``(N, H, W)`` int64 (argmax over classes).

``--dynamic`` makes N, H and W dynamic. The exporter is torch's TorchScript
ONNX exporter (``dynamo=False``; opset 17): it traces the network once, and
the trace is checked against PyTorch at a second, odd size (sizes such as
769 or 1025 give odd feature maps at every stride, where a resize or pad
taken as a constant during tracing would show).

Verification, before the file appears at ``--out`` (checked in memory, then
written atomically): ``onnx.checker.check_model``, then onnxruntime (CPU) and
PyTorch on the same seeded input: the largest absolute logit difference must
be at most ``--atol`` (1e-4) and the argmax must agree on at least
``--min-agreement`` (99.99 %) of the pixels, at the export size and, with
``--dynamic``, at ``--check-shape``.
"""
import io
import os.path as osp
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.atomic import atomic_write_bytes

#: opset of the TorchScript exporter (Resize with align_corners, GELU, ...).
OPSET = 17


class ExportError(Exception):
    """Bad input or failed verification; the message is one line."""


class SegmentorForExport(nn.Module):
    """``image -> logits | labels`` of an mmseg ``EncoderDecoder``.

    Args:
        segmentor (EncoderDecoder): the model (eval mode is set by caller).
        output (str): ``'logits'`` ``(N, C, H, W)`` or ``'labels'``
            ``(N, H, W)`` int64.
    """

    def __init__(self, segmentor, output='logits'):
        super().__init__()
        if output not in ('logits', 'labels'):
            raise ValueError(f'output must be logits or labels, got {output}')
        self.segmentor = segmentor
        self.output = output

    def forward(self, x):
        # EncoderDecoder._forward: backbone + neck + decode head (tensor mode)
        logits = self.segmentor._forward(x)
        # mmseg resizes to the input with the decode head's align_corners
        logits = F.interpolate(logits, size=x.shape[2:], mode='bilinear',
                               align_corners=self.segmentor.align_corners)
        if self.output == 'labels':
            return logits.argmax(dim=1)
        return logits


def load_segmentor(config, checkpoint=None, cfg_options=None):
    """Build ``config``'s model (SyncBN -> BN), load ``checkpoint`` strictly.

    Returns:
        tuple: ``(model in eval mode, Config)``.
    """
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from ..engine.checkpoint_match_hook import (compare_state_dicts,
                                                describe_mismatch)
    from ..utils.checkpoint import CheckpointError, safe_load_checkpoint
    register_all_modules(init_default_scope=False)
    if not osp.isfile(config):
        raise ExportError(f'{config}: config file not found')
    try:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        with DefaultScope.overwrite_default_scope('mmseg'):
            model = MODELS.build(cfg.model)
    except Exception as e:
        raise ExportError(f'{config}: cannot build the model '
                          f'({type(e).__name__}: {e})') from None
    model = revert_sync_batchnorm(model)
    if checkpoint is not None:
        try:
            ckpt = safe_load_checkpoint(checkpoint)
        except CheckpointError as e:
            raise ExportError(str(e)) from None
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                           dict) else None
        if not isinstance(state, dict):
            raise ExportError(f'{checkpoint}: not a checkpoint with a '
                              'state_dict')
        state = {k[len('module.'):] if k.startswith('module.') else k: v
                 for k, v in state.items()}
        message = describe_mismatch(
            compare_state_dicts(model.state_dict(), state),
            f'checkpoint {checkpoint}')
        if message:
            raise ExportError(message)
        model.load_state_dict(state, strict=True)
    if hasattr(model, 'auxiliary_head'):
        model.auxiliary_head = None
    return model.eval(), cfg


def to_onnx(module, x, path, output_name='logits', dynamic_axes=None):
    """``torch.onnx.export`` as every export here does it.

    TorchScript exporter (``dynamo=False``: the dynamo exporter needs
    onnxscript and re-traces through torch.export), opset :data:`OPSET`,
    constant folding, input ``input``.
    """
    with torch.no_grad():
        torch.onnx.export(module, (x, ), path, input_names=['input'],
                          output_names=[output_name],
                          dynamic_axes=dynamic_axes, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)


def ort_session(path, threads=None):
    """An onnxruntime CPU session of ``path`` (an ONNX file or its bytes).

    Args:
        threads (int, optional): intra-op threads.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def compare(reference, candidate, labels=False):
    """``(max abs difference, argmax agreement)`` of two outputs.

    Args:
        reference, candidate (np.ndarray): logits ``(N, C, H, W)`` or, with
            ``labels=True``, label maps ``(N, H, W)``.
    """
    import numpy as np
    if labels:
        return None, float((reference == candidate).mean())
    diff = float(np.abs(reference - candidate).max())
    agree = float((reference.argmax(1) == candidate.argmax(1)).mean())
    return diff, agree


def odd_check_shape(shape):
    """The default second size for ``--dynamic``: about 1.5x, odd."""
    return tuple((s + s // 2) | 1 for s in shape)


def export(model, out, shape, dynamic=False, output='logits', batch=1,
           check_shape=None, atol=1e-4, min_agreement=0.9999, seed=0):
    """Export ``model`` to ``out`` and verify it; the file appears only if
    every check passes.

    Args:
        model (EncoderDecoder): in eval mode.
        out (str): ``.onnx`` path.
        shape (tuple[int, int]): ``(H, W)`` traced (and checked).
        dynamic (bool): dynamic batch, height and width.
        output (str): ``'logits'`` or ``'labels'``.
        batch (int): batch size of the traced input.
        check_shape (tuple[int, int], optional): second size checked with
            ``dynamic`` (default :func:`odd_check_shape`).
        atol (float): largest allowed absolute logit difference.
        min_agreement (float): smallest allowed argmax agreement.
        seed (int): seed of the random check inputs.

    Returns:
        list[dict]: one record per checked size (``shape``, ``max_abs_diff``,
        ``argmax_agreement``, ``max_abs_output``: the scale of PyTorch's
        output, for reading the difference).

    Raises:
        ExportError: one line on any failure (nothing is left at ``out``).
    """
    import onnx
    wrapper = SegmentorForExport(model, output).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, *shape, generator=gen)
    try:
        with torch.no_grad():
            wrapper(x)
    except Exception as e:
        raise ExportError(f'the model does not run at {shape[0]}x{shape[1]} '
                          f'({type(e).__name__}: {" ".join(str(e).split())})'
                          ) from None
    out_name = 'labels' if output == 'labels' else 'logits'
    axes = None
    if dynamic:
        axes = {'input': {0: 'batch', 2: 'height', 3: 'width'},
                out_name: ({0: 'batch', 1: 'height', 2: 'width'}
                           if output == 'labels' else
                           {0: 'batch', 2: 'height', 3: 'width'})}
    buffer = io.BytesIO()  # verified in memory: a failed export writes nothing
    try:
        to_onnx(wrapper, x, buffer, out_name, axes)
        data = buffer.getvalue()
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
        session = ort_session(data)
        sizes = [tuple(shape)]
        if dynamic:
            sizes.append(tuple(check_shape or odd_check_shape(shape)))
        records = []
        for size in sizes:
            xi = torch.randn(batch, 3, *size, generator=gen)
            with torch.no_grad():
                ref = wrapper(xi).numpy()
            got = session.run(None, {'input': xi.numpy()})[0]
            if got.shape != ref.shape:
                raise ExportError(f'onnxruntime output {got.shape} vs '
                                  f'PyTorch {ref.shape} at {size[0]}x'
                                  f'{size[1]}')
            diff, agree = compare(ref, got, labels=output == 'labels')
            records.append(dict(shape=size, max_abs_diff=diff,
                                argmax_agreement=agree,
                                max_abs_output=float(abs(ref).max())))
            if (diff is not None and diff > atol) or agree < min_agreement:
                raise ExportError(
                    f'onnxruntime disagrees with PyTorch at {size[0]}x'
                    f'{size[1]}: max abs logit difference '
                    f'{"n/a" if diff is None else f"{diff:.3g}"} (limit '
                    f'{atol:g}), argmax agreement {agree:.6f} (limit '
                    f'{min_agreement:g})')
        atomic_write_bytes(out, data)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f'export failed ({type(e).__name__}: '
                          f'{" ".join(str(e).split())[:300]})') from None
    return records


def parse_args(argv=None):
    from mmengine.config import DictAction

    from ..analysis import OneLineParser
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
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from ..utils import error_line
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        print(f'error: ONNX export needs the deploy extra ({e.name} is '
              "missing): pip install 'mmseg-autodeeplab[deploy]'",
              file=sys.stderr)
        return 2
    import mmseg_autodeeplab  # noqa: F401  (registers our modules)
    for flag, value in (('--shape', args.shape),
                        ('--check-shape', args.check_shape)):
        if value is not None and min(value) < 1:
            print(f'error: {flag} must be positive, got {value}',
                  file=sys.stderr)
            return 2
    if args.batch < 1:
        print(f'error: --batch must be positive, got {args.batch}',
              file=sys.stderr)
        return 2
    if not args.out.endswith('.onnx'):
        print(f'error: --out must be a .onnx path, got {args.out}',
              file=sys.stderr)
        return 2
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    try:
        model, _ = load_segmentor(args.config, ckpt, args.cfg_options)
        records = export(model, args.out, tuple(args.shape), args.dynamic,
                         args.output, args.batch,
                         tuple(args.check_shape) if args.check_shape else
                         None, args.atol, args.min_agreement)
    except (ExportError, OSError) as e:
        print(f'error: {error_line(e)}', file=sys.stderr)
        return 2
    size_mb = osp.getsize(args.out) / 2**20
    print(f'wrote {args.out} ({size_mb:.1f} MiB, opset {OPSET}, '
          f'{"dynamic" if args.dynamic else "static"} '
          f'{args.shape[0]}x{args.shape[1]}, output {args.output})')
    for r in records:
        diff = r['max_abs_diff']
        print(f'onnxruntime vs PyTorch at {r["shape"][0]}x{r["shape"][1]}: '
              f'max abs logit diff '
              f'{"n/a" if diff is None else f"{diff:.2e}"} (outputs up to '
              f'{r["max_abs_output"]:.3g}), argmax agreement '
              f'{100 * r["argmax_agreement"]:.4f}%')
    return 0
