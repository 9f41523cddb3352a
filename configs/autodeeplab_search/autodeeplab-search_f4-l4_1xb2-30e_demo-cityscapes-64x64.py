# Demo search on the generated proxy task (tools/make_demo_data.py,
# Cityscapes layout) that runs on 2 CPU cores in minutes. Same code path as
# the paper's search config; every demo-only deviation from the paper
# schedule (spec section 3) is listed here:
# - search space F=4, L=4 (paper F=8, L=12; B=5 and the 8 operators as in
#   the paper);
# - data: 64 generated 64x128 images (trainA/trainB 32 each) at their
#   generated size, 64x64 random crops (paper: 2975 Cityscapes images at
#   512x1024, 321x321 crops); validation on 16 generated images;
# - 30 epochs over trainA (480 iterations) with alpha/beta from epoch 6,
#   i.e. 384 alpha/beta steps (paper: 40 epochs, alpha/beta from 20);
# - weights SGD lr 5e-3 (cosine to 1e-3) instead of 2.5e-2: at 2.5e-2 the
#   logged loss went 4.4, 5.2, 6.6 over the first 3 epochs (batch 2); at
#   5e-3 it went 2.5, 2.4, 2.4 and val mIoU reached 9.5 at epoch 8;
# - alpha/beta Adam lr 0.1, cosine-annealed to 1e-3 over the alpha/beta
#   phase, instead of a constant 3e-3: with ~40x fewer steps than the
#   paper's search, 3e-3 left alpha at entropy ln 8 to three decimals in
#   the previous demo, and a constant 3e-2 from epoch 10 (320 steps) ended
#   at 0.94 (alpha) and 0.97 (beta) of the uniform entropy, with the
#   genotype changing at 9 of the 10 validations of the alpha/beta phase;
#   the annealing is what lets the decoded genotype settle in the budget.
#   Annealed to 1e-2 (not 1e-3) the decoded cell still flipped between
#   near-tied edges at epochs 24, 26 and 28: an Adam step moves alpha by
#   about lr whatever the gradient's size, so the last epochs need a small
#   lr, not a small gradient;
# - validation every 2 epochs plus once before training, so the plots show
#   how alpha/beta and the genotype settle.
_base_ = './autodeeplab-search_f8-l12_1xb2-40e_cityscapes-321x321.py'
data_root = 'data/demo_cityscapes/'
crop_size = (64, 64)
# the search's pipelines without its resize: the generated images are used
# at their size
train_pipeline = [
    dict(step, crop_size=crop_size) if step.type == 'RandomCrop' else step
    for step in _base_.train_pipeline if step.type != 'Resize'
]
test_pipeline = [
    step for step in _base_.test_pipeline if step.type != 'Resize'
]
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(num_layers=4, filter_multiplier=4),
    neck=dict(in_channels=[20, 40, 80, 160]),
    decode_head=dict(in_channels=[60, 120, 240, 480]))
train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        dataset=dict(data_root=data_root, pipeline=train_pipeline)))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(
    weights=dict(optimizer=dict(lr=5e-3)), arch=dict(optimizer=dict(lr=0.1)))
param_scheduler = dict(arch=[
    dict(type='CosineAnnealingLR', eta_min=1e-3, begin=6, end=30,
         by_epoch=True, convert_to_iter_based=True)
])
train_cfg = dict(
    max_epochs=30, arch_start_epoch=6, val_interval=2, val_at_start=True)
default_hooks = dict(
    logger=dict(interval=16),
    checkpoint=dict(interval=10),
    visualization=dict(type='SegVisualizationHook', draw=False))
randomness = dict(seed=0)
