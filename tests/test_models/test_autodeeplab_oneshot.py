"""AutoDeepLabOneShot: its sub-networks ARE the decoded networks.

Exactness against freshly built AutoDeepLabNet / retraining segmentors
loaded (strict) with the inherited weights; sharing by identity, not copy;
an optimizer step and BN statistics touching only the active sub-network.
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch

from mmseg_autodeeplab.models.backbones import (AutoDeepLabNet,
                                                AutoDeepLabOneShot)
from mmseg_autodeeplab.models.backbones.autodeeplab_oneshot import (
    activate_subnet, subnet_state_dict)
from mmseg_autodeeplab.search_space import (CellGenotype, Genotype,
                                            GenotypeError, SearchSpace)
from mmseg_autodeeplab.search_space.sampling import sample_genotype

PROXY_RETRAIN_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'search_vs_random',
    'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')
KW = dict(filter_multiplier=2, stem_channels=(8, 8, 12))
OPS = ('max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3',
       'sep_conv_5x5', 'atrous_conv_3x3', 'atrous_conv_5x5')
TOL = 1e-5
SPACE4 = SearchSpace(num_layers=4, num_blocks=5)


def _genotypes(num_layers, count, seed):
    space = SearchSpace(num_layers=num_layers, num_blocks=5)
    rng = np.random.default_rng(seed)
    return [sample_genotype(rng, space) for _ in range(count)]


def _coverage(genotypes):
    """What the genotypes exercise: moves, (op, stride), H(l-2) distance,
    levels of the first two layers."""
    seen = set()
    for g in genotypes:
        path = (0, ) + g.path
        for layer, level in enumerate(g.path):
            seen.add(('move', level - path[layer]))
            stride = 2 if level > path[layer] else 1
            if layer >= 2:
                seen.add(('pp distance', abs(level - g.path[layer - 2])))
            if layer < 2:
                seen.add((f'layer {layer} level', level))
            for block in g.cell.blocks:
                for index, op in block:
                    seen.add((op, stride if index < 2 else 1))
    return seen


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def _check_backbone(one, g, x):
    one.activate(g)
    fresh = AutoDeepLabNet(g, **KW)
    fresh.load_state_dict(one.subnet().state_dict(), strict=True)
    worst = 0.
    for mode in (True, False):  # train: BN batch stats, and updates them
        one.train(mode)
        fresh.train(mode)
        worst = max(worst, _max_diff(one(x), fresh(x)))
    return worst


@pytest.mark.parametrize('op_sharing', [
    pytest.param('edge', marks=pytest.mark.slow), 'branch'])
def test_every_subnet_is_the_static_network(paper_cell, paper_path,
                                            op_sharing):
    torch.manual_seed(0)
    genotypes = _genotypes(4, 50, seed=0)
    needed = {('move', m) for m in (-1, 0, 1)} | {
        ('pp distance', 2), ('layer 0 level', 0), ('layer 0 level', 1),
        ('layer 1 level', 2)} | {(op, s) for op in OPS for s in (1, 2)}
    assert needed <= _coverage(genotypes), needed - _coverage(genotypes)
    one = AutoDeepLabOneShot(num_layers=4, num_blocks=5,
                             op_sharing=op_sharing, **KW)
    x = torch.randn(2, 3, 37, 29)  # odd sizes: ceil at every level
    worst = max(_check_backbone(one, g, x) for g in genotypes)
    assert worst <= TOL
    # the paper's genotype in the paper's space (L=12)
    paper = Genotype(CellGenotype(paper_cell), paper_path)
    big = AutoDeepLabOneShot(num_layers=12, num_blocks=5,
                             op_sharing=op_sharing, **KW)
    assert _check_backbone(big, paper, torch.randn(1, 3, 65, 65)) <= TOL


def test_weights_are_shared_not_copied():
    one = AutoDeepLabOneShot(num_layers=4, num_blocks=5, **KW)
    g = Genotype(CellGenotype([((0, 'sep_conv_3x3'), (1, 'sep_conv_5x5'))] *
                              5), (0, 1, 1, 0), SPACE4)
    h = Genotype(CellGenotype([((0, 'sep_conv_3x3'), (1, 'sep_conv_5x5'))] *
                              5), (1, 1, 1, 0), SPACE4)
    a, b = one.build_subnet(g), one.build_subnet(h)
    # layer 1 at level 1: stride 2 in g (from level 0), stride 1 in h
    assert a.cells[1].stride == 2 and b.cells[1].stride == 1
    for pa, pb in zip(a.cells[1].ops.parameters(), b.cells[1].ops.parameters()):
        assert pa is pb
    assert a.cells[1].ops[0][1].stride == (2, 2)
    assert b.cells[1].ops[0][1].stride == (1, 1)
    # the layer-0 cell sits at different levels: nothing shared there
    assert not {id(p) for p in a.cells[0].parameters()} & {
        id(p) for p in b.cells[0].parameters()}
    # every sub-network parameter is a one-shot parameter
    owned = {id(p) for p in one.parameters()}
    assert all(id(p) in owned for p in a.parameters())


def _sgd_step(model, x, opt):
    opt.zero_grad()
    out = model(x)
    sum(o.square().mean() for o in out).backward()
    opt.step()


def test_optimizer_and_bn_touch_only_the_active_subnet():
    torch.manual_seed(1)
    one = AutoDeepLabOneShot(num_layers=4, num_blocks=5, **KW).train()
    opt = torch.optim.SGD(one.parameters(), lr=0.1, momentum=0.9,
                          weight_decay=1e-2)
    x = torch.randn(2, 3, 33, 33)
    g, h = _genotypes(4, 2, seed=3)
    one.activate(g)
    _sgd_step(one, x, opt)  # g's weights now carry momentum
    before = {k: v.clone() for k, v in one.state_dict().items()}
    one.activate(h)
    active = {id(t) for t in one.build_subnet(h).state_dict(
        keep_vars=True).values()}
    _sgd_step(one, x, opt)
    moved = {k for k, v in one.state_dict(keep_vars=True).items()
             if not torch.equal(v.detach(), before[k])}
    named = dict(one.state_dict(keep_vars=True))
    moved_active = {k for k in moved if id(named[k]) in active}
    assert moved == moved_active, sorted(moved - moved_active)[:5]
    # h's weights and BN statistics did move (the test can fail)
    assert any('running_mean' in k for k in moved)
    assert any(k.endswith('weight') for k in moved)
    # and g's weights outside h, with momentum buffers, did not
    g_only = {id(t) for t in one.build_subnet(g).state_dict(
        keep_vars=True).values()} - active
    assert g_only and not any(id(named[k]) in g_only for k in moved)


def _segmentors():
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(PROXY_RETRAIN_CONFIG)
    widths = [5 * 2 * 2**j for j in range(4)]
    model = copy.deepcopy(cfg.model)
    model.backbone.update(type='AutoDeepLabOneShot', num_layers=4,
                          num_blocks=5, genotype=None, **KW)
    model.decode_head.update(type='AutoDeepLabOneShotHead',
                             in_channels=widths, c1_in_channels=widths)

    def retrain(g):
        m = copy.deepcopy(cfg.model)
        m.backbone.update(genotype=g.to_dict(), **KW)
        m.decode_head.update(in_channels=widths[g.path[-1]],
                             c1_in_channels=widths[g.path[2]])
        with DefaultScope.overwrite_default_scope('mmseg'):
            return MODELS.build(m)

    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(model), retrain


def test_segmentor_logits_match_the_decoded_config():
    one, retrain = _segmentors()
    x = torch.randn(2, 3, 64, 64)
    genotypes = _genotypes(4, 6, seed=5)
    assert len({(g.path[2], g.path[-1]) for g in genotypes}) >= 3
    for g in genotypes:
        activate_subnet(one, g)
        ref = retrain(g)
        ref.load_state_dict(subnet_state_dict(one), strict=True)
        for mode in (True, False):
            one.train(mode)
            ref.train(mode)
            torch.manual_seed(7)  # the head's dropout
            a = one(x, mode='tensor')
            torch.manual_seed(7)
            assert (a - ref(x, mode='tensor')).abs().max() <= TOL


@pytest.mark.parametrize('change, message', [
    (dict(num_layers=5), 'num_layers 5 (one-shot: 4)'),
    (dict(num_blocks=4), 'num_blocks 4 (one-shot: 5)'),
    (dict(strides=(4, 8, 16)), 'strides (4, 8, 16)'),
])
def test_genotype_outside_the_space_is_refused(change, message):
    one = AutoDeepLabOneShot(num_layers=4, num_blocks=5,
                             primitives=('none', 'skip_connect',
                                         'sep_conv_3x3'), **KW)
    space = SearchSpace(**{**dict(num_layers=4, num_blocks=5), **change})
    cell = [((0, 'skip_connect'), (1, 'sep_conv_3x3'))] * space.num_blocks
    g = Genotype(CellGenotype(cell), [0] * space.num_layers, space)
    with pytest.raises(GenotypeError, match=message.replace('(', r'\(')
                       .replace(')', r'\)')):
        one.activate(g)
    ok = Genotype(CellGenotype([((0, 'skip_connect'), (1, 'max_pool_3x3'))]
                               * 5), [0] * 4, SPACE4)
    with pytest.raises(GenotypeError, match=r"\['max_pool_3x3'\] not in"):
        one.activate(ok)
    with pytest.raises(GenotypeError, match='at most 1'):
        one.activate(dict(cell=ok.to_dict()['cell'], path=[0, 2, 2, 2]))


def test_forward_before_activate_is_one_line():
    one = AutoDeepLabOneShot(num_layers=3, num_blocks=2, **KW)
    with pytest.raises(RuntimeError, match='call activate'):
        one(torch.randn(1, 3, 16, 16))


def test_branch_sharing_shares_an_operator_across_its_inputs():
    one = AutoDeepLabOneShot(num_layers=4, num_blocks=5,
                             op_sharing='branch', **KW)
    edge = AutoDeepLabOneShot(num_layers=4, num_blocks=5, op_sharing='edge',
                              **KW)
    cell = [((0, 'sep_conv_3x3'), (1, 'sep_conv_5x5'))] * 5
    g = Genotype(CellGenotype(cell), (0, 0, 0, 0), SPACE4)
    # block 3 (H4): its first branch on H1 instead of H(l-2), the second
    # on H3 instead of H(l-1)
    h = Genotype(CellGenotype(cell[:3] + [((2, 'sep_conv_3x3'),
                                           (4, 'sep_conv_5x5'))] + cell[4:]),
                 (0, 0, 0, 0), SPACE4)
    for net, shared in ((one, True), (edge, False)):
        a, b = net.build_subnet(g), net.build_subnet(h)
        same = a.cells[1].ops[6][1].weight is b.cells[1].ops[6][1].weight
        assert same is shared
    # per (block, branch, op) instead of per (block, input, op)
    assert sum(p.numel() for p in one.parameters()) < sum(
        p.numel() for p in edge.parameters())


def test_flops_and_cost_tables_work_on_subnets():
    """``subnet(...)`` is a plain AutoDeepLabNet: mmengine's counter (what
    tools/get_flops.py runs) and the cost table's per-cell parts see the
    network a fresh build of the genotype is."""
    from mmengine.analysis import get_model_complexity_info
    one = AutoDeepLabOneShot(num_layers=4, num_blocks=5, **KW)
    g = _genotypes(4, 1, seed=9)[0]
    x = torch.rand(1, 3, 33, 33)
    sub, fresh = one.subnet(g).eval(), AutoDeepLabNet(g, **KW).eval()
    assert type(sub) is AutoDeepLabNet
    counts = [get_model_complexity_info(m, inputs=(x, ), show_table=False,
                                        show_arch=False)
              for m in (sub, fresh)]
    assert counts[0]['flops'] == counts[1]['flops'] > 0
    assert counts[0]['params'] == counts[1]['params']
