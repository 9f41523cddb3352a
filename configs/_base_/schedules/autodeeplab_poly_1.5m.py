# Auto-DeepLab retraining schedule of the paper (spec section 6): 1.5M
# iterations (Cityscapes, PASCAL VOC 2012), from scratch, poly LR from 0.05.
# The paper states nothing else; the rest follows TF DeepLab's defaults:
# SGD momentum 0.9, weight decay 4e-5 on conv weights only (TF's L2
# regulariser skips BN and biases, hence the zero decay multipliers), poly
# power 0.9 down to 0. The LR is for a total batch of 16 (8 GPUs x 2): scale
# it if you change the batch size.
#
# The Checked* loops are mmengine's IterBasedTrainLoop/ValLoop/TestLoop plus
# a one-line error for a missing data root; CheckpointMatchHook turns a
# checkpoint that does not fit the model into a one-line error instead of
# mmengine's "missing keys" warnings (mmseg_autodeeplab/engine/).
_base_ = './autodeeplab_hooks.py'
max_iters = 1500000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=4e-5),
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
    type='CheckedIterBasedTrainLoop', max_iters=max_iters, val_interval=50000)
val_cfg = dict(type='CheckedValLoop')
test_cfg = dict(type='CheckedTestLoop')
default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=50000, save_best='mIoU'))
# DropPathScheduleHook feeds the training progress to scheduled drop path
# (a no-op while model.backbone.drop_path_prob is 0).
custom_hooks = [
    dict(type='DropPathScheduleHook'),
    dict(type='CheckpointMatchHook')
]
