# As the 1.5M-iteration config, with a practical 160k schedule (NOT the
# paper's; expect lower mIoU): same optimizer and poly LR.
# The keys are those of ../_base_/schedules/autodeeplab_poly_160k.py, set
# here because mmengine does not let a second base repeat keys of the first.
_base_ = './autodeeplab-s_paper-genotype_8xb2-1.5m_cityscapes-769x769.py'
max_iters = 160000
param_scheduler = [dict(_base_.param_scheduler[0], end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=16000)
default_hooks = dict(checkpoint=dict(interval=16000))
