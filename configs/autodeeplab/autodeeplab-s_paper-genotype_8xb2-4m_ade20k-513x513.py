# Auto-DeepLab-S (F=20) with the paper's genotype, from scratch on ADE20K,
# 513x513 crops, the paper's 4M-iteration schedule (paper: 40.69 mIoU val,
# multi-scale). Model, SyncBN, batch 16 = 8 GPUs x 2:
# ../_base_/models/autodeeplab_net.py.
_base_ = [
    '../_base_/models/autodeeplab_net.py',
    '../_base_/datasets/ade20k_513x513.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/autodeeplab_poly_4m.py'
]
crop_size = (513, 513)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2, num_workers=2)
