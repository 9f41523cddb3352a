"""The cost table against mmengine's counter, the expected cost's gradient
and the ``arch_cost`` config checks (tiny sizes, CPU)."""
import json

import numpy as np
import pytest
import torch

from mmseg_autodeeplab.analysis import count_macs
from scipy.stats import spearmanr
from verify_cost_table import count_network, verify
from verify_cost_table import main as verify_main

from mmseg_autodeeplab.arch_cost import CostTable, expected_cost, op_cost
from mmseg_autodeeplab.cli.build_cost_table import main
from mmseg_autodeeplab.cost_tables import Layout, build_table
from mmseg_autodeeplab.engine.arch_cost_option import ArchCost
from mmseg_autodeeplab.search_space.sampling import sample_genotype
from mmseg_autodeeplab.search_space import PRIMITIVES, SearchSpace, build_op
from mmseg_autodeeplab.search_space.decode import normalize_betas

SIZE = (33, 47)  # odd and uneven: every level size is rounded up
SPACE = SearchSpace(num_layers=4, num_blocks=5)


# cfg-options for tiny_retrain_cfg (tests/conftest.py)
THREE_CLASSES = {'model.decode_head.num_classes': 3}


@pytest.fixture(scope='module')
def tiny(tiny_retrain_cfg):
    cfg = tiny_retrain_cfg(**THREE_CLASSES)
    layout = Layout(cfg, SIZE, SPACE.num_layers, SPACE.num_blocks)
    return layout, CostTable(build_table(layout))


@pytest.fixture(scope='module')
def twenty(tiny):
    """Predicted and counted cost of 20 random genotypes."""
    layout, table = tiny
    rng = np.random.default_rng(20)
    genotypes = [sample_genotype(rng, SPACE) for _ in range(20)]
    predicted = [table.predicted(g) for g in genotypes]
    counted = [count_network(layout, g) for g in genotypes]
    return genotypes, predicted, counted


@pytest.mark.parametrize('affine', [True, False])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('op', [p for p in PRIMITIVES if p != 'none'])
def test_op_cost_is_the_counter(op, stride, affine):
    x = torch.rand(1, 6, 7, 10)
    module = build_op(op, 6, stride, dict(type='BN', affine=affine)).eval()
    out = module(x)
    assert count_macs(module, x) == op_cost(
        op, 6, stride, out.shape[2] * out.shape[3], bn=2 if affine else 1)


def test_table_equals_counted_macs_of_built_static_nets(twenty):
    _, predicted, counted = twenty
    assert len(set(counted)) > 15  # the genotypes really differ in cost
    assert [int(round(p)) for p in predicted] == counted


def test_verify_counts_the_same_networks(tiny, twenty):
    layout, table = tiny
    result = verify(layout, table, 3, seed=20)
    _, predicted, counted = twenty
    # the same generator: the first three of the twenty
    assert result['counted'] == counted[:3]
    assert result['predicted'] == [int(round(p)) for p in predicted[:3]]
    assert result['max_abs_diff'] == 0
    assert result['spearman'] == pytest.approx(
        spearmanr(predicted[:3], counted[:3]).correlation)


def test_expected_cost_of_one_hot_path_is_the_path_cost(tiny, twenty):
    """With the edges zeroed and β one-hot on a genotype's path, the
    Markov-chain marginals (pairs, triples, head joint) give that path's
    cost exactly."""
    _, table = tiny
    data = dict(table.data)
    data['edges'] = (table.edges * 0).tolist()
    no_edges = CostTable(data)
    for g in twenty[0][:5]:
        probs = torch.zeros(SPACE.num_layers, 4, 3, dtype=torch.float64)
        src = 0
        for layer, dst in enumerate(g.path):
            probs[layer, :, 1] = 1.  # other rows: any distribution
            probs[layer, src] = 0.
            probs[layer, src, dst - src + 1] = 1.
            src = dst
        alphas = torch.randn(20, 8, dtype=torch.float64)
        assert expected_cost(alphas, probs, no_edges).item() == \
            pytest.approx(no_edges.predicted(g), rel=1e-12)


def test_expected_cost_of_sharp_alphas(tiny):
    """One op per edge (α one-hot in the limit): each edge of block b
    counts that op's cost times 2 / (b + 2)."""
    _, table = tiny
    data = dict(table.data)
    for key in ('cells', 'head'):
        data[key] = (getattr(table, key) * 0).tolist()
    data['stem'] = 0
    edges_only = CostTable(data)
    ops = torch.randint(1, 8, (20, ))
    alphas = torch.full((20, 8), -1e4, dtype=torch.float64)
    alphas[torch.arange(20), ops] = 0.
    probs = torch.zeros(4, 4, 3, dtype=torch.float64)
    probs[:, :, 1] = 1.  # stay at level 0
    keep = [2. / (b + 2) for b in range(5) for _ in range(b + 2)]
    manual = sum(keep[e] * float(table.edges[layer, 0, 0, e, ops[e]])
                 for layer in range(4) for e in range(20))
    assert expected_cost(alphas, probs, edges_only).item() == \
        pytest.approx(manual, rel=1e-12)


