"""Labels outside ``[0, num_classes)`` stop training with one line, not an
``IndexError`` or a CUDA device-side assert deep inside the loss."""
from ...utils.checks import is_integer
from ...utils.errors import exit_with_error


class LabelRangeCheck:
    """Mixin for decode heads (before the mmseg head class in the bases):
    check ``num_classes`` and the labels before the loss."""

    def __init__(self, *args, **kwargs):
        num_classes = kwargs.get('num_classes')
        if num_classes is not None and not is_integer(num_classes, 1):
            exit_with_error(
                f'model.decode_head.num_classes: expected a positive '
                f'integer, got {num_classes!r}')
        super().__init__(*args, **kwargs)

    def loss_by_feat(self, seg_logits, batch_data_samples):
        for sample in batch_data_samples:
            label = sample.gt_sem_seg.data
            bad = ((label < 0) | (label >= self.num_classes)) \
                & (label != self.ignore_index)
            if bool(bad.any()):
                value = int(label[bad][0])
                where = sample.metainfo.get('seg_map_path', 'a label map')
                exit_with_error(
                    f'{where}: label value {value} is outside 0-'
                    f'{self.num_classes - 1} (num_classes='
                    f'{self.num_classes}) and is not the ignore index '
                    f'{self.ignore_index}; fix the labels (e.g. convert to '
                    'train ids) or num_classes')
        return super().loss_by_feat(seg_logits, batch_data_samples)
