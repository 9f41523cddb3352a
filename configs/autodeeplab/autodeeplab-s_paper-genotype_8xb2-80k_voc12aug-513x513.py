# As the 1.5M-iteration config, with a practical 80k schedule (NOT the
# paper's; expect lower mIoU): same optimizer and poly LR.
# The keys are those of ../_base_/schedules/autodeeplab_poly_80k.py, set
# here because mmengine does not let a second base repeat keys of the first.
_base_ = './autodeeplab-s_paper-genotype_8xb2-1.5m_voc12aug-513x513.py'
max_iters = 80000
param_scheduler = [dict(_base_.param_scheduler[0], end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
