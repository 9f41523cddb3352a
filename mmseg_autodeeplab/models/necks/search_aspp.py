"""Per-level simplified ASPP of the Auto-DeepLab search supernet."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.registry import MODELS


class _LevelASPP(nn.Module):
    """1×1 conv, 3×3 conv with dilation ``rate`` and image pooling, each
    ``channels`` wide, concatenated: ``(N, 3 * channels, h, w)``."""

    def __init__(self, in_channels, channels, rate, conv_cfg, norm_cfg,
                 act_cfg):
        super().__init__()
        kw = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1x1 = ConvModule(in_channels, channels, 1, **kw)
        self.conv3x3 = ConvModule(in_channels, channels, 3, padding=rate,
                                  dilation=rate, **kw)
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), ConvModule(in_channels, channels, 1,
                                                **kw))

    def forward(self, x):
        pooled = F.interpolate(self.image_pool(x), size=x.shape[2:],
                               mode='bilinear', align_corners=False)
        return torch.cat([self.conv1x1(x), self.conv3x3(x), pooled], dim=1)


@MODELS.register_module()
class AutoDeepLabSearchASPP(BaseModule):
    """One simplified ASPP per level of the supernet's last layer; the 3×3
    branch at downsample rate ``s`` has dilation ``96 / s``.

    Args:
        in_channels (Sequence[int]): channels of each level's input.
        strides (Sequence[int]): downsample rate of each level.
        channels (Sequence[int], optional): filters per branch and level;
            defaults to ``in_channels`` (``B*F*s/4``, as in the paper).
        atrous_base (int): the 96 in ``96 / s``.

    Returns (forward):
        tuple[Tensor]: per level ``(N, 3 * channels[j], h_j, w_j)``.
    """

    def __init__(self, in_channels, strides=(4, 8, 16, 32), channels=None,
                 atrous_base=96, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if len(in_channels) != len(strides):
            raise ValueError(
                f'AutoDeepLabSearchASPP: {len(in_channels)} in_channels for '
                f'{len(strides)} strides; expected one per level')
        channels = list(channels) if channels is not None else in_channels
        self.out_channels = [3 * c for c in channels]
        self.aspps = nn.ModuleList(
            _LevelASPP(i, c, max(atrous_base // s, 1), conv_cfg, norm_cfg,
                       act_cfg)
            for i, c, s in zip(in_channels, channels, strides))

    def forward(self, inputs):
        return tuple(aspp(x) for aspp, x in zip(self.aspps, inputs))
