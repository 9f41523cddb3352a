"""The Auto-DeepLab cell operators as data.

Every operator maps ``x`` ``(N, C, H, W)`` to ``C`` channels; with
``stride=2`` to ``ceil(H / 2) x ceil(W / 2)`` ("same" padding everywhere, so
odd sizes such as 769 stay consistent). ``OPS`` maps a name to a factory
with ONE signature, ``OPS[name](channels, stride, norm_cfg) -> nn.Module``;
``norm_cfg`` is an mmcv norm config (the supernet's is
``dict(type='BN', affine=False)``, as DARTS; retraining's an affine BN).
"""
import torch.nn as nn
from mmcv.cnn import build_norm_layer

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
        return x[:, :, ::self.stride, ::self.stride].mul(0.)


class ReLUConvBN(nn.Sequential):
    """ReLU -> (dilated) k×k conv -> BN: the atrous operator, the strided
    skip and the projections. The atrous operator is ONE full conv: only
    that gives the parameter counts of the paper's Table 2."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 dilation=1, norm_cfg=dict(type='BN')):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                      dilation=dilation, bias=False),
            build_norm(norm_cfg, out_channels))


class SepConv(nn.Sequential):
    """Two repeats of [ReLU, depthwise k×k, pointwise 1×1, BN]; the stride
    (if any) is applied by the first depthwise conv only."""

    def __init__(self, channels, kernel_size, stride=1,
                 norm_cfg=dict(type='BN')):
        layers = []
        for s in (stride, 1):
            layers += [
                nn.ReLU(inplace=False),
                nn.Conv2d(channels, channels, kernel_size, s,
                          (kernel_size - 1) // 2, groups=channels, bias=False),
                nn.Conv2d(channels, channels, 1, bias=False),
                build_norm(norm_cfg, channels)]
        super().__init__(*layers)


def _skip(c, stride, norm_cfg):
    # across a stride: ReLU -> 1×1 conv stride 2 -> BN
    return nn.Identity() if stride == 1 else ReLUConvBN(
        c, c, 1, stride, norm_cfg=norm_cfg)


OPS = {
    'none': lambda c, stride, norm_cfg: Zero(stride),
    'max_pool_3x3': lambda c, stride, norm_cfg: nn.MaxPool2d(3, stride, 1),
    'avg_pool_3x3': lambda c, stride, norm_cfg: nn.AvgPool2d(
        3, stride, 1, count_include_pad=False),
    'skip_connect': _skip,
    'sep_conv_3x3': lambda c, stride, norm_cfg: SepConv(c, 3, stride,
                                                        norm_cfg),
    'sep_conv_5x5': lambda c, stride, norm_cfg: SepConv(c, 5, stride,
                                                        norm_cfg),
    'atrous_conv_3x3': lambda c, stride, norm_cfg: ReLUConvBN(
        c, c, 3, stride, dilation=2, norm_cfg=norm_cfg),
    'atrous_conv_5x5': lambda c, stride, norm_cfg: ReLUConvBN(
        c, c, 5, stride, dilation=2, norm_cfg=norm_cfg),
}
#: Operator names in the order of the last axis of α (shape ``(E, 8)``).
PRIMITIVES = tuple(OPS)


def check_op_names(names, where='ops'):
    """Raise a one-line ``ValueError`` if any name is not a known operator;
    ``where`` names the names' source in the message."""
    for name in names:
        if name not in OPS:
            raise ValueError(
                f'{where}: unknown operator {name!r}; expected one of '
                f'{", ".join(PRIMITIVES)}')


def build_op(name, channels, stride=1, norm_cfg=dict(type='BN')):
    """Build operator ``name`` mapping ``channels`` to ``channels``."""
    check_op_names([name])
    return OPS[name](channels, stride, norm_cfg)
