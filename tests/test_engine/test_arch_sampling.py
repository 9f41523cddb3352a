"""Single-path supernet training (engine/search_remedies.py: ArchSampling)
and the draws it uses (search_space/sampling.py: sample_genotype_from)."""
import collections

import numpy as np
import pytest
import torch

from mmseg_autodeeplab.engine.search_remedies import ArchSampling
from mmseg_autodeeplab.models.backbones.autodeeplab_supernet import \
    AutoDeepLabSupernet
from mmseg_autodeeplab.search_space import (PRIMITIVES, SearchSpace,
                                            decode_cell, num_edges)
from mmseg_autodeeplab.search_space.decode import genotype_weights
from mmseg_autodeeplab.search_space.sampling import sample_genotype_from

pytestmark = pytest.mark.usefixtures('one_thread')
SPACE = SearchSpace(num_layers=4, num_blocks=3)
OPS = [p for p in PRIMITIVES if p != 'none']


def _planted():
    """α that prefer inputs (0, 1) of every block with sep_conv_3x3 and a
    β that prefers the path 0 1 2 2."""
    alphas = torch.zeros(num_edges(3), len(PRIMITIVES))
    for b in range(3):
        for i in (0, 1):
            alphas[num_edges(b) + i, PRIMITIVES.index('sep_conv_3x3')] = 4.0
    betas = torch.zeros(4, 4, 3)
    prev = 0
    for layer, level in enumerate((0, 1, 2, 2)):
        betas[layer, prev, level - prev + 1] = 4.0
        prev = level
    return alphas, betas


def test_cold_draws_are_the_planted_genotype():
    alphas, betas = _planted()
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = sample_genotype_from(rng, alphas, betas, SPACE, temperature=0.05)
        assert g.cell == decode_cell(alphas)
        assert g.path == (0, 1, 2, 2)


def test_hot_draws_are_near_uniform_and_valid():
    alphas, betas = _planted()
    rng = np.random.default_rng(1)
    ops, first_inputs, n = collections.Counter(), collections.Counter(), 4000
    for _ in range(n):
        g = sample_genotype_from(rng, alphas, betas, SPACE,
                                 temperature=1e4)
        for b, block in enumerate(g.cell.blocks):
            (i, op_i), (j, op_j) = block
            assert i < j <= b + 1 and 'none' not in (op_i, op_j)
        ops.update(op for block in g.cell.blocks for _, op in block)
        first_inputs[tuple(i for i, _ in g.cell.blocks[2])] += 1
        prev = 0
        for layer, level in enumerate(g.path):
            assert abs(level - prev) <= 1 and 0 <= level <= min(layer + 1, 3)
            prev = level
    share = np.array([ops[o] for o in OPS]) / (n * 6)
    assert np.allclose(share, 1 / len(OPS), atol=0.01)
    pairs = [first_inputs[p] / n for p in ((0, 1), (0, 2), (0, 3), (1, 2),
                                           (1, 3), (2, 3))]
    assert np.allclose(pairs, 1 / 6, atol=0.03)


def test_draws_follow_alpha_at_temperature_one():
    """One block's edge choice: P(input pair) from Gumbel top-2 of the
    edges' non-zero masses; the op from the softmax over non-zero ops."""
    alphas = torch.zeros(num_edges(1), len(PRIMITIVES))
    alphas[0, PRIMITIVES.index('none')] = 3.0  # input 0 is mostly 'none'
    alphas[1, PRIMITIVES.index('skip_connect')] = np.log(8.0)
    space = SearchSpace(num_layers=1, num_blocks=1)
    rng = np.random.default_rng(2)
    skip, n = 0, 3000
    for _ in range(n):
        g = sample_genotype_from(rng, alphas, torch.zeros(1, 4, 3), space)
        skip += dict(g.cell.blocks[0])[1] == 'skip_connect'
    # input 1: skip has weight 8 against 6 other ops of weight 1
    assert skip / n == pytest.approx(8 / 14, abs=0.03)


def test_schedule_and_bad_values():
    s = ArchSampling(uniform_until=0.5, temperature=(4.0, 1.0))
    assert s.temperature_at(0.0) == 4.0 and s.temperature_at(0.5) == 4.0
    assert s.temperature_at(0.75) == pytest.approx(2.5)
    assert s.temperature_at(1.0) == 1.0
    assert ArchSampling(uniform_until=1.0).temperature_at(0.3) == 1.0
    for bad in (dict(uniform_until=1.5), dict(temperature=(0, 1)),
                dict(temperature=2.0), dict(arch_step='soft'),
                dict(uniform_until=True)):
        with pytest.raises(ValueError, match='train_cfg.arch_sampling'):
            ArchSampling(**bad)
    with pytest.raises(ValueError, match='unknown key'):
        ArchSampling.build(dict(tau=1))


