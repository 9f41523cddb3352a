# One-shot Auto-DeepLab search at the paper's scale (docs/oneshot.md): every
# sub-network is the Auto-DeepLab-S retraining network of its genotype (F=20,
# L=12, B=5, 64/64/128 stem, its DeepLabv3+ head), trained single-path on
# Cityscapes with the S config's data, crop and schedule, then searched by
# SPOS's evolution within ±10% of the S network's multiply-adds at
# 1024x2048 (the cost table is built at the start). Not run here end to end
# (no GPUs).
_base_ = [
    '../autodeeplab/autodeeplab-s_paper-genotype_8xb2-160k_cityscapes-'
    '769x769.py', '../_base_/models/autodeeplab_oneshot_f20-l12.py'
]
retrain_config = ('configs/autodeeplab/'
                  'autodeeplab-s_paper-genotype_8xb2-160k_cityscapes-769x769.py')
model = _base_.oneshot_model
train_cfg = dict(_base_.oneshot_train_cfg, arch_cost=dict(
    _base_.oneshot_arch_cost, target=333e9,
    table='work_dirs/cost_tables/autodeeplab-s_1024x2048.json',
    build=dict(config=retrain_config, size=(1024, 2048))))
custom_hooks = [dict(type='SubnetSamplerHook', sampler='uniform')]