def test_expected_cost_gradient_matches_finite_differences(tiny):
    _, table = tiny
    torch.manual_seed(0)
    alphas = torch.randn(20, 8, dtype=torch.float64, requires_grad=True)
    betas = torch.randn(4, 4, 3, dtype=torch.float64, requires_grad=True)

    def f(a, b):
        return expected_cost(a, normalize_betas(b), table) / table.stem

    assert torch.autograd.gradcheck(f, (alphas, betas), eps=1e-6,
                                    atol=1e-7, rtol=1e-5)
    # and the gradient is not trivially zero
    ga, gb = torch.autograd.grad(f(alphas, betas), (alphas, betas))
    assert ga.abs().max() > 0 and gb.abs().max() > 0


def _arch_cost(path, **kw):
    cfg = dict(kind='macs', target=1e6, weight=1.0, table=path)
    cfg.update(kw)
    return ArchCost.build(cfg)


@pytest.fixture(scope='module')
def table_file(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp('cost') / 'cost_table.json'
    path.write_text(json.dumps(tiny[1].data))
    return str(path)


@pytest.mark.parametrize('key,value', [
    ('kind', 'flops'), ('kind', 'latency'), ('kind', None),
    ('target', 0), ('target', -5.), ('target', 'big'), ('target', True),
    ('target', float('nan')), ('target', None),
    ('weight', -1.), ('weight', 'x'), ('weight', float('inf')),
    ('penalty', 'square'), ('table', '/nonexistent/cost_table.json'),
    ('budget', 3),
])
def test_bad_arch_cost_config_is_one_line_naming_the_key(
        table_file, key, value):
    with pytest.raises(ValueError) as info:
        _arch_cost(table_file, **{key: value})
    message = str(info.value)
    assert message.startswith(f'arch_cost.{key}:')
    assert '\n' not in message


def test_table_of_another_space_is_refused(table_file):
    cost = _arch_cost(table_file)

    class Net:
        num_layers, num_blocks, num_levels = 12, 5, 4
        primitives = PRIMITIVES

    with pytest.raises(ValueError, match=r'^arch_cost\.table: .*num_layers'):
        cost.check_supernet(Net)


def test_off_by_default():
    assert ArchCost.build(None) is None


def test_penalties(table_file):
    cost = torch.tensor(3e6, dtype=torch.float64)
    below = torch.tensor(5e5, dtype=torch.float64)
    hinge = _arch_cost(table_file, weight=0.5)
    assert hinge.penalty(cost).item() == pytest.approx(0.5 * 2.)
    assert hinge.penalty(below).item() == 0.
    log = _arch_cost(table_file, weight=0.5, penalty='log')
    assert log.penalty(cost).item() == pytest.approx(0.5 * np.log(3.))
    assert log.penalty(below).item() == pytest.approx(0.5 * np.log(2.))


def test_tool_writes_table_with_size_and_device(tmp_path, capsys,
                                                tiny_retrain_cfg):
    cfg_file = tmp_path / 'tiny_retrain.py'
    tiny_retrain_cfg(**THREE_CLASSES).dump(str(cfg_file))
    out = tmp_path / 'ct.json'
    assert main([str(cfg_file), '--size', '33x47', '--num-layers', '4',
                 '--out', str(out)]) == 0
    data = json.loads(out.read_text())
    assert data['input_size'] == [33, 47]
    assert data['device'].startswith('cpu')
    assert data['kind'] == 'macs' and data['num_layers'] == 4
    assert not list(tmp_path.glob('.ct.json.*'))  # atomic: no temp file
    # tools/analysis/verify_cost_table.py rebuilds the networks it records
    assert verify_main([str(out), '--num', '2', '--out',
                        str(tmp_path / 'v.json')]) == 0
    assert json.loads((tmp_path / 'v.json').read_text())[
        'max_abs_diff'] == 0
    assert 'Spearman(predicted, counted)' in capsys.readouterr().out


def test_verify_tool_refuses_a_bad_table_in_one_line(tmp_path, capsys):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"format": "x"}')
    for path in (tmp_path / 'missing.json', bad):
        with pytest.raises(SystemExit) as info:
            verify_main([str(path)])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count('\n') == 1
        # named once, at the start
        assert err.startswith(f'error: {path}: ') and err.count(str(path)) == 1
