# Your own dataset in mmseg's generic layout (BaseSegDataset): images and
# label maps with the same stem under
#   data_root/img_dir/{train,val}/NAME.jpg
#   data_root/ann_dir/{train,val}/NAME.png   (one class index per pixel,
#                                             255 = ignore)
# The classes come from the config that uses this base (metainfo below);
# tools/decode_genotype.py --dataset custom --classes ... writes them.
# Training crops 513x513 as the paper's VOC/ADE20K retraining; evaluation on
# the whole image, resized so that the short side is 512.
dataset_type = 'BaseSegDataset'
data_root = 'data/my_dataset'
metainfo = dict(classes=('background', 'foreground'))
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
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        pipeline=train_pipeline))
# the training loader, one image at a time in order, on the val split with
# the test pipeline
val_dataloader = dict(
    train_dataloader,
    batch_size=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        train_dataloader['dataset'],
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
