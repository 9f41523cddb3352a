# The paper-scale one-shot search (docs/oneshot.md) on your own data:
# mmseg's generic layout (img_dir/, ann_dir/), as the S custom retraining
# config (docs/custom_dataset.md). Set data_root and the classes there, and
# the multiply-adds target for your crop.
_base_ = [
    '../autodeeplab/autodeeplab-s_paper-genotype_8xb2-80k_custom-513x513.py',
    '../_base_/models/autodeeplab_oneshot_f20-l12.py'
]
retrain_config = ('configs/autodeeplab/'
                  'autodeeplab-s_paper-genotype_8xb2-80k_custom-513x513.py')
model = _base_.oneshot_model
train_cfg = dict(_base_.oneshot_train_cfg, arch_cost=dict(
    _base_.oneshot_arch_cost, target=85e9,
    table='work_dirs/cost_tables/autodeeplab-s_custom_513x513.json',
    build=dict(config=retrain_config, size=(513, 513))))
custom_hooks = [dict(type='SubnetSamplerHook', sampler='uniform')]
