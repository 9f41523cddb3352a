"""The benchmark times the search's own steps: one SearchSteps serves the
loop and tools/analysis/benchmark_search.py, so the two cannot drift."""
import os.path as osp
from unittest import mock

import pytest
import torch
from benchmark_search import parse_args, search_steps

from mmseg_autodeeplab.engine import AutoDeepLabSearchLoop
from mmseg_autodeeplab.engine.amp import SearchAmpOptimWrapper
from mmseg_autodeeplab.engine.search_loop import SearchSteps

pytestmark = pytest.mark.usefixtures('one_thread')

ROBUST = osp.join('configs', 'autodeeplab_search', 'autodeeplab-search-'
                  'robust_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')


def test_the_loop_runs_the_shared_steps_unchanged():
    assert issubclass(AutoDeepLabSearchLoop, SearchSteps)
    for name in ('weight_step', 'arch_step'):
        assert getattr(AutoDeepLabSearchLoop, name) is \
            getattr(SearchSteps, name), f'the loop overrides {name}'
    # run_iter: the weight step on the trainA batch at the search's
    # progress, then the α/β step on the next trainB batch
    loop = object.__new__(AutoDeepLabSearchLoop)
    loop._runner, loop.threads, loop._stop_signal = mock.Mock(), None, None
    loop._iter, loop.max_iters, loop.arch_start_iter = 3, 4, 0
    loop._arch_stop_iter, loop.iters_per_epoch = None, 10
    loop._next_arch_batch = lambda: 'trainB batch'
    calls = []
    loop.weight_step = lambda batch, progress: calls.append(
        ('weights', batch, progress)) or {}
    loop.arch_step = lambda batch, progress: calls.append(
        ('arch', batch, progress)) or {}
    loop.run_iter(3, 'trainA batch')
    assert calls == [('weights', 'trainA batch', 0.75),
                     ('arch', 'trainB batch', 0.75)]


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
