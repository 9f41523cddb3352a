# Auto-DeepLab-L (F=48), paper genotype; see the S config for the protocol.
# Paper: 43.98 mIoU val, multi-scale (at the paper schedule).
# Channels: low-level (Cell_2, /4) 5*48 = 240; last cell (/8) 5*48*2 = 480.
_base_ = './autodeeplab-s_paper-genotype_8xb2-160k_ade20k-513x513.py'
model = dict(
    backbone=dict(filter_multiplier=48),
    decode_head=dict(in_channels=480, c1_in_channels=240))
