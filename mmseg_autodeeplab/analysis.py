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


__all__ = ['OneLineParser', 'parse_hw', 'hw_type', 'config_path',
           'load_config', 'build_segmentor', 'SegmentorLogits', 'count_macs',
           'load_avg', 'machine_info', 'machine_line']
