"""DeepLabv3+ head in the form that reproduces Auto-DeepLab's Table 2.

Shapes: ``inputs`` is the backbone's tuple; ``inputs[0]`` is the low-level
feature ``c1`` (Cell_2, ``(N, c1_in_channels, h1, w1)``) and
``inputs[in_index]`` the ASPP input (the last cell,
``(N, in_channels, h, w)``).
Output: logits ``(N, num_classes, h1, w1)``.
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

    mmseg's :class:`DepthwiseSeparableASPPHead` already has the DeepLabv3+
    forward (image pooling + ASPP branches, projection, 48-ch low-level
    projection, two 3×3 convs on the concat, classifier). This head changes
    only what the paper's counts need (spec section 6):

    * the ASPP projection of the concat is a 1×1 conv (mmseg's ASPPHead uses a
      3×3 one, as its DeepLabv3 ancestor does not);
    * with ``separable=False`` (default) the atrous ASPP branches and the two
      decoder convs are full 3×3 convs; ``separable=True`` gives mmseg's
      depthwise-separable versions.

    The decoder convs keep mmseg's attribute name ``sep_bottleneck`` (its
    forward uses it) even when they are full convs.

    Args:
        c1_in_channels (int): channels of the low-level feature (the
            backbone's ``out_channels[0]``); 0 disables the decoder.
        c1_channels (int): low-level projection width. Default 48.
        dilations (Sequence[int]): ASPP rates; a 1 is the 1×1 branch.
            Default ``(1, 12, 24, 36)`` (DeepLab's rates at output stride 8).
        separable (bool): depthwise-separable ASPP/decoder convs.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``,
            ``channels`` (256), ``num_classes``, ``in_index`` (1), ...).

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
