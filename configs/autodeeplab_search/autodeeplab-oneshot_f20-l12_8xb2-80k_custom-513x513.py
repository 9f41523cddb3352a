# The paper-scale one-shot search (docs/oneshot.md) on your own data:
# mmseg's generic layout (img_dir/, ann_dir/), as the S custom retraining
# config (docs/custom_dataset.md). Set data_root and the classes there, and
# the multiply-adds target for your crop.
_base_ = ('../autodeeplab/'
          'autodeeplab-s_paper-genotype_8xb2-80k_custom-513x513.py')
retrain_config = ('configs/autodeeplab/'
                  'autodeeplab-s_paper-genotype_8xb2-80k_custom-513x513.py')
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
        kind='macs', target=85e9, weight=0.0,
        table='work_dirs/cost_tables/autodeeplab-s_custom_513x513.json',
        build=dict(config=retrain_config, size=(513, 513))))
custom_hooks = [dict(type='SubnetSamplerHook', sampler='uniform')]
find_unused_parameters = True
randomness = dict(seed=0)
