# ADE20K (mmseg's ade20k.py: 150 classes, reduce_zero_label) with the
# paper's 513x513 training crops. Evaluation is mmseg's (short side resized
# to 512, whole image, single scale).
_base_ = 'mmseg::_base_/datasets/ade20k.py'
crop_size = (513, 513)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
