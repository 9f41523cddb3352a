# Auto-DeepLab-S (F=20) with the paper's genotype, from scratch on Cityscapes
# 769x769 crops, the paper's 1.5M-iteration schedule (paper: Table 2: 10.15M
# params, 79.74 mIoU val). Model, SyncBN, batch 16 = 8 GPUs x 2:
# ../_base_/models/autodeeplab_net.py.
_base_ = [
    '../_base_/models/autodeeplab_net.py',
    'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/autodeeplab_poly_1.5m.py'
]
crop_size = (769, 769)
model = dict(data_preprocessor=dict(size=crop_size))
