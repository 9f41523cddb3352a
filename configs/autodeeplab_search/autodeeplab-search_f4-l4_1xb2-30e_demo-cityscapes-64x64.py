# Demo search on the generated Cityscapes-layout data (tools/make_demo_data.py)
# that runs on 2 CPU cores in minutes: a reduced space (F=4, L=4) on
# half-resolution 64x128 images, 64x64 crops, 30 epochs over trainA with
# alpha/beta from epoch 15. Same code path as the paper's search config.
_base_ = './autodeeplab-search_f8-l12_1xb2-40e_cityscapes-321x321.py'
data_root = 'data/demo_cityscapes/'
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(num_layers=4, filter_multiplier=4),
    neck=dict(in_channels=[20, 40, 80, 160]),
    decode_head=dict(in_channels=[60, 120, 240, 480]))
train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        dataset=dict(data_root=data_root, pipeline=train_pipeline)))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(
    max_epochs=30, arch_start_epoch=15, val_interval=5, val_at_start=True)
default_hooks = dict(
    logger=dict(interval=6),
    checkpoint=dict(interval=5),
    visualization=dict(type='SegVisualizationHook', draw=False))
randomness = dict(seed=0)
