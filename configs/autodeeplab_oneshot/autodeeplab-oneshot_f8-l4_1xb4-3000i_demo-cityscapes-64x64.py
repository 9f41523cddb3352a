# One-shot Auto-DeepLab on the demo proxy: one set of weights for every
# genotype of the reduced space (L=4, B=5), each sub-network EXACTLY the
# network the proxy retrain config builds (F=8, 16/16/32 stem, its head).
# Training activates one uniformly drawn genotype per iteration
# (SubnetSamplerHook) and runs only that network: SPOS's single-path step,
# at the cost of one network. B*F*2**j = 40/80/160/320 channels per level.
_base_ = ('../search_vs_random/'
          'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')
max_iters = 3000
widths = [40, 80, 160, 320]
model = dict(
    backbone=dict(type='AutoDeepLabOneShot', num_layers=4, num_blocks=5,
                  genotype=None),
    decode_head=dict(type='AutoDeepLabOneShotHead', in_channels=widths,
                     c1_in_channels=widths))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
custom_hooks = [dict(type='SubnetSamplerHook', sampler='uniform')]
default_hooks = dict(checkpoint=dict(interval=1000, save_last=True))
