"""A tiny search with ``train_cfg.arch_cost``: the budget term in the α/β
step, the predicted cost in the history and the genotype files."""
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from mmseg_autodeeplab import Genotype
from mmseg_autodeeplab.cost_tables import Layout, build_table
from mmseg_autodeeplab.arch_cost import CostTable, expected_cost
from mmseg_autodeeplab.engine.utils import find_supernet
from mmseg_autodeeplab.utils import atomic_write_json

def _table(cfg, path, num_layers):
    data = build_table(Layout(cfg, (64, 64), num_layers, 5))
    atomic_write_json(path, data)
    return CostTable(data)


@pytest.fixture(scope='module')
def budget_run(tiny_cityscapes, tiny_cfg, tiny_retrain_cfg,
               tmp_path_factory):
    path = str(tmp_path_factory.mktemp('cost') / 'cost_table.json')
    table = _table(tiny_retrain_cfg(), path, num_layers=3)  # the search's L
    at_init = expected_cost(torch.zeros(20, 8), torch.full((3, 4, 3), 1 / 3),
                            table).item()
    arch_cost = dict(kind='macs', target=0.5 * at_init, weight=2.0,
                     table=path, penalty='log')
    work_dir = str(tmp_path_factory.mktemp('budget'))
    cfg = tiny_cfg(tiny_cityscapes, work_dir,
                   **{'train_cfg.arch_cost': arch_cost})
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, work_dir, table


def test_cost_logged_and_written(budget_run):
    runner, work_dir, table = budget_run
    hub = runner.message_hub
    assert hub.get_scalar('train/arch_cost').current() > 0
    assert hub.get_scalar('train/arch_cost_penalty').current() > 0
    with open(osp.join(work_dir, 'search_history.json')) as f:
        history = json.load(f)
    assert [h['epoch'] for h in history] == [1, 2]
    for entry in history:
        genotype = Genotype.from_dict(entry['genotype'])
        assert entry['cost']['predicted'] == table.predicted(genotype)
        assert entry['cost']['kind'] == 'macs'
        assert entry['cost']['expected'] > 0
    with open(osp.join(work_dir, 'genotype.json')) as f:
        data = json.load(f)
    assert data['cost'] == history[-1]['cost']
    # the cost field is metadata: the genotype reads as before
    loaded = Genotype.load(osp.join(work_dir, 'genotype.json'))
    assert loaded.to_dict() == {k: v for k, v in data.items() if k != 'cost'}


def test_budget_term_is_exactly_added_and_absent_by_default(budget_run):
    """The α/β gradient with ``arch_cost`` is the default gradient plus the
    penalty's gradient; without it, no cost is computed or logged."""
    runner, _, _ = budget_run
    loop = runner.train_loop
    net = find_supernet(runner.model)
    wrapper = runner.optim_wrapper[loop.arch_key]
    captured = []

    def spy():  # record the gradients instead of stepping
        captured.append([p.grad.clone() for p in net.arch_parameters()])

    wrapper.step = spy
    batch = next(iter(loop.arch_dataloader))
    cost_model = loop.arch_cost
    try:
        log_on = loop.arch_step(batch)
        loop.arch_cost = None
        log_off = loop.arch_step(batch)
    finally:
        loop.arch_cost = cost_model
        del wrapper.step
    penalty = cost_model.penalty(cost_model.expected(net))
    expected = torch.autograd.grad(penalty, net.arch_parameters())
    assert penalty.item() > 0
    for on, off, g in zip(captured[0], captured[1], expected):
        assert not torch.equal(on, off)
        torch.testing.assert_close(on - off, g.float(), rtol=1e-4,
                                   atol=1e-6)
    assert 'cost' in log_on and 'cost_penalty' in log_on
    assert 'cost' not in log_off and 'cost_penalty' not in log_off
