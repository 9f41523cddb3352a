# The paper-scale one-shot search (docs/oneshot.md) over an Auto-DeepLab-S
# retraining config: a second base beside it, whose names do not clash with
# the retraining config's (the configs set model/train_cfg from them).
# B*F*2**j = 100/200/400/800 channels per level.
oneshot_widths = [100, 200, 400, 800]
oneshot_model = dict(
    backbone=dict(type='AutoDeepLabOneShot', num_layers=12, num_blocks=5,
                  genotype=None),
    decode_head=dict(type='AutoDeepLabOneShotHead', in_channels=oneshot_widths,
                     c1_in_channels=oneshot_widths))
oneshot_search = dict(num_candidates=50, top_k=10, num_mutation=25,
                      num_crossover=25, mutate_prob=0.1, max_epochs=20,
                      constraints_range=(0.9, 1.1), calib_batches=32,
                      metric='mAcc')
oneshot_train_cfg = dict(type='OneShotSearchLoop', search=oneshot_search)
oneshot_arch_cost = dict(kind='macs', weight=0.0)  # a band, no penalty
# each step trains one sub-network: the others' weights get no gradient
find_unused_parameters = True
randomness = dict(seed=0)
