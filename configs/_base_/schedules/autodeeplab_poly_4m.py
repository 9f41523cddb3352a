# The paper's ADE20K schedule: 4M iterations; otherwise as the 1.5M one.
_base_ = './autodeeplab_poly_1.5m.py'
max_iters = 4000000
# the 1.5M schedule's poly decay, ending at this schedule's last iteration
param_scheduler = [dict(_base_.param_scheduler[0], end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=100000)
default_hooks = dict(checkpoint=dict(interval=100000))
