"""Tests of the search supernet, its neck and head (spec sections 1-2).

Tiny networks (L = 3, F = 2, batch 2) keep the whole file to a few seconds.
"""
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import mmseg_autodeeplab  # noqa: E402,F401
from mmseg_autodeeplab.models import AutoDeepLabSupernet  # noqa: E402
from mmseg_autodeeplab.search_space import (PRIMITIVES,  # noqa: E402
                                            normalize_betas, num_edges)

B, F = 5, 2
CH = [B * F * 2**j for j in range(4)]  # 10, 20, 40, 80


def _reachable(layer, level):
    """Layer ``layer`` (0-based) can be at most at level ``layer + 1``."""
    return 0 <= level <= min(layer + 1, 3)


def _keys(module_dict):
    return {tuple(int(v) for v in k.split('_')) for k in module_dict.keys()}


def _sizes(h, w):
    h, w = math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2)
    sizes = [(h, w)]
    for _ in range(3):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        sizes.append((h, w))
    return sizes


def _images(h, w, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, h, w, generator=g)


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return AutoDeepLabSupernet(num_layers=3, filter_multiplier=F)


def _weights_loss(outs, seed=1):
    # a fixed random projection: BN-normalised maps have zero mean, so a
    # plain mean() would carry no gradient through some branches
    g = torch.Generator().manual_seed(seed)
    return sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)


# -- shapes ------------------------------------------------------------------

@pytest.mark.parametrize('hw', [(33, 33), (97, 75), (32, 48)])
def test_four_levels_channels_and_ceil_sizes(net, hw):
    outs = net(_images(*hw))
    assert isinstance(outs, tuple) and len(outs) == 4
    for j, (o, size) in enumerate(zip(outs, _sizes(*hw))):
        assert tuple(o.shape) == (2, CH[j]) + size, f'level {j}'
        assert torch.isfinite(o).all()
    if hw == (97, 75):  # by hand: 97 -> 49 -> 25 -> 13 -> 7 -> 4
        assert [tuple(o.shape[2:]) for o in outs] == [
            (25, 19), (13, 10), (7, 5), (4, 3)]


def test_eval_mode_forward(net):
    net.eval()
    try:
        with torch.no_grad():
            outs = net(_images(33, 33))
        assert [tuple(o.shape) for o in outs] == [
            (2, 10, 9, 9), (2, 20, 5, 5), (2, 40, 3, 3), (2, 80, 2, 2)]
    finally:
        net.train()


# -- architecture parameters -------------------------------------------------

def test_alpha_beta_are_named_parameters(net):
    params = dict(net.named_parameters())
    assert 'alphas' in params and 'betas' in params
    alphas, betas = params['alphas'], params['betas']
    assert isinstance(alphas, nn.Parameter) and isinstance(betas, nn.Parameter)
    assert alphas.requires_grad and betas.requires_grad
    # B = 5 blocks: 2 + 3 + 4 + 5 + 6 = 20 edges, one column per operator
    assert tuple(alphas.shape) == (num_edges(5), len(PRIMITIVES)) == (20, 8)
    assert tuple(betas.shape) == (3, 4, 3)
    # initialised as 1e-3 * N(0, 1)
    assert 0 < alphas.abs().max() < 1e-2 and 0 < betas.abs().max() < 1e-2
    assert net.arch_parameters()[0] is alphas
    assert net.arch_parameters()[1] is betas


def test_alpha_shape_follows_num_blocks():
    net4 = AutoDeepLabSupernet(num_layers=4, num_blocks=4, filter_multiplier=1)
    assert tuple(net4.alphas.shape) == (14, 8)  # the DARTS-size cell
    assert tuple(net4.betas.shape) == (4, 4, 3)
    # alpha is shared: ONE parameter for the whole network
    names = [n for n, _ in net4.named_parameters() if 'alpha' in n]
    assert names == ['alphas']


def test_normalized_betas_method(net):
    torch.testing.assert_close(net.normalized_betas(),
                               normalize_betas(net.betas))


