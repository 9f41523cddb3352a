"""The anti-collapse options of the search loop (engine/search_remedies.py):
op dropout (P-DARTS), α noise (SDARTS-RS), early stop (DARTS+)."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmseg_autodeeplab.engine.search_remedies import (ArchEarlyStop,
                                                      ArchNoise, OpDropout)
from mmseg_autodeeplab.engine.utils import find_supernet
from mmseg_autodeeplab.models.backbones.autodeeplab_supernet import (
    AutoDeepLabSupernet, MixedOp)
from mmseg_autodeeplab.models.utils import fused_edges
from mmseg_autodeeplab.search_space import PRIMITIVES

pytestmark = pytest.mark.usefixtures('one_thread')
SKIP = PRIMITIVES.index('skip_connect')


def _one_hot(op, rows=1):
    w = torch.zeros(rows, len(PRIMITIVES))
    w[:, op] = 1.0
    return w


def test_op_dropout_drops_skip_outputs_per_edge():
    torch.manual_seed(0)
    edge = MixedOp(4, PRIMITIVES, dict(type='BN', affine=False))
    x = torch.rand(2, 4, 6, 6) + 0.5
    w = _one_hot(SKIP)[0]
    edge.train()
    assert torch.equal(edge(x, w), x)  # off by default
    edge.drop_prob, edge.dropped = 0.5, [
        PRIMITIVES[k] == 'skip_connect' for k in edge.index]
    y = edge(x, w)
    dropped = y == 0
    # inverted dropout: kept values scaled by 1 / (1 - p)
    assert torch.allclose(y[~dropped], 2 * x[~dropped])
    assert 0.3 < dropped.float().mean() < 0.7
    edge.eval()  # never at inference
    assert torch.equal(edge(x, w), x)


def test_fused_op_dropout_masks_each_edge_independently():
    torch.manual_seed(0)
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2)
    net.set_op_dropout(0.5, ['skip_connect'])
    cell = net.cells['0_0']
    edges = [cell.edges[i] for i in (0, 2, 5)]  # all read H(l-2)
    assert all(e.drop_prob == 0.5 for e in edges)
    x = torch.rand(2, 2, 5, 5) + 0.5
    out = fused_edges(x, edges, _one_hot(SKIP, 3), 1, 1)  # (N, 3, C, h, w)
    kept = out != 0
    assert torch.allclose(out[kept], (2 * x.unsqueeze(1).expand_as(out))[
        kept])
    assert not torch.equal(kept[:, 0], kept[:, 1])  # independent masks
    net.set_op_dropout(0.0)
    assert torch.equal(fused_edges(x, edges, _one_hot(SKIP, 3), 1, 1),
                       x.unsqueeze(1).expand(2, 3, 2, 5, 5))


def test_op_dropout_schedule_and_bad_values():
    d = OpDropout(0.4, ['skip_connect', 'max_pool_3x3'])
    assert [d.prob_at(t) for t in (0, 0.5, 1)] == pytest.approx([0.4, 0.2,
                                                                 0])
    assert OpDropout(0.4, decay='none').prob_at(0.9) == 0.4
    for bad in (dict(prob=1.0), dict(prob=0.1, ops=['conv9']),
                dict(prob=0.1, decay='cosine'), dict(probability=0.1)):
        with pytest.raises(ValueError, match='train_cfg.op_dropout'):
            OpDropout.build(bad)


def test_arch_noise_is_bounded_and_restored_bitwise():
    torch.manual_seed(0)
    alphas = torch.nn.Parameter(torch.randn(20, 8))
    before = alphas.detach().clone()
    noise = ArchNoise(0.3)
    with noise.applied(alphas):
        delta = alphas.detach() - before
        assert 0 < delta.abs().max() <= 0.3 + 1e-6
        assert delta.abs().mean() > 0.1  # uniform on [-0.3, 0.3]: 0.15
    assert torch.equal(alphas.detach(), before)
    for bad in (dict(eps=0), dict(eps=-1), dict(eps='x'), dict(sigma=1)):
        with pytest.raises(ValueError, match='train_cfg.arch_noise'):
            ArchNoise.build(bad)


def test_early_stop_counts_the_decoded_operator():
    stop = ArchEarlyStop(max_count=2)
    alphas = torch.zeros(20, 8)
    alphas[:, PRIMITIVES.index('sep_conv_3x3')] = 1.0
    assert stop.count(alphas, PRIMITIVES) == 0
    alphas[0, SKIP] = 2.0  # block 1, edge from H(l-2)
    assert stop.count(alphas, PRIMITIVES) == 1
    assert not stop.triggered(alphas, PRIMITIVES)
    alphas[2, SKIP] = 2.0  # block 2, edge from H(l-2)
    assert stop.count(alphas, PRIMITIVES) == 2
    assert stop.triggered(alphas, PRIMITIVES)
    with pytest.raises(ValueError, match='max_count'):
        ArchEarlyStop(max_count=0)


class _Snaps(Hook):
    def __init__(self, favour=None):
        self.alphas, self.weights, self.favour = [], [], favour

    def before_train(self, runner):
        if self.favour is not None:  # the decoded cell: all this operator
            with torch.no_grad():
                find_supernet(runner.model).alphas[:, self.favour] += 5.0
        self.after_train_epoch(runner)

    def after_train_epoch(self, runner):
        net = find_supernet(runner.model)
        self.alphas.append(net.alphas.detach().clone())
        self.weights.append(net.stem[0].weight.detach().clone())


def _run(tiny_cityscapes, tiny_cfg, work_dir, favour=None, **options):
    runner = Runner.from_cfg(tiny_cfg(tiny_cityscapes, str(work_dir),
                                      **options))
    snaps = _Snaps(favour)
    runner.register_hook(snaps)
    runner.train()
    return runner, snaps


@pytest.mark.slow  # three tiny searches; the count is unit-tested above
def test_early_stop_freezes_alpha_beta_and_survives_resume(
        tiny_cityscapes, tiny_cfg, tmp_path):
    """α starts favouring sep_conv_3x3 on every edge (10 decoded): with
    max_count=3 α/β stop after the first epoch; the weights keep training;
    the state resumes. Without the option α keeps moving."""
    opts = {'train_cfg.max_epochs': 3, 'train_cfg.arch_start_epoch': 0,
            'train_cfg.cpu_threads': 1}
    sep = PRIMITIVES.index('sep_conv_3x3')
    runner, snaps = _run(
        tiny_cityscapes, tiny_cfg, tmp_path / 'a', favour=sep, **opts,
        **{'train_cfg.arch_early_stop': dict(max_count=3,
                                             op='sep_conv_3x3')})
    loop = runner.train_loop
    assert loop._arch_stop_iter == loop.iters_per_epoch
    stop_epoch = 1
    a = snaps.alphas
    assert not torch.equal(a[stop_epoch], a[0])
    assert all(torch.equal(x, a[stop_epoch]) for x in a[stop_epoch:])
    assert not torch.equal(snaps.weights[-1], snaps.weights[stop_epoch])
    state = loop.state_dict()
    assert state['arch_stop_iter'] == loop._arch_stop_iter
    other = runner.train_loop.__class__.__new__(runner.train_loop.__class__)
    other.load_state_dict(state)
    other.arch_start_iter = loop.arch_start_iter
    assert other._arch_stop_iter == loop._arch_stop_iter
    assert not other.arch_active_at(loop._arch_stop_iter)
    assert other.arch_active_at(loop._arch_stop_iter - 1)
    _, free = _run(tiny_cityscapes, tiny_cfg, tmp_path / 'b', favour=sep,
                   **opts)
    assert not torch.equal(free.alphas[3], free.alphas[1])


@pytest.mark.slow  # three tiny searches; both options are unit-tested above
def test_noise_and_dropout_change_the_weight_step_only_when_on(
        tiny_cityscapes, tiny_cfg, tmp_path):
    base = {'train_cfg.max_epochs': 1, 'train_cfg.arch_start_epoch': 0,
            'train_cfg.cpu_threads': 1, 'randomness.seed': 0}
    _, plain = _run(tiny_cityscapes, tiny_cfg, tmp_path / 'p', **base)
    _, again = _run(tiny_cityscapes, tiny_cfg, tmp_path / 'q', **base)
    assert torch.equal(plain.weights[-1], again.weights[-1])  # determinism
    runner, noisy = _run(
        tiny_cityscapes, tiny_cfg, tmp_path / 'n', **base,
        **{'train_cfg.arch_noise': dict(eps=0.5),
           'train_cfg.op_dropout': dict(prob=0.5)})
    assert not torch.equal(plain.weights[-1], noisy.weights[-1])
    net = find_supernet(runner.model)
    # linear decay: the last iteration of the only epoch ran at 0.5 / 8
    probs = {e.drop_prob for c in net.cells.values() for e in c.edges}
    last = runner.train_loop.max_iters
    assert len(probs) == 1
    assert probs.pop() == pytest.approx(0.5 * (1 - (last - 1) / last))


def test_first_layer_beta_gradient_is_only_bn_eps():
    """β[0] scales the two single-input nodes of layer 0; every consumer
    of a node state starts with BN (preprocess, resampling edges), which
    removes a positive scale: β[0]'s gradient is proportional to BN's eps
    (0 in exact arithmetic), while β[1] gets a real one."""
    grads = []
    for eps in (1e-5, 1e-12):
        torch.manual_seed(0)
        net = AutoDeepLabSupernet(
            num_layers=4, filter_multiplier=2,
            norm_cfg=dict(type='BN', eps=eps),
            op_norm_cfg=dict(type='BN', affine=False, eps=eps)).double()
        x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
        sum((o**2).mean() for o in net(x)).backward()
        g = net.betas.grad
        grads.append((g[0].abs().max().item(), g[1].abs().max().item()))
    (g0, g1), (g0_tiny, g1_tiny) = grads
    assert g1 > 1e-3 and g1_tiny == pytest.approx(g1, rel=0.05)
    assert g0 < 1e-2 * g1
    assert g0_tiny < 1e-5 * g0  # scales with eps: 1e-7 of it
