"""The alternating search through mmengine's Runner on generated data."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmseg_autodeeplab import Genotype
from mmseg_autodeeplab.engine.utils import find_supernet


class _Recorder(Hook):
    """Snapshots α, β and one weight tensor after every epoch."""

    def __init__(self):
        self.snaps = []

    def before_train(self, runner):
        self.snaps.append(self._snap(runner))

    def after_train_epoch(self, runner):
        self.snaps.append(self._snap(runner))

    @staticmethod
    def _snap(runner):
        net = find_supernet(runner.model)
        weight = net.stem[0].weight
        return dict(alphas=net.alphas.detach().clone(),
                    betas=net.betas.detach().clone(),
                    weight=weight.detach().clone())


@pytest.fixture(scope='module')
def search_run(tiny_cityscapes, tiny_cfg, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('search'))
    # the paper's learning rates, which the tests below check (the demo
    # config deviates from them; its comments say how and why)
    cfg = tiny_cfg(tiny_cityscapes, work_dir, **{
        'optim_wrapper.weights.optimizer.lr': 0.025,
        'optim_wrapper.arch.optimizer.lr': 3e-3,
        'param_scheduler.arch': []})
    runner = Runner.from_cfg(cfg)
    recorder = _Recorder()
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder, work_dir


def test_arch_frozen_before_start_and_moves_after(search_run):
    _, rec, _ = search_run
    init, after_e1, after_e2 = rec.snaps
    # epoch 1: weights only (arch_start_epoch=1)
    assert torch.equal(after_e1['alphas'], init['alphas'])
    assert torch.equal(after_e1['betas'], init['betas'])
    assert not torch.equal(after_e1['weight'], init['weight'])
    # epoch 2: α/β updated, weights keep moving
    assert not torch.equal(after_e2['alphas'], after_e1['alphas'])
    assert not torch.equal(after_e2['betas'], after_e1['betas'])
    assert not torch.equal(after_e2['weight'], after_e1['weight'])


def test_optimizers_hold_disjoint_parameters(search_run):
    runner, _, _ = search_run
    net = find_supernet(runner.model)
    arch_ids = {id(net.alphas), id(net.betas)}
    weights = runner.optim_wrapper['weights'].optimizer
    arch = runner.optim_wrapper['arch'].optimizer
    w_ids = {id(p) for g in weights.param_groups for p in g['params']}
    a_ids = {id(p) for g in arch.param_groups for p in g['params']}
    assert a_ids == arch_ids
    assert not (w_ids & arch_ids)
    n_weights = sum(1 for p in runner.model.parameters()
                    if id(p) not in arch_ids)
    assert len(w_ids) == n_weights
    assert type(weights).__name__ == 'SGD'
    assert weights.param_groups[0]['momentum'] == 0.9
    assert weights.param_groups[0]['weight_decay'] == 3e-4
    assert type(arch).__name__ == 'Adam'
    assert arch.param_groups[0]['lr'] == 3e-3
    assert arch.param_groups[0]['weight_decay'] == 1e-3


def test_weight_lr_follows_cosine_and_arch_lr_is_constant(search_run):
    runner, _, _ = search_run
    total = runner.train_loop.max_iters
    lr = runner.optim_wrapper['weights'].optimizer.param_groups[0]['lr']
    # mmengine's cosine: the lr of the last iteration is step total - 1
    expected = 0.001 + (0.025 - 0.001) * (
        1 + np.cos(np.pi * (total - 1) / total)) / 2
    assert lr == pytest.approx(expected, rel=1e-9)
    arch_lr = runner.optim_wrapper['arch'].optimizer.param_groups[0]['lr']
    assert arch_lr == 3e-3


def test_train_halves_are_disjoint_and_cover_train_set(search_run):
    runner, _, _ = search_run
    loop = runner.train_loop
    a = set(loop.dataloader.dataset.indices.tolist())
    b = set(loop.arch_dataloader.dataset.indices.tolist())
    assert a and b and not (a & b)
    assert a | b == set(range(len(loop.dataloader.dataset.dataset)))


def test_genotype_files_written(search_run):
    runner, _, work_dir = search_run
    genotype = Genotype.load(osp.join(work_dir, 'genotype.json'))
    assert len(genotype.path) == 3
    assert all(op != 'none' for b in genotype.cell.blocks for _, op in b)
    for epoch in (1, 2):
        assert osp.isfile(osp.join(work_dir, 'genotypes',
                                   f'genotype_epoch_{epoch}.json'))
    with open(osp.join(work_dir, 'search_history.json')) as f:
        history = json.load(f)
    assert [h['epoch'] for h in history] == [1, 2]
    assert all(h['mIoU'] is not None for h in history)
    # the final file is the decode of the final α/β
    from mmseg_autodeeplab import decode_genotype
    net = find_supernet(runner.model)
    assert decode_genotype(net.alphas, net.betas).to_dict()['cell'] == \
        genotype.to_dict()['cell']


def test_checkpoint_holds_arch_params_and_loads_weights_only(search_run):
    _, rec, work_dir = search_run
    ckpt = torch.load(osp.join(work_dir, 'epoch_2.pth'), weights_only=True)
    state = ckpt['state_dict']
    assert torch.equal(state['backbone.alphas'], rec.snaps[-1]['alphas'])
    assert torch.equal(state['backbone.betas'], rec.snaps[-1]['betas'])
    assert 'autodeeplab_search_loop' in ckpt
    assert set(ckpt['optimizer']) == {'weights', 'arch'}


def test_split_is_deterministic_from_seed():
    from mmseg_autodeeplab.datasets import SearchSplitDataset
    a1, b1 = SearchSplitDataset.split_indices(11, seed=3)
    a2, b2 = SearchSplitDataset.split_indices(11, seed=3)
    a3, _ = SearchSplitDataset.split_indices(11, seed=4)
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)
    assert not np.array_equal(a1, a3)
    assert len(a1) == 6 and len(b1) == 5
    with pytest.raises(ValueError, match='at least 2'):
        SearchSplitDataset.split_indices(1, seed=0)
