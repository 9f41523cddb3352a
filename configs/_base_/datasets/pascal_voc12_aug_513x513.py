# PASCAL VOC 2012 + SBD aug (mmseg's pascal_voc12_aug.py) with the paper's
# 513x513 training crops. mmseg's training set is a ConcatDataset of
# train.txt (SegmentationClass) and aug.txt (SegmentationClassAug); config
# lists replace rather than merge, so both parts are spelled out here with
# the 513 pipeline. Evaluation is mmseg's (short side resized to 512, whole
# image, val.txt).
_base_ = 'mmseg::_base_/datasets/pascal_voc12_aug.py'
crop_size = (513, 513)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Pad', size=crop_size),
    dict(type='PackSegInputs')
]
# mmseg's two VOC parts (type, root, files) with the 513 pipeline
dataset_train = dict(
    type=_base_.dataset_type,
    data_root=_base_.data_root,
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    ann_file='ImageSets/Segmentation/train.txt',
    pipeline=train_pipeline)
dataset_aug = dict(
    dataset_train,
    data_prefix=dict(
        img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
    ann_file='ImageSets/Segmentation/aug.txt')
train_dataloader = dict(
    dataset=dict(type='ConcatDataset', datasets=[dataset_train, dataset_aug]))
