"""The Auto-DeepLab cell operators as data.

Shape vocabulary: ``x`` is ``(N, C, H, W)``. Every operator maps ``C`` channels
to ``C`` channels; with ``stride=2`` the spatial size becomes
``ceil(H / 2) x ceil(W / 2)`` (all convs/pools use "same" padding), so odd
inputs (97, 321, 769, ...) stay consistent across operators.

``OPS`` maps an operator name to a factory with ONE signature::

    OPS[name](channels: int, stride: int, norm_cfg: dict) -> nn.Module

``norm_cfg`` is an mmcv norm config; the supernet passes
``dict(type='BN', affine=False)`` (DARTS convention), retraining an affine
BN or SyncBN.
"""
from collections import OrderedDict

import torch.nn as nn
from mmcv.cnn import build_norm_layer

#: Operator names in the order of the last axis of α (shape ``(E, 8)``,
#: E = 20 edges for B = 5).
PRIMITIVES = (
    'none',
    'max_pool_3x3',
    'avg_pool_3x3',
    'skip_connect',
    'sep_conv_3x3',
    'sep_conv_5x5',
    'atrous_conv_3x3',
    'atrous_conv_5x5',
)

#: The zero operator: a missing connection, never decoded.
ZERO_OP = 'none'


def build_norm(norm_cfg, channels):
    """The norm layer of an mmcv ``norm_cfg`` over ``channels``."""
    return build_norm_layer(norm_cfg, channels)[1]


class Zero(nn.Module):
    """The ``none`` operator: outputs zeros of the strided shape."""

    def __init__(self, stride=1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.)
        return x[:, :, ::self.stride, ::self.stride].mul(0.)


class ReLUConvBN(nn.Sequential):
    """ReLU -> (dilated) k×k conv -> BN; the atrous operator and projections.

    The atrous operator is ONE full (not separable) conv: only this form gives
    the parameter counts of the paper's Table 2.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 dilation=1, norm_cfg=dict(type='BN')):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                      dilation=dilation, bias=False),
            build_norm(norm_cfg, out_channels))


class SepConv(nn.Sequential):
    """Two repeats of [ReLU, depthwise k×k, pointwise 1×1, BN].

    The stride (if any) is applied by the first depthwise conv only.
    """

    def __init__(self, channels, kernel_size, stride=1,
                 norm_cfg=dict(type='BN')):
        pad = (kernel_size - 1) // 2
        layers = []
        for repeat in range(2):
            s = stride if repeat == 0 else 1
            layers += [
                nn.ReLU(inplace=False),
                nn.Conv2d(channels, channels, kernel_size, s, pad,
                          groups=channels, bias=False),
                nn.Conv2d(channels, channels, 1, bias=False),
                build_norm(norm_cfg, channels),
            ]
        super().__init__(*layers)


class StridedSkip(nn.Sequential):
    """Skip connection across a stride: ReLU -> 1×1 conv stride s -> BN."""

    def __init__(self, channels, stride, norm_cfg=dict(type='BN')):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, 1, stride, bias=False),
            build_norm(norm_cfg, channels))


def _skip(channels, stride, norm_cfg):
    return nn.Identity() if stride == 1 else StridedSkip(
        channels, stride, norm_cfg)


OPS = OrderedDict([
    ('none', lambda c, stride, norm_cfg: Zero(stride)),
    ('max_pool_3x3', lambda c, stride, norm_cfg: nn.MaxPool2d(3, stride, 1)),
    ('avg_pool_3x3', lambda c, stride, norm_cfg: nn.AvgPool2d(
        3, stride, 1, count_include_pad=False)),
    ('skip_connect', _skip),
    ('sep_conv_3x3', lambda c, stride, norm_cfg: SepConv(c, 3, stride,
                                                         norm_cfg)),
    ('sep_conv_5x5', lambda c, stride, norm_cfg: SepConv(c, 5, stride,
                                                         norm_cfg)),
    ('atrous_conv_3x3', lambda c, stride, norm_cfg: ReLUConvBN(
        c, c, 3, stride, dilation=2, norm_cfg=norm_cfg)),
    ('atrous_conv_5x5', lambda c, stride, norm_cfg: ReLUConvBN(
        c, c, 5, stride, dilation=2, norm_cfg=norm_cfg)),
])
assert tuple(OPS) == PRIMITIVES


def check_op_names(names, where='ops'):
    """Raise a one-line ``ValueError`` if any name is not a known operator.

    Args:
        names (Sequence[str]): operator names to check.
        where (str): what the names came from, for the message.
    """
    for name in names:
        if name not in OPS:
            raise ValueError(
                f'{where}: unknown operator {name!r}; expected one of '
                f'{", ".join(PRIMITIVES)}')


def build_op(name, channels, stride=1, norm_cfg=dict(type='BN')):
    """Build operator ``name`` mapping ``channels`` to ``channels``."""
    check_op_names([name])
    return OPS[name](channels, stride, norm_cfg)


__all__ = ['PRIMITIVES', 'ZERO_OP', 'OPS', 'build_op', 'build_norm',
           'check_op_names', 'ReLUConvBN', 'SepConv', 'Zero']
