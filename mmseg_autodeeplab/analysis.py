"""What the benchmark and counting tools share.

``tools/benchmark.py``, ``tools/benchmark_search.py`` and
``tools/analysis/count_autodeeplab.py`` build models from configs, count
multiply-adds of an image -> logits forward, parse ``HxW`` sizes and record
the machine they ran on; this module is the one place for each.
"""
import argparse
import os
import platform

import torch
import torch.nn as nn

from .utils.configs import find_project_config
from .utils.errors import exit_with_error


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``error:`` line, exit code 2."""

    def error(self, message):
        exit_with_error(message, 2)


def parse_hw(text, minimum=1):
    """``'HxW'`` -> ``(H, W)``; an ``argparse`` type (one-line error).

    Args:
        text (str): e.g. ``'1024x2048'``.
        minimum (int): smallest allowed height and width.
    """
    try:
        h, w = (int(v) for v in text.lower().split('x'))
        if h < minimum or w < minimum:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected HxW with integers >= {minimum}, got {text!r}'
        ) from None
    return h, w


def int_at_least(minimum):
    """An ``argparse`` type for integers ``>= minimum`` (one-line error)."""
    what = {0: 'a non-negative integer', 1: 'a positive integer'}.get(
        minimum, f'an integer >= {minimum}')

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f'expected {what}, got {text!r}')
        return value

    return parse


def hw_type(minimum):
    """An ``argparse`` type for ``HxW`` sizes of at least ``minimum``."""
    return lambda text: parse_hw(text, minimum)


def config_path(rel):
    """Absolute path of a project config (``configs/<rel>``) or of a
    ``mmseg::`` config shipped in mmseg's package.

    Raises:
        FileNotFoundError: one-line message naming the config.
    """
    if rel.startswith('mmseg::'):
        # Config.fromfile resolves ``mmseg::`` only inside ``_base_``
        import mmseg
        path = os.path.join(os.path.dirname(mmseg.__file__), '.mim',
                            'configs', rel[len('mmseg::'):])
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'{rel}: not in the installed mmseg {mmseg.__version__}')
        return path
    if os.path.isfile(rel):
        return os.path.abspath(rel)
    path = find_project_config(rel)
    if path is None:
        raise FileNotFoundError(f'cannot find config {rel} (neither in the '
                                'repo nor in the installed package)')
    return path


def load_config(path):
    """``Config.fromfile`` with every module registered (mmseg scope)."""
    from mmengine.config import Config
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    return Config.fromfile(path)


def _set_num_classes(head_cfg, num_classes):
    heads = head_cfg if isinstance(head_cfg, (list, tuple)) else [head_cfg]
    for head in heads:
        if isinstance(head, dict) and 'num_classes' in head:
            head['num_classes'] = num_classes


def build_segmentor(cfg, num_classes=None):
    """Build ``cfg.model`` without downloads, SyncBN reverted to BN.

    Args:
        cfg (Config): a segmentor config (see :func:`load_config`).
        num_classes (int, optional): classes of every (auxiliary) head.

    Returns:
        nn.Module: the segmentor, in training mode, random weights.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    model_cfg = cfg.model
    if 'pretrained' in model_cfg:
        model_cfg.pretrained = None  # random weights suffice
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone.pop('init_cfg', None)
    if num_classes is not None:
        _set_num_classes(model_cfg.decode_head, num_classes)
        if 'auxiliary_head' in model_cfg:
            _set_num_classes(model_cfg.auxiliary_head, num_classes)
    return revert_sync_batchnorm(MODELS.build(model_cfg))


