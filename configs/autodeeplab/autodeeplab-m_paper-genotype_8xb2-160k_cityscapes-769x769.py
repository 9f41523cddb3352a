# Auto-DeepLab-M (F=32), paper genotype; see the S config for the protocol.
# Paper: Table 2: 21.62M params, 80.04 mIoU val (at the paper schedule).
# Channels: low-level (Cell_2, /4) 5*32 = 160; last cell (/8) 5*32*2 = 320.
_base_ = './autodeeplab-s_paper-genotype_8xb2-160k_cityscapes-769x769.py'
model = dict(
    backbone=dict(filter_multiplier=32),
    decode_head=dict(in_channels=320, c1_in_channels=160))
