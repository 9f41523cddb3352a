# Practical schedule (not the paper's): 160k iterations, ~1/10 of 1.5M, for
# Cityscapes and ADE20K. Same optimizer and poly LR as the paper schedule.
# Expect lower mIoU than the paper's numbers (see configs/autodeeplab/README).
_base_ = './autodeeplab_poly_1.5m.py'
max_iters = 160000
# the 1.5M schedule's poly decay, ending at this schedule's last iteration
param_scheduler = [dict(_base_.param_scheduler[0], end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=16000)
default_hooks = dict(checkpoint=dict(interval=16000))
