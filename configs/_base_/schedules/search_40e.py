# Search schedule (spec 3): 40 epochs over trainA, alpha/beta from epoch 20.
# Weights: SGD 0.025 -> 0.001 cosine, momentum 0.9, wd 3e-4.
# alpha/beta: Adam 3e-3, betas (0.9, 0.999), wd 1e-3, constant LR.
_base_ = './autodeeplab_hooks.py'
optim_wrapper = dict(
    constructor='AutoDeepLabOptimWrapperConstructor',
    weights=dict(
        type='OptimWrapper',
        # foreach: one multi-tensor op per update over the supernet's
        # ~9,300 weight tensors instead of 4 ops each (torch's default on
        # CUDA only; the same arithmetic)
        optimizer=dict(
            type='SGD', lr=0.025, momentum=0.9, weight_decay=3e-4,
            foreach=True)),
    arch=dict(
        type='OptimWrapper',
        optimizer=dict(
            type='Adam', lr=3e-3, betas=(0.9, 0.999), weight_decay=1e-3)))
param_scheduler = dict(
    weights=[
        dict(
            type='CosineAnnealingLR',
            eta_min=0.001,
            by_epoch=True,
            convert_to_iter_based=True)
    ],
    arch=[])
train_cfg = dict(
    type='AutoDeepLabSearchLoop',
    max_epochs=40,
    arch_start_epoch=20,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(log_metric_by_epoch=True),
    checkpoint=dict(by_epoch=True, interval=1, save_last=True))
custom_hooks = [dict(type='GenotypeHook')]
