"""The latency cost table (structure, one timing per distinct module, the
tool) and ``arch_cost.build``: a missing table is built once and reused, a
table recording something else is refused (tiny sizes, CPU, seconds)."""
import json
import os.path as osp
import time

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmseg_autodeeplab import cost_tables as bct
from mmseg_autodeeplab.arch_cost import (LATENCY_DEFAULTS, VERSION, CostTable,
                                         format_cost)
from mmseg_autodeeplab.cli import build_cost_table as cli
from mmseg_autodeeplab.engine.arch_cost_option import ArchCost
from mmseg_autodeeplab.search_space.sampling import sample_genotype
from mmseg_autodeeplab.search_space import PRIMITIVES, SearchSpace

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RETRAIN = ('configs/search_vs_random/'
           'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')
BUDGET = (REPO + '/configs/autodeeplab_search/'
          'autodeeplab-search-budget_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')
SIZE = (32, 32)
# 3 layers, not 2: the static network's out_indices (2, -1) need Cell_2
LAYERS, BLOCKS = 3, 5
# cfg-options for tiny_retrain_cfg (tests/conftest.py, the RETRAIN config at
# F=2); the one-thread torch of these tests is tests/test_models/conftest.py's
THREE_CLASSES = {'model.decode_head.num_classes': 3}


@pytest.fixture(scope='module')
def cfg_file(tmp_path_factory, tiny_retrain_cfg):
    path = tmp_path_factory.mktemp('cfg') / 'tiny_retrain.py'
    tiny_retrain_cfg(**THREE_CLASSES).dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def tables(tiny_retrain_cfg):
    """Measured latency table and the MACs table of the same network."""
    cfg = tiny_retrain_cfg(**THREE_CLASSES)
    layout = bct.Layout(cfg, SIZE, LAYERS, BLOCKS)
    latency = bct.build_table(layout, 'latency', repeats=2, warmup=1)
    macs = bct.build_table(layout)
    return latency, macs


def _one_line_error(call, prefix):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(prefix), message
    assert '\n' not in message
    return message


# -- the table ------------------------------------------------------------


def test_latency_table_has_the_macs_structure(tables):
    latency, macs = tables
    lat, mac = CostTable(latency), CostTable(macs)
    assert lat.kind == 'latency' and latency['version'] == VERSION
    for name in ('edges', 'cells', 'head'):
        got, ref = getattr(lat, name), getattr(mac, name)
        assert got.shape == ref.shape
        assert torch.isfinite(got).all() and (got >= 0).all()
    # an entry is measured exactly where the static network has that part
    assert torch.equal(lat.cells > 0, mac.cells > 0)
    assert torch.equal(lat.head > 0, mac.head > 0)
    built = (mac.edges > 0).flatten(3).any(-1)  # (L, p, j) nodes
    assert 0 < built.sum() < built.numel()
    none = PRIMITIVES.index('none')
    ops = [k for k in range(len(PRIMITIVES)) if k != none]
    assert (lat.edges[built][..., ops] > 0).all()
    assert (lat.edges[built][..., none] == 0).all()  # never decoded
    assert (lat.edges[~built] == 0).all()
    assert 0 < lat.stem < 1
    assert latency['input_size'] == list(SIZE)
    assert latency['device_type'] == 'cpu'
    assert latency['device'].startswith('cpu (')
    assert latency['threads'] == 1 and latency['repeats'] == 2
    g = sample_genotype(np.random.default_rng(0),
                        SearchSpace(num_layers=LAYERS, num_blocks=BLOCKS))
    assert 0 < lat.predicted(g) < 10


class _FakeClock:
    """Stands in for ``time_modules``: records what it is asked to time and
    returns a different number for every module."""

    def __init__(self):
        self.calls = []

    def __call__(self, items, repeats, warmup, device):
        out = []
        for module, inputs in items:
            shapes = tuple(tuple(t.shape) for t in _tensors(inputs))
            self.calls.append((type(module).__name__, repr(module), shapes))
            out.append(1e-3 * len(self.calls))
        return out


def _tensors(x):
    if torch.is_tensor(x):
        return [x]
    return [t for item in x for t in _tensors(item)]


