# The retrain config tools/search_vs_random.py gives EVERY genotype
# (searched, random, paper): the Auto-DeepLab-S Cityscapes config scaled down
# to the generated proxy task (tools/make_demo_data.py, 64x128 images) so a
# run takes about a minute on 2 CPU cores. The tool sets
# model.backbone.genotype and the two head input channels per genotype.
# Deviations from the paper's retraining, all for the proxy's size:
# F=8 and a 16/16/32 stem (paper F=20, 64/64/128); ASPP 32 channels with
# rates 1/2/4/6 (12/24/36 cover nothing on 8x8 features); 64x64 random crops
# without rescaling (rescaling would change the texture frequencies the
# proxy's labels depend on) or photometric distortion; batch 4, 600
# iterations, poly LR from 0.05; BN instead of SyncBN.
_base_ = (
    '../autodeeplab/'
    'autodeeplab-s_paper-genotype_8xb2-160k_cityscapes-769x769.py')
data_root = 'data/demo_cityscapes/'
crop_size = (64, 64)
max_iters = 600
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(filter_multiplier=8, stem_channels=(16, 16, 32),
                  norm_cfg=norm_cfg),
    decode_head=dict(channels=32, c1_channels=8, dilations=(1, 2, 4, 6),
                     norm_cfg=norm_cfg))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=-1, save_last=False))
