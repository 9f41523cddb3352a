# Auto-DeepLab-L (F=48), paper genotype; see the S config for the protocol.
# Paper: Table 2: 44.42M params, 80.33 mIoU val.
# Channels: low-level (Cell_2, /4) 5*48 = 240; last cell (/8) 5*48*2 = 480.
_base_ = './autodeeplab-s_paper-genotype_8xb2-1.5m_cityscapes-769x769.py'
model = dict(
    backbone=dict(filter_multiplier=48),
    decode_head=dict(in_channels=480, c1_in_channels=240))
