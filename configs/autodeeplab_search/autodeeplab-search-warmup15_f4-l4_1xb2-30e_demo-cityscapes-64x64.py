# The demo search with alpha/beta updates from epoch 15 of 30 (the paper's
# ratio, 20 of 40) instead of 6: in the demo searches the decoded cell went
# from 2 to 4 skip_connect within the first two alpha/beta epochs, while the
# supernet's val mIoU was still under 10 (docs/search_quality.md).
_base_ = './autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py'
param_scheduler = dict(arch=[
    dict(type='CosineAnnealingLR', eta_min=1e-3, begin=15, end=30,
         by_epoch=True, convert_to_iter_based=True)
])
train_cfg = dict(arch_start_epoch=15)
