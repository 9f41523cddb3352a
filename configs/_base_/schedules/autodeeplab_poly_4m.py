# The paper's ADE20K schedule: 4M iterations; otherwise as the 1.5M one.
_base_ = './autodeeplab_poly_1.5m.py'
max_iters = 4000000
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=100000)
default_hooks = dict(checkpoint=dict(interval=100000))
