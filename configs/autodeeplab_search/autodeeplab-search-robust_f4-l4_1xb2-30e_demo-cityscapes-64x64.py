# The demo search with two remedies against first-order DARTS collapse
# (mmseg_autodeeplab/engine/search_remedies.py); everything else is the
# demo config. Evidence for each setting: docs/search_quality.md.
# - op_dropout (P-DARTS): dropout 0.3, decayed linearly to 0 over the
#   search, on the outputs of the parameter-free operators, which won the
#   vanilla demo searches by default (8 of 10 skips in one seed, 5 of 10
#   max-pools in another);
# - arch_noise (SDARTS-RS): the weight step sees alpha + U(-0.3, 0.3), so
#   the weights are trained for a neighbourhood of alpha.
_base_ = './autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py'
train_cfg = dict(
    op_dropout=dict(
        prob=0.3, ops=['skip_connect', 'max_pool_3x3', 'avg_pool_3x3']),
    arch_noise=dict(eps=0.3))
