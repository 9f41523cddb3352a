# Auto-DeepLab-S (F=20) with the paper's genotype, retrained from scratch on
# Cityscapes 769x769 crops (paper Table 2: 10.15M params, 79.74 mIoU val).
#
# Schedule (the paper gives only "poly LR from 0.05, 1.5M iterations"; the
# rest follows TF DeepLab's defaults): SGD momentum 0.9, weight decay 4e-5
# (TF nas_arg_scope; its L2 regulariser covers conv weights only, hence no
# decay on norm layers and biases), poly power 0.9 down to 0. Batch size is
# not stated in the paper: 8 GPUs x 2 images. Scale the LR if you change it.
_base_ = [
    '../_base_/models/autodeeplab_net.py',
    'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_autodeeplab'], allow_failed_imports=False)

crop_size = (769, 769)
max_iters = 1500000
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        filter_multiplier=20,
        # Scheduled drop path (TF style; the paper reports +1.74 mIoU but
        # gives no rate): e.g. drop_path_prob=0.3 to turn it on. The hook
        # below feeds it the training progress (a no-op while it is 0).
        drop_path_prob=0.0),
    decode_head=dict(in_channels=200, c1_in_channels=100, num_classes=19),
    # Single-scale evaluation on the full 1024x2048 image, as the paper.
    test_cfg=dict(mode='whole'))

train_dataloader = dict(batch_size=2, num_workers=2)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader

optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=4e-5)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=50000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=50000,
        max_keep_ckpts=3, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [dict(type='DropPathScheduleHook')]
# 8 GPUs x 2 images per GPU
auto_scale_lr = dict(enable=False, base_batch_size=16)
