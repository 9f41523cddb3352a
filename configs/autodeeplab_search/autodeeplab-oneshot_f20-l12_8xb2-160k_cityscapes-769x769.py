# One-shot Auto-DeepLab search at the paper's scale (docs/oneshot.md): every
# sub-network is the Auto-DeepLab-S retraining network of its genotype (F=20,
# L=12, B=5, 64/64/128 stem, its DeepLabv3+ head), trained single-path on
# Cityscapes with the S config's data, crop and schedule, then searched by
# SPOS's evolution within ±10% of the S network's multiply-adds at
# 1024x2048 (the cost table is built at the start). Not run here end to end
# (no GPUs). B*F*2**j = 100/200/400/800 channels per level.
_base_ = ('../autodeeplab/'
          'autodeeplab-s_paper-genotype_8xb2-160k_cityscapes-769x769.py')
retrain_config = ('configs/autodeeplab/'
                  'autodeeplab-s_paper-genotype_8xb2-160k_cityscapes-769x769.py')
widths = [100, 200, 400, 800]
model = dict(
    backbone=dict(type='AutoDeepLabOneShot', num_layers=12, num_blocks=5,
                  genotype=None),
    decode_head=dict(type='AutoDeepLabOneShotHead', in_channels=widths,
                     c1_in_channels=widths))
train_cfg = dict(
    type='OneShotSearchLoop',
    search=dict(num_candidates=50, top_k=10, num_mutation=25,
                num_crossover=25, mutate_prob=0.1, max_epochs=20,
                constraints_range=(0.9, 1.1), calib_batches=32,
                metric='mAcc'),
    arch_cost=dict(
        kind='macs', target=333e9, weight=0.0,
        table='work_dirs/cost_tables/autodeeplab-s_1024x2048.json',
        build=dict(config=retrain_config, size=(1024, 2048))))
custom_hooks = [dict(type='SubnetSamplerHook', sampler='uniform')]
# each step trains one sub-network: the others' weights get no gradient
find_unused_parameters = True
randomness = dict(seed=0)
