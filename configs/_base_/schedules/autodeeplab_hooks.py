# The hooks of both the search and the retraining schedules, which add only
# how they count (by epoch or by iteration) and when they checkpoint.
# AtomicCheckpointHook is mmengine's CheckpointHook writing each checkpoint
# atomically, with a sha256 beside it (mmseg_autodeeplab/engine/).
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
