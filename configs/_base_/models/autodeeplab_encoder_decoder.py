# What the search and the retraining models share: mmseg's EncoderDecoder
# with mmseg's ImageNet mean/std, RGB, labels padded with 255 (ignored); a
# Cityscapes head (19 classes, cross-entropy); whole-image testing. The two
# model files add the backbone, the neck and the rest of the head.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        num_classes=19,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    # single-scale, whole-image evaluation (Cityscapes: the full 1024x2048
    # image, as the paper)
    test_cfg=dict(mode='whole'))