def test_uniform_phase_then_draws_from_alpha():
    net = AutoDeepLabSupernet(num_layers=4, num_blocks=3,
                              filter_multiplier=2)
    with torch.no_grad():
        net.alphas.copy_(_planted()[0])
        net.betas.copy_(_planted()[1])
    s = ArchSampling(uniform_until=0.5, temperature=(0.05, 0.05))
    torch.manual_seed(0)
    early = {s.draw(net, 0.1) for _ in range(10)}
    late = {s.draw(net, 0.9) for _ in range(10)}
    assert len(early) == 10  # uniform: all different
    assert len(late) == 1 and next(iter(late)).path == (0, 1, 2, 2)
    torch.manual_seed(3)  # the draws follow torch's RNG (resume is exact)
    a = s.draw(net, 0.1)
    torch.manual_seed(3)
    assert s.draw(net, 0.1) == a


def test_weight_step_trains_the_drawn_network():
    """Within the weight step, gradients reach the operators the draw
    picked in each cell of its path and no other operator there (every
    operator runs, the others with weight 0): a step on the mixture, or on
    another genotype than the one drawn, would move others."""
    torch.manual_seed(0)
    net = AutoDeepLabSupernet(num_layers=3, num_blocks=3,
                              filter_multiplier=2, impl='per_edge')
    s = ArchSampling(uniform_until=1.0)
    torch.manual_seed(5)
    g = s.draw(net, 0.0)
    torch.manual_seed(5)
    with s.weight_step(net, 0.0):
        sum(o.square().mean() for o in net(torch.rand(2, 3, 33, 33))
            ).backward()
    assert net._fixed_weights is None  # restored
    drawn = {(num_edges(b) + i, op) for b, block in enumerate(g.cell.blocks)
             for i, op in block}
    trained = []
    for layer, level in enumerate(g.path):
        for e, edge in enumerate(net.cells[f'{layer}_{level}'].edges):
            for k, op in zip(edge.index, edge.ops):
                grads = [p.grad for p in op.parameters()]
                if grads:  # an operator with weights
                    moved = any(gr is not None and bool(gr.abs().sum() > 0)
                                for gr in grads)
                    assert moved == ((e, PRIMITIVES[k]) in drawn), \
                        (layer, e, PRIMITIVES[k])
                    trained.append(moved)
    assert sum(trained) >= len(g.path)  # a drawn operator with weights


def test_log_prob_stays_finite_when_one_edge_dominates():
    """float32 at a low temperature: the drawn edge's probability rounds
    to 1 (before: 1 / (1 - p) overflowed, the log-probability and its
    gradient were NaN). Block 1's pair {2, 3} beside a dominant edge 2 has
    probability 1/2 (p2 p3 / (1 - p2) + p3 p2 / (1 - p3) ~ 1/2 + p3)."""
    from mmseg_autodeeplab.search_space import CellGenotype, Genotype
    from mmseg_autodeeplab.search_space.decode import normalize_betas
    from mmseg_autodeeplab.search_space.sampling import genotype_log_prob
    prims = ('none', 'skip_connect', 'sep_conv_3x3')
    space = SearchSpace(num_layers=1, num_blocks=2, primitives=prims)
    alphas = torch.zeros(num_edges(2), 3)
    alphas[2, 1] = 10.0  # edge 2 (input 0 of block 1): skip, by far
    alphas.requires_grad_()
    betas = torch.zeros(1, 4, 3)
    cell = (((0, 'skip_connect'), (1, 'skip_connect')),
            ((0, 'skip_connect'), (1, 'sep_conv_3x3')))
    g = Genotype(cell=CellGenotype(cell), path=(1, ), search_space=space)
    got = genotype_log_prob(g, alphas, betas, temperature=0.01)
    got.backward()
    # ops: 1/2 each on the uniform edges 0, 1, 3; skip certain on edge 2;
    # block 0's pair is its only pair
    path = torch.log(normalize_betas(betas.double() / 0.01)[0, 0, 2])
    want = 4 * np.log(0.5) + float(path)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    assert float(got) == pytest.approx(want, abs=1e-4)
    assert torch.isfinite(alphas.grad).all()


