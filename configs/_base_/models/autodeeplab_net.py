# Auto-DeepLab retraining model (spec sections 5-6): the static network from
# a genotype + the DeepLabv3+ head with full convs (Table 2's form).
# Channels follow the genotype: low-level = Cell_2 output, B*F*s/4 channels;
# ASPP input = last cell. For the paper genotype (Cell_2 at /4, last cell at
# /8) with F=20: 5*20 = 100 and 5*20*2 = 200. Configs that change F or the
# genotype must set decode_head.in_channels / c1_in_channels to match
# (tools/decode_genotype.py writes them).
#
# The genotype path is resolved against the CWD, then the repo root, then the
# package's shipped configs (mmseg_autodeeplab/.mim), so this relative path
# works from a checkout and after `pip install`.
_base_ = './autodeeplab_encoder_decoder.py'
custom_imports = dict(
    imports=['mmseg_autodeeplab'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        type='AutoDeepLabNet',
        genotype='configs/genotypes/autodeeplab_paper.json',
        filter_multiplier=20,
        in_channels=3,
        stem_channels=(64, 64, 128),
        norm_cfg=norm_cfg,
        out_indices=(2, -1),
        # Scheduled drop path (TF style; the paper reports +1.74 mIoU but
        # gives no rate): e.g. drop_path_prob=0.3 to turn it on.
        drop_path_prob=0.0,
        with_cp=False),
    decode_head=dict(
        type='AutoDeepLabV3PlusHead',
        in_channels=200,
        in_index=1,
        channels=256,
        dilations=(1, 12, 24, 36),
        c1_in_channels=100,
        c1_channels=48,
        separable=False,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=True))
# the paper's batch 16 = 8 GPUs x 2 images; scale the LR if you change it
auto_scale_lr = dict(enable=False, base_batch_size=16)