# -- reachability ------------------------------------------------------------

@pytest.mark.parametrize('layers', [3, 4, 6])
def test_only_reachable_nodes_and_edges_are_built(layers):
    net = AutoDeepLabSupernet(num_layers=layers, filter_multiplier=1)
    nodes = {(l, j) for l in range(layers) for j in range(4)
             if _reachable(l, j)}
    assert _keys(net.cells) == nodes
    # level j of layer l is fed from level j-1 / j+1 of layer l-1 (the stem,
    # at level 0, for l = 0): a resampler exists exactly where that source
    # node exists
    src = {(l, j): (j == 0 if l == 0 else _reachable(l - 1, j))
           for l in range(layers) for j in range(-1, 5)}
    down = {(l, j) for (l, j) in nodes if src[(l, j - 1)]}
    up = {(l, j) for (l, j) in nodes if src[(l, j + 1)]}
    assert _keys(net.down_edges) == down
    assert _keys(net.up_edges) == up
    assert (0, 0) not in up and (0, 1) in down


def test_resamplers_double_and_halve_filters(net):
    for key, edge in net.down_edges.items():
        j = int(key.split('_')[1])
        convs = [m for m in edge.modules() if isinstance(m, nn.Conv2d)]
        strided = [c for c in convs if c.stride == (2, 2)]
        assert len(strided) == 1, key
        assert strided[0].in_channels == CH[j - 1]
        assert convs[-1].out_channels == CH[j]
    for key, edge in net.up_edges.items():
        j = int(key.split('_')[1])
        convs = [m for m in edge.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == 1 and convs[0].kernel_size == (1, 1), key
        assert (convs[0].in_channels, convs[0].out_channels) == (CH[j + 1],
                                                                 CH[j])


# -- gradients ---------------------------------------------------------------

def test_gradients_reach_alpha_beta_and_every_weight(net):
    net.zero_grad(set_to_none=True)
    _weights_loss(net(_images(33, 33))).backward()
    missing = [n for n, p in net.named_parameters()
               if p.grad is None or torch.count_nonzero(p.grad) == 0]
    assert missing == []
    for p in net.parameters():
        assert torch.isfinite(p.grad).all()
    # every α row (edge) gets a gradient
    assert (net.alphas.grad.abs().sum(1) > 0).all()
    # β: non-zero exactly on the moves that exist in the trellis
    g = net.betas.grad
    for layer in range(3):
        for s in range(4):
            src_exists = s == 0 if layer == 0 else _reachable(layer - 1, s)
            for d in range(3):
                used = src_exists and 0 <= s + d - 1 <= 3
                assert (g[layer, s, d] != 0) == used, (layer, s, d)
    net.zero_grad(set_to_none=True)


@torch.no_grad()
def _run(net, x):
    return [o.clone() for o in net(x)]


@pytest.fixture(scope='module')
def ref33(net):
    """Outputs of ``net`` on ``_images(33, 33)`` with its initial α, β."""
    return _run(net, _images(33, 33))


def test_beta_is_used_and_only_where_it_should_be(net, ref33):
    x, ref = _images(33, 33), ref33
    saved = net.betas.detach().clone()
    try:
        # last layer, moves out of level 1 (to levels 0, 1, 2)
        net.betas.data[2, 1] = torch.tensor([4.0, -4.0, 0.0])
        out = _run(net, x)
        for j in (0, 1, 2):
            assert not torch.allclose(out[j], ref[j]), f'level {j} unchanged'
        # level 3 of the last layer is only fed from levels 2 and 3
        torch.testing.assert_close(out[3], ref[3])

        net.betas.data.copy_(saved)
        # impossible moves and moves out of unbuilt nodes have no effect
        net.betas.data[:, 0, 0] = 30.0
        net.betas.data[:, 3, 2] = 30.0
        net.betas.data[0, 1:] = 30.0   # layer 0 is fed by the stem only
        net.betas.data[1, 2:] = -30.0  # layer 0 has no level 2 or 3
        out = _run(net, x)
        for a, b in zip(out, ref):
            torch.testing.assert_close(a, b)
    finally:
        net.betas.data.copy_(saved)


def _logits(*probs):
    return torch.tensor([math.log(p) if p > 0 else -1e4 for p in probs])


def test_node_is_the_beta_weighted_sum_of_incoming_cell_outputs(net):
    # Eq. 6 at the last layer: node (2, 0) = p(0->0) * cell(h0) +
    # p(1->0) * cell(up(h1)). β[2] weights only these final sums, so the
    # output must be exactly linear in the two normalised weights.
    x = _images(33, 33)
    saved = net.betas.detach().clone()
    try:
        net.betas.data[2, 0] = _logits(0.0, 1.0, 0.0)
        net.betas.data[2, 1] = _logits(0.0, 0.5, 0.5)
        a = _run(net, x)[0]  # only the stay branch of level 0
        net.betas.data[2, 0] = _logits(0.0, 0.0, 1.0)
        net.betas.data[2, 1] = _logits(1.0, 0.0, 0.0)
        b = _run(net, x)[0]  # only the up branch from level 1
        net.betas.data[2, 0] = _logits(0.0, 0.3, 0.7)
        net.betas.data[2, 1] = _logits(0.6, 0.2, 0.2)
        mix = _run(net, x)[0]
        assert not torch.allclose(a, b)
        torch.testing.assert_close(mix, 0.3 * a + 0.6 * b, rtol=1e-4,
                                   atol=1e-5)
    finally:
        net.betas.data.copy_(saved)


def test_alpha_is_used(net, ref33):
    x, ref = _images(33, 33), ref33
    saved = net.alphas.detach().clone()
    try:
        net.alphas.data[3] = torch.tensor(
            [0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0])
        out = _run(net, x)
        assert all(not torch.allclose(a, b) for a, b in zip(out, ref))
        # the zero op contributes nothing: when 'none' takes all the
        # softmax weight on every edge, every cell (hence node) outputs ~0
        net.alphas.data.copy_(saved)
        net.alphas.data[:, 0] = 50.0
        out = _run(net, x)
        assert all(o.abs().max() < 1e-6 for o in out)
    finally:
        net.alphas.data.copy_(saved)


# -- bad arguments -----------------------------------------------------------

@pytest.mark.parametrize('kwargs, name', [
    (dict(filter_multiplier=0), 'filter_multiplier'),
    (dict(filter_multiplier=2.5), 'filter_multiplier'),
    (dict(num_layers=-1), 'num_layers'),
    (dict(num_layers=0), 'num_layers'),
    (dict(num_blocks=0), 'num_blocks'),
    (dict(num_blocks=True), 'num_blocks'),
    (dict(primitives=('none', 'sep_conv_3x3', 'conv_9x9')), 'conv_9x9'),
])
def test_bad_arguments_raise_one_line_value_error(kwargs, name):
    args = dict(num_layers=3, filter_multiplier=1)
    args.update(kwargs)
    with pytest.raises(ValueError) as e:
        AutoDeepLabSupernet(**args)
    msg = str(e.value)
    assert name in msg
    assert '\n' not in msg


def test_unknown_op_message_names_the_argument():
    with pytest.raises(ValueError, match='primitives'):
        AutoDeepLabSupernet(num_layers=3, filter_multiplier=1,
                            primitives=['sep_conv_3x3', 'conv_9x9'])


def test_custom_primitives_subset():
    prims = ('none', 'skip_connect', 'sep_conv_3x3')
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=1,
                              primitives=prims)
    assert tuple(net.alphas.shape) == (20, 3)
    outs = net(_images(17, 15))
    assert [o.shape[1] for o in outs] == [5, 10, 20, 40]


