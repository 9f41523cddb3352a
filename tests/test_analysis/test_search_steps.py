"""The benchmark times the search's own steps: one SearchSteps serves the
loop and tools/analysis/benchmark_search.py, so the two cannot drift."""
import os.path as osp
import pytest
import torch
from benchmark_search import parse_args, search_steps

from mmseg_autodeeplab.engine.amp import SearchAmpOptimWrapper
from mmseg_autodeeplab.engine.search_loop import SearchSteps

pytestmark = pytest.mark.usefixtures('one_thread')

ROBUST = osp.join('configs', 'autodeeplab_search', 'autodeeplab-search-'
                  'robust_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')


def test_the_loop_and_the_benchmark_take_the_same_steps(
        tmp_path, tiny_cityscapes, tiny_cfg):
    """A weight step and an α/β step of the loop the Runner builds from a
    config, and of the benchmark's steps built from the same config, from
    the same weights on the same batches, leave the same weights, BN
    statistics and α/β (a drift in an optimizer setting, a remedy or the
    data preprocessing would not)."""
    from mmengine.runner import Runner
    cfg = tiny_cfg(tiny_cityscapes, str(tmp_path / 'w'),
                   **{'train_cfg.cpu_threads': 1})
    runner = Runner.from_cfg(cfg)
    # what Runner.train builds before it runs the loop
    loop = runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    cfg.dump(str(tmp_path / 'config.py'))
    bench, batch_a, batch_b = search_steps(parse_args([
        '--config', str(tmp_path / 'config.py'), '--crop', '64x64']),
        'fused', 'cpu')
    bench.model.load_state_dict(runner.model.state_dict())
    before = {k: v.clone() for k, v in bench.model.state_dict().items()}
    for steps in (loop, bench):
        steps.model.train()
        torch.manual_seed(0)
        steps.weight_step(batch_a, 0.5)
        steps.arch_step(batch_b)
    ran, timed = runner.model.state_dict(), bench.model.state_dict()
    assert ran.keys() == timed.keys() == before.keys()
    assert all(torch.equal(ran[k], timed[k]) for k in ran)
    assert not torch.equal(timed['backbone.alphas'], before['backbone.alphas'])
    assert not torch.equal(timed['backbone.stem.0.weight'],
                           before['backbone.stem.0.weight'])


def test_the_arch_step_computes_the_mixture(monkeypatch):
    """The α/β step computes the soft mixture of α/β, with gradients, in
    one forward (no fixed architecture)."""
    args = parse_args(['--config', ROBUST, '--crop', '33x33',
                       '--filter-multiplier', '2', '--num-layers', '3'])
    steps, _, batch_b = search_steps(args, 'fused', 'cpu')
    net, forwards = steps.supernet, []
    forward = net.forward
    monkeypatch.setattr(net, 'forward', lambda *a, **k: forwards.append(
        (torch.is_grad_enabled(), net._fixed_weights is not None))
        or forward(*a, **k))
    alphas = net.alphas.detach().clone()
    steps.arch_step(batch_b)
    assert forwards == [(True, False)]
    assert not torch.equal(net.alphas, alphas)


def test_the_benchmark_times_the_configured_steps(monkeypatch):
    """The config's remedies and --amp reach the benchmark's steps by
    construction, and a step runs the noise, the dropout and the frozen
    weights as the search does."""
    args = parse_args(['--config', ROBUST, '--crop', '33x33',
                       '--filter-multiplier', '2', '--num-layers', '3'])
    steps, batch_a, batch_b = search_steps(args, 'fused+amp', 'cpu')
    assert type(steps) is SearchSteps
    assert steps.arch_noise.eps == 0.3 and steps.op_dropout.prob == 0.3
    for key in ('weights', 'arch'):
        assert isinstance(steps.optim_wrapper[key], SearchAmpOptimWrapper)
    noise, dropout = [], []
    applied = type(steps.arch_noise).applied
    monkeypatch.setattr(type(steps.arch_noise), 'applied',
                        lambda self, a: noise.append(1) or applied(self, a))
    update = type(steps.op_dropout).update
    monkeypatch.setattr(type(steps.op_dropout), 'update',
                        lambda self, *a: dropout.append(1) or update(self,
                                                                     *a))
    alphas = steps.supernet.alphas.detach().clone()
    weight = next(p for p in steps.model.parameters()
                  if p.requires_grad and p.dim() == 4)
    before = weight.detach().clone()
    steps.weight_step(batch_a)
    assert noise == [1] and dropout == [1]
    assert not torch.equal(weight, before)  # the weights moved
    assert torch.equal(steps.supernet.alphas, alphas)  # α did not
    after_weights = weight.detach().clone()
    steps.arch_step(batch_b)
    assert torch.equal(weight, after_weights)  # frozen in the α/β step
    assert not torch.equal(steps.supernet.alphas, alphas)
