# The data preprocessor of the search and the retraining models: mmseg's
# ImageNet mean/std, RGB, labels padded with 255 (ignored).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