# -- the full mmseg model ----------------------------------------------------

NUM_CLASSES = 19


def _model_cfg():
    return dict(
        type='EncoderDecoder',
        # training batches are padded to this size
        data_preprocessor=dict(type='SegDataPreProcessor', size=(97, 75)),
        backbone=dict(type='AutoDeepLabSupernet', num_layers=3,
                      filter_multiplier=F),
        neck=dict(type='AutoDeepLabSearchASPP', in_channels=CH),
        decode_head=dict(type='AutoDeepLabSumHead',
                         in_channels=[3 * c for c in CH],
                         num_classes=NUM_CLASSES),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


@pytest.fixture(scope='module')
def model():
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(ConfigDict(_model_cfg()))


def _samples(h, w, n=2, with_labels=True, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        if with_labels:
            label = torch.randint(0, NUM_CLASSES, (1, h, w), generator=g)
            label[:, :3] = 255  # some ignored pixels
            s.gt_sem_seg = PixelData(data=label)
        out.append(s)
    return out


def test_registry_builds_the_supernet_parts(model):
    assert type(model.backbone).__name__ == 'AutoDeepLabSupernet'
    assert type(model.neck).__name__ == 'AutoDeepLabSearchASPP'
    assert type(model.decode_head).__name__ == 'AutoDeepLabSumHead'
    names = dict(model.named_parameters())
    assert 'backbone.alphas' in names and 'backbone.betas' in names


def test_search_aspp_rates_and_widths(model):
    # 3x3 branch rate 96 / s: 24, 12, 6, 3
    rates = [a.conv3x3.conv.dilation for a in model.neck.aspps]
    assert rates == [(24, 24), (12, 12), (6, 6), (3, 3)]
    with torch.no_grad():
        feats = model.extract_feat(_images(33, 33))
    assert [tuple(f.shape[:2]) for f in feats] == [(2, 3 * c) for c in CH]


@pytest.mark.parametrize('hw', [(97, 75), (33, 45)])
def test_logits_have_exactly_the_input_size(model, hw):
    h, w = hw
    model.eval()
    try:
        x = _images(h, w)
        metas = [dict(img_shape=(h, w), ori_shape=(h, w),
                      pad_shape=(h, w))] * 2
        with torch.no_grad():
            logits = model.encode_decode(x, metas)
            assert tuple(logits.shape) == (2, NUM_CLASSES, h, w)
            results = model.predict(x, _samples(h, w, with_labels=False))
        assert len(results) == 2
        assert tuple(results[0].pred_sem_seg.data.shape) == (1, h, w)
        assert tuple(results[0].seg_logits.data.shape) == (NUM_CLASSES, h, w)
    finally:
        model.train()


def test_head_sums_the_levels_upsampled_to_the_given_size(model):
    head = model.decode_head
    head.eval()
    try:
        with torch.no_grad():
            feats = model.extract_feat(_images(33, 45))
            out = head.forward(list(feats), (33, 45))
            ref = sum(
                nn.functional.interpolate(cls(f), size=(33, 45),
                                          mode='bilinear',
                                          align_corners=head.align_corners)
                for cls, f in zip(head.classifiers, feats))
        torch.testing.assert_close(out, ref)
    finally:
        head.train()


def test_loss_path_with_odd_labels(model):
    h, w = 97, 75
    model.train()
    model.zero_grad(set_to_none=True)
    imgs = [(torch.rand(3, h, w) * 255).to(torch.uint8) for _ in range(2)]
    data = model.data_preprocessor(
        dict(inputs=imgs, data_samples=_samples(h, w)), training=True)
    assert tuple(data['inputs'].shape) == (2, 3, h, w)
    losses = model(**data, mode='loss')
    assert 'decode.loss_ce' in losses
    loss = losses['decode.loss_ce']
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    # untrained: roughly log(19) per pixel
    assert 0.5 * math.log(NUM_CLASSES) < loss.item() < 3 * math.log(
        NUM_CLASSES)
    loss.backward()
    bb = model.backbone
    assert torch.count_nonzero(bb.alphas.grad) > 0
    assert torch.count_nonzero(bb.betas.grad) > 0
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    model.zero_grad(set_to_none=True)