def test_arch_noise_is_refused_beside_arch_sampling():
    """The weight step of arch_sampling computes a drawn architecture, not
    α: noise on α would silently move the draws only."""
    from mmseg_autodeeplab.engine.search_loop import SearchSteps
    net = AutoDeepLabSupernet(num_layers=3, num_blocks=2,
                              filter_multiplier=2)
    with pytest.raises(ValueError, match='^train_cfg.arch_noise: not with '
                       'arch_sampling'):
        SearchSteps(net, arch_noise=dict(eps=0.3), arch_sampling=dict())
    assert SearchSteps(net, arch_noise=dict(eps=0.3)).arch_noise.eps == 0.3


def _tiny_space_genotypes(space):
    """Every genotype of a space with 2 blocks (all cells x all paths)."""
    import itertools

    from mmseg_autodeeplab.search_space import CellGenotype, Genotype
    ops = [p for p in space.primitives if p != 'none']
    paths = [p for p in itertools.product(range(4), repeat=space.num_layers)
             if all(abs(b - a) <= 1 and b <= min(k + 1, 3) for k, (a, b) in
                    enumerate(zip((0, ) + p, p)))]
    blocks = [[((i, o1), (j, o2)) for i, j in itertools.combinations(
        range(b + 2), 2) for o1 in ops for o2 in ops]
        for b in range(space.num_blocks)]
    for cell in itertools.product(*blocks):
        for path in paths:
            yield Genotype(cell=CellGenotype(cell), path=path,
                           search_space=space)


def test_log_prob_is_a_distribution_matching_the_draws():
    prims = ('none', 'skip_connect', 'sep_conv_3x3')
    space = SearchSpace(num_layers=2, num_blocks=2, primitives=prims)
    gen = torch.Generator().manual_seed(0)
    alphas = torch.randn(num_edges(2), 3, generator=gen)
    betas = torch.randn(2, 4, 3, generator=gen)
    from mmseg_autodeeplab.search_space.sampling import genotype_log_prob
    for temperature in (1.0, 2.5):
        probs = {g: genotype_log_prob(g, alphas.double(), betas.double(),
                                      temperature).exp().item()
                 for g in _tiny_space_genotypes(space)}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
    rng = np.random.default_rng(0)
    counts = collections.Counter(
        sample_genotype_from(rng, alphas, betas, space, 2.5)
        for _ in range(6000))
    top = max(probs, key=probs.get)
    assert counts[top] / 6000 == pytest.approx(probs[top], abs=0.015)


def test_reinforce_moves_alpha_toward_the_draw_with_the_lower_loss():
    """The planted loss is lower whenever block 0 uses sep_conv_3x3 on
    both inputs; after REINFORCE steps, the decode holds it."""
    prims = ('none', 'skip_connect', 'sep_conv_3x3')
    net = AutoDeepLabSupernet(num_layers=3, num_blocks=2,
                              filter_multiplier=2, primitives=prims)
    s = ArchSampling(uniform_until=0.0, arch_step='reinforce')
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.1)
    sep = prims.index('sep_conv_3x3')
    torch.manual_seed(0)

    def forward_loss():
        w = net._fixed_weights[0]
        return (1.0 - w[0, sep] - w[1, sep]), dict(loss=torch.tensor(0.))

    for _ in range(60):
        surrogate, logs = s.reinforce_loss(forward_loss, net, 0.5)
        opt.zero_grad()
        surrogate.backward()
        opt.step()
    assert decode_cell(net.alphas.detach(), prims).blocks[0] == (
        (0, 'sep_conv_3x3'), (1, 'sep_conv_3x3'))
    assert 'loss' in logs and net._fixed_weights is None


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['reinforce', 'mixed'])
def test_a_tiny_search_with_each_arch_step(tiny_cityscapes, tiny_cfg,
                                           tmp_path, mode):
    from mmengine.runner import Runner

    from mmseg_autodeeplab.engine.utils import find_supernet
    cfg = tiny_cfg(tiny_cityscapes, str(tmp_path / mode), **{
        'train_cfg.cpu_threads': 1, 'train_cfg.arch_start_epoch': 0,
        'train_cfg.arch_sampling': dict(uniform_until=0.5,
                                        temperature=(2.0, 1.0),
                                        arch_step=mode)})
    runner = Runner.from_cfg(cfg)
    net = find_supernet(runner.model)
    before = [p.detach().clone() for p in net.arch_parameters()]
    stem = net.stem[0].weight.detach().clone()
    runner.train()
    assert not torch.equal(net.alphas, before[0])
    assert not torch.equal(net.betas, before[1])
    assert not torch.equal(net.stem[0].weight, stem)  # weights trained
    assert net._fixed_weights is None