def test_each_distinct_module_is_timed_once(monkeypatch, tiny_retrain_cfg):
    clock = _FakeClock()
    monkeypatch.setattr(bct, 'time_modules', clock)
    data = bct.build_table(bct.Layout(tiny_retrain_cfg(**THREE_CLASSES), SIZE,
                                      LAYERS, BLOCKS), 'latency')
    table = CostTable(data)
    keys = [(name, text, shapes) for name, text, shapes in clock.calls]
    assert len(keys) == len(set(keys)) == data['timed_modules']
    kinds = [name for name, _, _ in clock.calls]
    assert kinds.count('AutoDeepLabStem') == 1
    assert kinds.count('HeadWithLastReLU') == int((table.head > 0).sum())
    # 7 ops at stride 1 on each of the 4 levels, 7 at stride 2 into levels
    # 1-3: every entry of the 3-layer table is one of these 49
    ops = len(kinds) - kinds.count('AutoDeepLabStem') - kinds.count(
        'HeadWithLastReLU') - kinds.count('CellFixedPart')
    assert ops == 49
    assert kinds.count('CellFixedPart') <= int((table.cells > 0).sum())
    assert len(keys) < int((table.edges > 0).sum())  # entries share timings

    sep3 = PRIMITIVES.index('sep_conv_3x3')
    e = table.edges[..., sep3]
    # block 1's third edge reads block 0's output: stride 1 at the cell's
    # level, whatever the previous level, in every layer
    assert e[1, 0, 1, 4] == e[1, 1, 1, 4] == e[2, 2, 1, 4]
    # the cell inputs' edges: stride 2 (from level 0) vs 1 (from level 1)
    assert e[1, 0, 1, 0] != e[1, 1, 1, 0]
    assert e[1, 0, 1, 0] == e[2, 0, 1, 0]  # same node, another layer
    assert e[1, 0, 1, 0] != table.edges[1, 0, 1, 0, PRIMITIVES.index(
        'sep_conv_5x5')]


def test_time_module_is_the_median_in_eval_no_grad():
    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls, self.modes = 0, set()

        def forward(self, x):
            self.calls += 1
            self.modes.add((self.training, torch.is_grad_enabled()))
            time.sleep(0.004 if self.calls > 2 else 0.)
            return x

    slow = Slow().train()
    seconds, = bct.time_modules([(slow, (torch.zeros(1), ))], repeats=3,
                                warmup=2, device='cpu')
    assert slow.calls == 5
    assert slow.modes == {(False, False)}
    assert 0.004 <= seconds < 0.1