class SegmentorLogits(nn.Module):
    """image -> logits via ``EncoderDecoder._forward``: backbone + neck +
    decode head in tensor mode (no auxiliary head, no final resize)."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        return self.segmentor._forward(x)


def count_macs(module, x):
    """Multiply-adds of ``module(x)`` as mmengine counts them (exactly the
    ``'flops'`` of ``get_model_complexity_info``, without its second,
    activation-counting trace)."""
    from mmengine.analysis import FlopAnalyzer
    with torch.no_grad():
        analyzer = FlopAnalyzer(module, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return int(analyzer.total())


def _ceil_to(n, multiple):
    return -(-n // multiple) * multiple


def tf_multiply_adds(segmentor, size=(1025, 2049), crop=(769, 769)):
    """Multiply-adds as TF's DeepLab graph at eval would be counted.

    The paper's Table 2 figures are reproduced by this convention (see the
    README): one forward of ``1x3xHxW`` at TF's eval size, with

    * convs: ``out_h * out_w * C_out * C_in / groups * k_h * k_w``; a
      stride-1 dilated conv (rate ``r``) counted as TF runs it, in
      SpaceToBatch form, its output sides rounded up to multiples of ``r``;
    * ASPP image pooling as TF's with a training crop size: an average pool
      of the crop's window (``(crop - 1) // stride + 1``, VALID) instead of a
      global one, so the pool and the following 1×1 conv run on a
      ``(h - p + 1) x (w - p + 1)`` map (33×161 at 1025×2049);
    * non-conv ops at half weight (TF's profiler counts one FLOP per
      element, a conv two per multiply-add): the adds that sum a cell's
      block inputs, bias adds, pools (kernel area per output) and the final
      argmax over the classes at full resolution.

    Args:
        segmentor (nn.Module): an ``EncoderDecoder`` whose decode head has
            ``num_classes``.
        size (tuple[int]): input ``(H, W)``.
        crop (tuple[int]): training crop of TF's image pooling.

    Returns:
        dict: ``conv``, ``elementwise`` (ops, full weight) and ``total``
        (``conv + elementwise / 2``) multiply-adds.
    """
    from .models.backbones.autodeeplab_net import AutoDeepLabCell
    h_in, w_in = size
    counts = dict(conv=0, elementwise=0)
    # id(global-pool output) -> (the output, kept alive so that its id is
    # not reused, and TF's pooled map (h, w)), until its conv consumes it
    pooled = {}

    def conv_hook(module, inputs, output):
        _, c_out, h, w = output.shape
        if id(inputs[0]) in pooled:
            h, w = pooled.pop(id(inputs[0]))[1]
        r = module.dilation[0]
        if r > 1 and module.stride == (1, 1):
            h, w = _ceil_to(h, r), _ceil_to(w, r)
        k = module.kernel_size[0] * module.kernel_size[1]
        counts['conv'] += h * w * c_out * module.in_channels // \
            module.groups * k
        if module.bias is not None:
            counts['elementwise'] += h * w * c_out

    def global_pool_hook(module, inputs, output):
        _, c, h, w = inputs[0].shape
        stride = round((h_in - 1) / (h - 1))
        ph, pw = ((s - 1) // stride + 1 for s in crop)
        oh, ow = max(h - ph + 1, 1), max(w - pw + 1, 1)
        pooled[id(output)] = (output, (oh, ow))
        counts['elementwise'] += oh * ow * c * min(ph, h) * min(pw, w)

    def pool_hook(module, inputs, output):
        k = module.kernel_size
        k = k * k if isinstance(k, int) else k[0] * k[1]
        counts['elementwise'] += output.numel() * k

    def cell_hook(module, inputs, output):
        # each block sums its inputs: (inputs - 1) adds per block element
        per_block = len(module.ops) // module.num_blocks
        counts['elementwise'] += (per_block - 1) * output.numel()

    hooks = []
    for m in segmentor.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            hooks.append(m.register_forward_hook(global_pool_hook))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            hooks.append(m.register_forward_hook(pool_hook))
        elif isinstance(m, AutoDeepLabCell):
            hooks.append(m.register_forward_hook(cell_hook))
    try:
        with torch.no_grad():
            segmentor._forward(torch.zeros(1, 3, h_in, w_in))
    finally:
        for h in hooks:
            h.remove()
    # argmax over the classes of the logits resized to the input
    counts['elementwise'] += (segmentor.decode_head.num_classes - 1) * \
        h_in * w_in
    counts['total'] = counts['conv'] + counts['elementwise'] / 2
    return counts


def load_avg():
    """1-minute load average (other processes skew timings), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def machine_info(device='cpu'):
    """What the numbers were measured on (a JSON-ready dict)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(cpu=cpu, cpu_count=os.cpu_count(),
                torch_threads=torch.get_num_threads(),
                torch=torch.__version__, python=platform.python_version(),
                platform=platform.platform(), device=str(device), gpu=None,
                load_avg_start=load_avg())
    if str(device).startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(torch.device(device))
    for pkg in ('mmengine', 'mmseg'):
        try:
            info[pkg] = __import__(pkg).__version__
        except Exception:  # pragma: no cover - reported, never fatal
            info[pkg] = None
    return info


def machine_line(info):
    """One line of :func:`machine_info` for a Markdown report."""
    dev = info['gpu'] or (f'{info["cpu"]} ({info["cpu_count"]} CPUs, '
                          f'{info["torch_threads"]} torch threads)')
    return (f'device: {info["device"]} ({dev}); torch {info["torch"]}, '
            f'mmengine {info["mmengine"]}, mmseg {info["mmseg"]}')


__all__ = ['OneLineParser', 'parse_hw', 'hw_type', 'int_at_least',
           'config_path',
           'load_config', 'build_segmentor', 'SegmentorLogits', 'count_macs',
           'tf_multiply_adds', 'load_avg', 'machine_info', 'machine_line']
