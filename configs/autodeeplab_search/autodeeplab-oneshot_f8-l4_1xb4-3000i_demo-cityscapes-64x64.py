# One-shot Auto-DeepLab search on the demo proxy (docs/oneshot.md): one set
# of weights for every genotype of the reduced space (L=4, B=5), each
# sub-network EXACTLY the network the proxy retrain config builds (F=8,
# 16/16/32 stem, its head). Training activates one uniformly drawn genotype
# per iteration (SubnetSamplerHook: SPOS's single-path step, at the cost of
# one network; sampler='fair' for FairNAS's strict fairness); then SPOS's
# evolution scores candidates with the inherited weights (BN re-estimated)
# on the val set, within ±10% of 14.6M multiply-adds (the ground truth's
# band). B*F*2**j = 40/80/160/320 channels per level.
_base_ = ('../search_vs_random/'
          'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')
max_iters = 3000
widths = [40, 80, 160, 320]
retrain_config = ('configs/search_vs_random/'
                  'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')
model = dict(
    backbone=dict(type='AutoDeepLabOneShot', num_layers=4, num_blocks=5,
                  genotype=None),
    decode_head=dict(type='AutoDeepLabOneShotHead', in_channels=widths,
                     c1_in_channels=widths))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='OneShotSearchLoop', max_iters=max_iters, val_interval=max_iters,
    # 100 candidates; mAcc on BN statistics of 32 batches ranked the ground
    # truth best of the scores measured (docs/oneshot.md)
    search=dict(num_candidates=20, top_k=5, num_mutation=8, num_crossover=8,
                mutate_prob=0.1, max_epochs=5, constraints_range=(0.9, 1.1),
                calib_batches=32, metric='mAcc'),
    arch_cost=dict(
        kind='macs', target=14.6e6, weight=0.0,
        table='work_dirs/cost_tables/demo_proxy_64x64.json',
        build=dict(config=retrain_config, size=(64, 64), num_layers=4)))
custom_hooks = [dict(type='SubnetSamplerHook', sampler='uniform')]
default_hooks = dict(checkpoint=dict(interval=1000, save_last=True))
# a fixed seed: the data order (mmengine seeds the sampler with it when the
# loader is built, before a resume could restore it) and the sampler's
# draws; change it with --cfg-options randomness.seed=N
randomness = dict(seed=0)
