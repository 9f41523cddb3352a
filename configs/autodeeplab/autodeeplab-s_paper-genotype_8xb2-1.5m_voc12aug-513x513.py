# Auto-DeepLab-S (F=20) with the paper's genotype, from scratch on PASCAL VOC
# 2012 + aug, 513x513 crops, the paper's 1.5M-iteration schedule (paper: 71.68
# mIoU val, single scale). Model, SyncBN, batch 16 = 8 GPUs x 2:
# ../_base_/models/autodeeplab_net.py.
_base_ = [
    '../_base_/models/autodeeplab_net.py',
    '../_base_/datasets/pascal_voc12_aug_513x513.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/autodeeplab_poly_1.5m.py'
]
crop_size = (513, 513)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=21))
train_dataloader = dict(batch_size=2, num_workers=2)
