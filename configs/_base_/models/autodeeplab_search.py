# Auto-DeepLab search supernet: L=12 layers, B=5 blocks, F=8 (spec 1-2).
# The neck/head channel lists follow B*F*s/4; tools/search.py re-derives them
# from the backbone when F/B/L are overridden with --cfg-options.
_base_ = './autodeeplab_encoder_decoder.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        type='AutoDeepLabSupernet',
        num_layers=12,
        num_blocks=5,
        filter_multiplier=8,
        norm_cfg=norm_cfg,
        op_norm_cfg=dict(type='BN', affine=False),
        # 'tf': TF's BN eps 1e-3 / momentum 3e-4 (decay 0.9997) in the
        # backbone, for a paper-reproduction run; PyTorch's 1e-5 / 0.1 here
        bn_convention='pytorch',
        arch_init_std=1e-3,
        # 'fused' (fast) or 'per_edge' (the readable reference); same maths
        impl='fused'),
    neck=dict(
        type='AutoDeepLabSearchASPP',
        in_channels=[40, 80, 160, 320],
        strides=(4, 8, 16, 32),
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='AutoDeepLabSumHead',
        in_channels=[120, 240, 480, 960],
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=False))
