"""Search head: per-level classifiers, upsampled to the input and summed."""
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from .label_range import LabelRangeCheck


@MODELS.register_module()
class AutoDeepLabSumHead(LabelRangeCheck, BaseDecodeHead):
    """A 1×1 classifier per level; logits upsampled to the input size, summed.

    Upsampling each level straight to the input size (taken from the labels
    or the image meta), not to /4 first, keeps the sum exactly the paper's.

    Args:
        in_channels (Sequence[int]): channels of each level's features.
        **kwargs: see :class:`BaseDecodeHead` (``input_transform`` is
            ``'multiple_select'``).
    """

    def __init__(self, in_channels, **kwargs):
        in_channels = list(in_channels)
        kwargs.setdefault('in_index', list(range(len(in_channels))))
        kwargs.setdefault('input_transform', 'multiple_select')
        kwargs.setdefault('channels', in_channels[0])
        kwargs.setdefault('init_cfg', dict(
            type='Normal', std=0.01, override=dict(name='classifiers')))
        super().__init__(in_channels, **kwargs)
        del self.conv_seg  # one classifier per level instead
        self.classifiers = nn.ModuleList(
            nn.Conv2d(c, self.out_channels, 1) for c in in_channels)

    def forward(self, inputs, out_size=None):
        """Per-level ``(N, C_j, h_j, w_j)`` -> summed logits ``(N,
        num_classes, H, W)``; ``out_size`` ``(H, W)`` defaults to 4× level
        0's."""
        feats = self._transform_inputs(inputs)
        if out_size is None:
            out_size = tuple(4 * s for s in feats[0].shape[2:])
        out = None
        for cls, x in zip(self.classifiers, feats):
            y = F.interpolate(cls(self.dropout(x) if self.dropout else x),
                              size=tuple(out_size), mode='bilinear',
                              align_corners=self.align_corners)
            out = y if out is None else out + y
        return out

    def loss(self, inputs, batch_data_samples, train_cfg):
        size = batch_data_samples[0].gt_sem_seg.data.shape[-2:]
        return self.loss_by_feat(self.forward(inputs, size),
                                 batch_data_samples)

    def predict(self, inputs, batch_img_metas, test_cfg):
        size = batch_img_metas[0]['img_shape']
        return self.predict_by_feat(self.forward(inputs, size),
                                    batch_img_metas)
