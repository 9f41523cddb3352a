"""DeepLabv3+ head in the form that reproduces Auto-DeepLab's Table 2.

Shapes: ``inputs[0]`` is the low-level feature (Cell_2, ``(N,
c1_in_channels, h1, w1)``), ``inputs[in_index]`` the ASPP input (the last
cell, ``(N, in_channels, h, w)``); logits are ``(N, num_classes, h1, w1)``.
"""
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.sep_aspp_head import \
    DepthwiseSeparableASPPHead
from mmseg.registry import MODELS

from .label_range import LabelRangeCheck


@MODELS.register_module()
class AutoDeepLabV3PlusHead(LabelRangeCheck, DepthwiseSeparableASPPHead):
    """ASPP + DeepLabv3+ decoder with FULL convs by default.

    mmseg's :class:`DepthwiseSeparableASPPHead` forward, changed only where
    the paper's counts need it: the ASPP projection is a 1×1 conv (mmseg's
    is 3×3), and with ``separable=False`` the atrous branches and the two
    decoder convs (still named ``sep_bottleneck``, as mmseg's forward
    expects) are full 3×3 convs.

    Args:
        c1_in_channels (int): channels of the low-level feature; 0 disables
            the decoder.
        c1_channels (int): low-level projection width.
        dilations (Sequence[int]): ASPP rates (a 1 is the 1×1 branch);
            default DeepLab's at output stride 8.
        separable (bool): mmseg's depthwise-separable ASPP/decoder convs.
        **kwargs: :class:`BaseDecodeHead` arguments.

    Example:
        >>> import torch
        >>> head = AutoDeepLabV3PlusHead(
        ...     in_channels=40, c1_in_channels=20, channels=16,
        ...     c1_channels=8, num_classes=3, in_index=1)
        >>> x = (torch.rand(2, 20, 25, 25), torch.rand(2, 40, 13, 13))
        >>> tuple(head(x).shape)
        (2, 3, 25, 25)
    """

    def __init__(self,
                 c1_in_channels,
                 c1_channels=48,
                 dilations=(1, 12, 24, 36),
                 separable=False,
                 in_index=1,
                 **kwargs):
        super().__init__(c1_in_channels=c1_in_channels,
                         c1_channels=c1_channels,
                         dilations=tuple(dilations),
                         in_index=in_index,
                         **kwargs)
        self.separable = separable
        conv_kw = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                       act_cfg=self.act_cfg)
        self.bottleneck = ConvModule(
            (len(self.dilations) + 1) * self.channels, self.channels, 1,
            **conv_kw)
        if not separable:
            self.aspp_modules = ASPPModule(
                self.dilations, self.in_channels, self.channels, **conv_kw)
            decoder_in = self.channels + (c1_channels
                                          if c1_in_channels > 0 else 0)
            self.sep_bottleneck = nn.Sequential(
                ConvModule(decoder_in, self.channels, 3, padding=1,
                           **conv_kw),
                ConvModule(self.channels, self.channels, 3, padding=1,
                           **conv_kw))
