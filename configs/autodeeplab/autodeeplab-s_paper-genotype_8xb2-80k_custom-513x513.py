# Auto-DeepLab-S (F=20) with the paper's genotype, trained from scratch on
# your own dataset in mmseg's generic img_dir/ann_dir layout (see
# ../_base_/datasets/custom_513x513.py), 513x513 crops, 80k iterations.
# Set data_root and the classes for your data, e.g. with
#   python tools/decode_genotype.py configs/genotypes/autodeeplab_paper.json \
#       --dataset custom --classes sky road car --data-root data/mine \
#       --out work_dirs/mine/autodeeplab-s_mine.py
# (a small delta over this file), or --cfg-options.
_base_ = [
    '../_base_/models/autodeeplab_net.py',
    '../_base_/datasets/custom_513x513.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/autodeeplab_poly_80k.py'
]
custom_imports = dict(imports=['mmseg_autodeeplab'], allow_failed_imports=False)

crop_size = (513, 513)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(filter_multiplier=20, drop_path_prob=0.0),
    # Channels from the genotype: Cell_2 (/4) 5*20 = 100, last cell (/8) 200.
    decode_head=dict(in_channels=200, c1_in_channels=100, num_classes=2),
    test_cfg=dict(mode='whole'))
# 8 GPUs x 2 images per GPU
auto_scale_lr = dict(enable=False, base_batch_size=16)
