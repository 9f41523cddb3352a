# The demo search with single-path supernet training
# (mmseg_autodeeplab/engine/search_remedies.py: ArchSampling); everything
# else is the demo config. Evidence: docs/search_quality.md.
# - weight steps: one uniformly drawn architecture per step for the first
#   half of the search (SPOS), then one drawn from alpha/beta at a
#   temperature annealed 2 -> 1 (GDAS-style), so the weights are trained for
#   the discrete networks a decode can hand out;
# - alpha/beta steps: one architecture drawn from alpha/beta, straight-through
#   (the forward is the discrete network, the gradient reaches the drawn
#   operators' and moves' probabilities).
_base_ = './autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py'
train_cfg = dict(
    arch_sampling=dict(uniform_until=0.5, temperature=(2.0, 1.0)))
