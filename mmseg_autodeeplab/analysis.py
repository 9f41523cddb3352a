"""What the command-line tools share.

Building a segmentor from a config (and a checkpoint that must fit it), its
image -> logits forward, counting its multiply-adds (mmengine's convention)
and the argparse types of the tools: each exists here once. Measurement
helpers (timing, TF's counting, reports) live in tools/analysis/measure.py.
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from .utils.errors import exit_with_error


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``error:`` line, exit code 2."""

    def error(self, message):
        exit_with_error(message, 2)


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
    """An ``argparse`` type: ``'HxW'`` -> ``(H, W)``, both ``>= minimum``."""

    def parse(text):
        try:
            h, w = (int(v) for v in text.lower().split('x'))
            if min(h, w) >= minimum:
                return h, w
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(
            f'expected HxW with integers >= {minimum}, got {text!r}')

    return parse


def require_deploy(what):
    """Raise a one-line ``ValueError`` unless onnx and onnxruntime import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ValueError(f'{what} needs the deploy extra ({e.name} is '
                         "missing): pip install 'mmseg-autodeeplab[deploy]'"
                         ) from None


def load_config(path, cfg_options=None):
    """``Config.fromfile`` (+ overrides) with every module registered."""
    from mmengine.config import Config
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_segmentor(cfg, num_classes=None):
    """``cfg.model`` (see :func:`load_config`) with random weights (no
    downloads), SyncBN reverted to BN, ``num_classes`` classes in every
    (auxiliary) head if given; in training mode."""
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    model_cfg = cfg.model
    if 'pretrained' in model_cfg:
        model_cfg.pretrained = None  # random weights suffice
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone.pop('init_cfg', None)
    for key in ('decode_head', 'auxiliary_head'):
        heads = model_cfg.get(key) or []
        for head in heads if isinstance(heads, (list, tuple)) else [heads]:
            if num_classes is not None and 'num_classes' in head:
                head['num_classes'] = num_classes
    return revert_sync_batchnorm(MODELS.build(model_cfg))


def load_segmentor(config, checkpoint=None, cfg_options=None):
    """``(model, Config)``: ``config``'s segmentor for inference (BN, no
    auxiliary head, eval mode) with the weights of ``checkpoint``, which
    must fit it exactly (mmengine's loader is not strict and would run a
    mostly random network); ``model.dataset_meta`` is the checkpoint's, as
    in mmseg's ``init_model``, or None.

    Raises:
        ValueError: one line naming the file.
    """
    from .engine.checkpoint_match_hook import (compare_state_dicts,
                                               describe_mismatch)
    from .utils.checkpoint import safe_load_checkpoint
    if not os.path.isfile(config):
        raise ValueError(f'{config}: config file not found')
    try:
        cfg = load_config(config, cfg_options)
        model = build_segmentor(cfg)
    except Exception as e:
        raise ValueError(f'{config}: cannot build the model '
                         f'({type(e).__name__}: {e})') from None
    model.dataset_meta = None
    if checkpoint is not None:
        ckpt = safe_load_checkpoint(checkpoint)
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                           dict) else None
        if not isinstance(state, dict):
            raise ValueError(f'{checkpoint}: not a checkpoint with a '
                             'state_dict')
        message = describe_mismatch(
            compare_state_dicts(model.state_dict(), state),
            f'checkpoint {checkpoint}')
        if message:
            raise ValueError(message)
        model.load_state_dict({k.removeprefix('module.'): v
                               for k, v in state.items()})
        model.dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta')
    if hasattr(model, 'auxiliary_head'):
        model.auxiliary_head = None
    return model.eval(), cfg


class SegmentorLogits(nn.Module):
    """image -> logits ``(N, C, h, w)`` of an ``EncoderDecoder``: backbone
    + neck + decode head in tensor mode (``_forward``; no auxiliary head);
    with ``resize``, resized to the input's ``(H, W)`` as mmseg's inference
    does; with ``labels``, their argmax ``(N, H, W)`` int64 instead."""

    def __init__(self, segmentor, resize=False, labels=False):
        super().__init__()
        self.segmentor = segmentor
        self.resize = resize
        self.labels = labels

    def forward(self, x):
        logits = self.segmentor._forward(x)
        if self.resize:
            logits = F.interpolate(logits, size=x.shape[2:], mode='bilinear',
                                   align_corners=self.segmentor.align_corners)
        return logits.argmax(dim=1) if self.labels else logits


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
