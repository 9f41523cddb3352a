# The demo search with single-path supernet training
# (mmseg_autodeeplab/engine/search_remedies.py: ArchSampling); everything
# else is the demo config. Measured against the ground truth in
# docs/search_quality.md (it does not yet make the supernet rank).
# - weight steps: one uniformly drawn architecture per step for the first
#   half of the search (SPOS), then one drawn from alpha/beta at a
#   temperature annealed 2 -> 1, so the weights are trained for the discrete
#   networks a decode can hand out;
# - alpha/beta steps: REINFORCE over two architectures drawn from
#   alpha/beta, each computed without gradients, the pair's mean loss as
#   baseline (arch_step='mixed': the paper's soft step instead).
_base_ = './autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py'
train_cfg = dict(
    arch_sampling=dict(
        uniform_until=0.5, temperature=(2.0, 1.0), arch_step='reinforce'))
