"""The DeepLabv3+ head in the form of Auto-DeepLab's Table 2."""
import pytest
import torch
from mmcv.cnn import DepthwiseSeparableConvModule

import mmseg_autodeeplab  # noqa: F401
from mmseg_autodeeplab.models.decode_heads.autodeeplab_head import \
    AutoDeepLabV3PlusHead


def _head(**kwargs):
    cfg = dict(in_channels=40, c1_in_channels=20, channels=16, c1_channels=8,
               num_classes=3, norm_cfg=dict(type='BN', requires_grad=True))
    cfg.update(kwargs)
    return AutoDeepLabV3PlusHead(**cfg)


def _inputs(batch=2, low=25, high=13):
    return (torch.rand(batch, 20, low, low), torch.rand(batch, 40, high, high))


def _convs(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize('separable', [False, True])
def test_forward_backward_odd_sizes(separable):
    head = _head(separable=separable).train()
    out = head(_inputs())
    assert out.shape == (2, 3, 25, 25)  # at the low-level feature's size
    out.mean().backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert not missing


def test_full_convs_and_1x1_projection_by_default():
    head = _head()
    assert head.in_index == 1
    assert head.dilations == (1, 12, 24, 36)
    # ASPP: 1x1 + three full 3x3 atrous convs with the given rates
    convs = [m[0] if isinstance(m, torch.nn.Sequential) else m.conv
             for m in head.aspp_modules]
    assert [(c.kernel_size, c.dilation, c.groups) for c in convs] == [
        ((1, 1), (1, 1), 1), ((3, 3), (12, 12), 1), ((3, 3), (24, 24), 1),
        ((3, 3), (36, 36), 1)]
    assert head.bottleneck.conv.kernel_size == (1, 1)
    assert head.bottleneck.conv.in_channels == 5 * 16
    assert head.c1_bottleneck.conv.out_channels == 8
    dec = _convs(head.sep_bottleneck)
    assert [(c.in_channels, c.kernel_size, c.groups) for c in dec] == [
        (16 + 8, (3, 3), 1), (16, (3, 3), 1)]
    assert not any(isinstance(m, DepthwiseSeparableConvModule)
                   for m in head.modules())


def test_separable_option():
    head = _head(separable=True, dilations=(1, 6, 12, 18))
    assert head.dilations == (1, 6, 12, 18)
    seps = [m for m in head.modules()
            if isinstance(m, DepthwiseSeparableConvModule)]
    assert len(seps) == 3 + 2  # three atrous ASPP branches + two decoder
    assert head.bottleneck.conv.kernel_size == (1, 1)
    assert sum(p.numel() for p in head.parameters()) < sum(
        p.numel() for p in _head().parameters())


def test_paper_head_parameter_count():
    """S: ASPP on 200 ch (/8), low-level 100 ch, 19 classes, 256 ch."""
    head = AutoDeepLabV3PlusHead(
        in_channels=200, c1_in_channels=100, channels=256, num_classes=19,
        norm_cfg=dict(type='BN', requires_grad=True))
    bn = 2 * 256
    expected = (
        (200 * 256 + bn)  # ASPP 1x1
        + 3 * (200 * 256 * 9 + bn)  # three full 3x3 atrous
        + (200 * 256 + bn)  # image pooling
        + (5 * 256 * 256 + bn)  # 1x1 projection
        + (100 * 48 + 2 * 48)  # low-level projection
        + ((256 + 48) * 256 * 9 + bn)  # decoder conv 1
        + (256 * 256 * 9 + bn)  # decoder conv 2
        + (256 * 19 + 19))  # classifier
    assert sum(p.numel() for p in head.parameters()) == expected


def test_without_decoder():
    head = _head(c1_in_channels=0)
    assert head.c1_bottleneck is None
    assert head(_inputs()).shape == (2, 3, 13, 13)