def test_modules_are_timed_in_interleaved_rounds():
    order = []

    class Tick(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            order.append(self.name)
            return x

    x = (torch.zeros(1), )
    secs = bct.time_modules([(Tick('a'), x), (Tick('b'), x), (Tick('c'), x)],
                            repeats=3, warmup=1, device='cpu')
    assert len(secs) == 3 and all(s >= 0 for s in secs)
    # warm-up of each, then rounds in which every module runs once: a slow
    # drift of the machine hits all modules alike
    assert order == ['a', 'b', 'c'] + ['a', 'b', 'c'] * 3


def test_verify_times_built_networks_with_the_same_function(
        tables, monkeypatch, tiny_retrain_cfg):
    import verify_cost_table
    clock = _FakeClock()
    monkeypatch.setattr(bct, 'time_modules', clock)
    table = CostTable(tables[0])
    layout = bct.Layout(tiny_retrain_cfg(**THREE_CLASSES), SIZE, LAYERS,
                        BLOCKS)
    result = verify_cost_table.verify(layout, table, 3)
    assert [name for name, _, _ in clock.calls] == ['SegmentorLogits'] * 3
    assert all(shapes == ((1, 3) + SIZE, ) for _, _, shapes in clock.calls)
    assert result['measured'] == pytest.approx([1e-3, 2e-3, 3e-3])
    rng = np.random.default_rng(1)
    space = SearchSpace(num_layers=LAYERS, num_blocks=BLOCKS)
    assert result['predicted'] == pytest.approx(
        [table.predicted(sample_genotype(rng, space)) for _ in range(3)])
    assert -1 <= result['spearman'] <= 1


def test_tool_writes_latency_table_and_verifies(cfg_file, tmp_path, capsys):
    import verify_cost_table
    out = tmp_path / 'lat.json'
    assert cli.main([cfg_file, '--size', '32x32', '--num-layers', '3',
                     '--kind', 'latency', '--repeats', '2', '--warmup', '1',
                     '--out', str(out)]) == 0
    data = json.loads(out.read_text())
    assert data['kind'] == 'latency' and data['config'] == cfg_file
    assert data['repeats'] == 2 and data['warmup'] == 1
    assert data['num_layers'] == 3 and data['input_size'] == [32, 32]
    assert verify_cost_table.main([str(out), '--num', '3', '--out',
                                   str(tmp_path / 'v.json')]) == 0
    measured = json.loads((tmp_path / 'v.json').read_text())['measured']
    assert len(measured) == 3 and all(0 < m < 10 for m in measured)
    printed = capsys.readouterr().out
    assert 'Spearman(predicted, measured)' in printed
    assert not list(tmp_path.glob('.lat.json.*'))


@pytest.mark.parametrize('args,flag', [
    (['--kind', 'latency', '--device', 'tpu'], 'tpu'),
    (['--repeats', '5'], '--repeats'),
    (['--kind', 'latency', '--repeats', '0'], '--repeats'),
])
def test_tool_usage_errors_are_one_line(cfg_file, tmp_path, capsys, args,
                                        flag):
    with pytest.raises(SystemExit) as info:
        cli.main([cfg_file, '--size', '32x32', '--num-layers', '3',
                  '--out', str(tmp_path / 'x.json')] + args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error:') and flag in err and '\n' not in err
    assert not (tmp_path / 'x.json').exists()


def test_tool_accepts_latency_defaults_with_macs():
    # scripts passing the defaults with --kind macs keep working
    args = cli.parse_args(['c.py', '--out', 'x.json', '--device', 'cpu',
                           '--repeats', str(LATENCY_DEFAULTS['repeats'])])
    assert args.kind == 'macs' and args.latency == {}


# -- arch_cost ------------------------------------------------------------


@pytest.fixture(scope='module')
def table_files(tables, tmp_path_factory):
    folder = tmp_path_factory.mktemp('tables')
    paths = {}
    for data in tables:
        paths[data['kind']] = str(folder / f'{data["kind"]}.json')
        with open(paths[data['kind']], 'w') as f:
            json.dump(data, f)
    return paths


def test_latency_arch_cost_penalises_seconds(table_files):
    cost = ArchCost.build(dict(kind='latency', target=2e-3, weight=0.5,
                               table=table_files['latency']))
    assert cost.kind == 'latency' and cost.table.kind == 'latency'
    assert cost.penalty(torch.tensor(3e-3)).item() == pytest.approx(0.25)
    assert cost.penalty(torch.tensor(1e-3)).item() == 0.
    assert format_cost(4.2e-3, 'latency') == '4.2 ms'
    assert format_cost(12.3e6, 'macs') == '12.30M multiply-adds'


@pytest.mark.parametrize('kind,table,key', [
    ('latency', 'macs', 'kind'),
    ('macs', 'latency', 'kind'),
])
def test_kind_mismatch_is_one_line(table_files, kind, table, key):
    message = _one_line_error(lambda: ArchCost.build(dict(
        kind=kind, target=1e-3, weight=1., table=table_files[table])),
        f'arch_cost.{key}:')
    assert repr(table) in message


@pytest.mark.parametrize('update,prefix', [
    (dict(target=0.), 'arch_cost.target:'),
    (dict(target=float('inf')), 'arch_cost.target:'),
    (dict(weight=-1.), 'arch_cost.weight:'),
    (dict(build='here'), 'arch_cost.build:'),
    (dict(build=dict(size=(32, 32))), 'arch_cost.build.config:'),
    (dict(build=dict(config='no/such/config.py', size=(32, 32))),
     'arch_cost.build.config:'),
    (dict(build=dict(config=RETRAIN, size=(32, ))), 'arch_cost.build.size:'),
    (dict(build=dict(config=RETRAIN, size=(4, 32))), 'arch_cost.build.size:'),
    (dict(build=dict(config=RETRAIN, size=(32, 32), num_layers=0)),
     'arch_cost.build.num_layers:'),
    (dict(build=dict(config=RETRAIN, size=(32, 32), repeats=0)),
     'arch_cost.build.repeats:'),
    (dict(build=dict(config=RETRAIN, size=(32, 32), warmup=-1)),
     'arch_cost.build.warmup:'),
    (dict(build=dict(config=RETRAIN, size=(32, 32), device='tpu')),
     'arch_cost.build.device:'),
    (dict(build=dict(config=RETRAIN, size=(32, 32), budget=3)),
     'arch_cost.build.budget:'),
    (dict(kind='macs', target=1e6,
          build=dict(config=RETRAIN, size=(32, 32), repeats=3)),
     'arch_cost.build.repeats:'),
])
def test_bad_latency_config_is_one_line(tmp_path, update, prefix):
    cfg = dict(kind='latency', target=1e-3, weight=1.,
               table=str(tmp_path / 'missing.json'))
    cfg.update(update)
    _one_line_error(lambda: ArchCost.build(cfg), prefix)
    _one_line_error(lambda: ArchCost.check_cfg(cfg), prefix)
    assert not (tmp_path / 'missing.json').exists()


def test_unreadable_table_version_is_one_line(tables, tmp_path):
    path = tmp_path / 'v9.json'
    path.write_text(json.dumps(dict(tables[0], version=9)))
    message = _one_line_error(lambda: ArchCost.build(dict(
        kind='latency', target=1e-3, weight=1., table=str(path))),
        'arch_cost.table:')
    assert 'version 9' in message


# -- arch_cost.build: one config ------------------------------------------


class _CountingBuilder:

    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.real(*args, **kwargs)


@pytest.fixture()
def builder(monkeypatch):
    counting = _CountingBuilder(bct.make_table)
    monkeypatch.setattr(bct, 'make_table', counting)
    return counting


def _latency_cfg(path, cfg_file, **build):
    spec = dict(config=cfg_file, size=SIZE, num_layers=LAYERS, repeats=1,
                warmup=0)
    spec.update(build)
    return dict(kind='latency', target=1e-3, weight=1., table=str(path),
                build=spec)


def test_missing_table_is_built_once_and_reused(cfg_file, tmp_path,
                                                builder):
    path = tmp_path / 'cost_tables' / 'lat.json'
    cfg = _latency_cfg(path, cfg_file)
    ArchCost.check_cfg(cfg)  # tools/search.py: checks, builds nothing
    assert builder.calls == [] and not path.exists()

    first = ArchCost.build(cfg)
    assert len(builder.calls) == 1 and path.is_file()
    data = json.loads(path.read_text())
    assert data['kind'] == 'latency' and data['config'] == cfg_file
    assert data['input_size'] == list(SIZE) and data['repeats'] == 1
    assert data['num_layers'] == LAYERS and data['threads'] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == [
        'lat.json', 'lat.json.lock']  # no temp file; the build's lock

    second = ArchCost.build(cfg)
    ArchCost.check_cfg(cfg)
    assert len(builder.calls) == 1  # reused, not rebuilt
    assert torch.equal(second.table.edges, first.table.edges)
    assert second.table.stem == first.table.stem > 0


def test_existing_table_of_another_build_is_refused(cfg_file, tmp_path,
                                                    builder):
    path = tmp_path / 'lat.json'
    ArchCost.build(_latency_cfg(path, cfg_file))
    assert len(builder.calls) == 1
    for build, diff in ((dict(size=(64, 64)), 'size 32x32 vs 64x64'),
                        (dict(config=RETRAIN), 'config '),
                        (dict(num_layers=4), 'num_layers 3 vs 4'),
                        (dict(threads=2), 'threads 1 vs 2')):
        cfg = _latency_cfg(path, cfg_file, **build)
        for call in (ArchCost.build, ArchCost.check_cfg):
            message = _one_line_error(lambda: call(cfg), 'arch_cost.table:')
            assert diff in message and 'delete the file' in message
    macs = dict(kind='macs', target=1e6, weight=1., table=str(path),
                build=dict(config=cfg_file, size=SIZE, num_layers=LAYERS))
    message = _one_line_error(lambda: ArchCost.build(macs),
                              'arch_cost.table:')
    assert "kind 'latency' vs 'macs'" in message
    assert len(builder.calls) == 1  # refusing never rebuilds


def test_version_1_macs_table_is_reused_by_build(tables, cfg_file, tmp_path,
                                                 builder):
    """A MACs table written before format version 2 (and before
    ``arch_cost.build``) still loads and satisfies a matching build."""
    path = tmp_path / 'macs.json'
    path.write_text(json.dumps(dict(tables[1], version=1, config=cfg_file)))
    cost = ArchCost.build(dict(
        kind='macs', target=1e6, weight=1., table=str(path),
        build=dict(config=cfg_file, size=SIZE, num_layers=LAYERS)))
    assert builder.calls == []
    assert cost.table.stem == tables[1]['stem']


def test_budget_config_runs_from_itself(tmp_path, builder):
    """The demo budget config's arch_cost builds a table of its search's
    space (what the loop checks against its supernet)."""
    from mmengine.config import Config
    cfg = Config.fromfile(BUDGET)
    arch_cost = cfg.train_cfg.arch_cost  # a ConfigDict, as the loop gets it
    assert arch_cost.build.config == RETRAIN
    arch_cost.table = str(tmp_path / 'demo.json')
    ArchCost.check_cfg(arch_cost)
    assert builder.calls == []
    cost = ArchCost.build(arch_cost)
    assert len(builder.calls) == 1 and cost.kind == 'macs'
    bb = cfg.model.backbone

    class Supernet:
        num_layers, num_blocks = bb.num_layers, bb.get('num_blocks', 5)
        num_levels = bb.get('num_levels', 4)
        primitives = tuple(bb.get('primitives', PRIMITIVES))

    cost.check_supernet(Supernet)
    assert cost.table.data['input_size'] == [64, 64]
