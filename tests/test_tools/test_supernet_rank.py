"""Scoring genotypes with a trained supernet (tools/supernet_rank.py)."""
import json
import os

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from mmseg_autodeeplab.cli import supernet_rank
from mmseg_autodeeplab.oneshot_eval import recalibrate_bn
from mmseg_autodeeplab.models.backbones.autodeeplab_supernet import \
    AutoDeepLabSupernet
from mmseg_autodeeplab.search_space import (SearchSpace, decode_cell,
                                            decode_path)
from mmseg_autodeeplab.search_space.decode import genotype_weights
from mmseg_autodeeplab.search_space.sampling import sample_genotype


def test_genotype_weights_decode_back_to_the_genotype():
    rng = np.random.default_rng(0)
    space = SearchSpace(num_layers=6, num_blocks=5)
    for _ in range(20):
        g = sample_genotype(rng, space)
        alpha, beta = genotype_weights(g)
        assert alpha.shape == (20, 8) and beta.shape == (6, 4, 3)
        assert alpha.sum() == 10 and beta.sum() == 6  # one per kept edge
        assert decode_cell(alpha.clamp_min(1e-30).log(),
                           space.primitives) == g.cell
        assert tuple(decode_path(beta)) == g.path


def test_fixed_arch_ignores_alpha_beta_and_unused_edges():
    torch.manual_seed(0)
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2).eval()
    g = sample_genotype(np.random.default_rng(3),
                        SearchSpace(num_layers=3, num_blocks=5))
    x = torch.rand(1, 3, 32, 32)
    weights = genotype_weights(g)
    with net.fixed_arch(*weights):
        a = net(x)
        with torch.no_grad():
            net.alphas.normal_()
            net.betas.normal_()
            kept = {(b, i) for b, blk in enumerate(g.cell.blocks)
                    for i, _ in blk}
            unused = next(e for e in range(20) if all(
                (b, e - (b * (b + 3)) // 2) not in kept for b in range(5)
                if 0 <= e - (b * (b + 3)) // 2 < b + 2))
            for p in net.cells['2_0'].edges[unused].parameters():
                p.add_(1.0)
        b = net(x)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    # off-path levels of the last layer hold zeros
    last = g.path[-1]
    assert all((o == 0).all() == (j != last) for j, o in enumerate(a)
               if j <= 3)
    c = net(x)  # the override ends with the context
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def _tau_b(x, y):
    """Kendall's τ-b by counting pairs: (concordant - discordant) over the
    geometric mean of the pairs untied in x and in y; NaN if either side
    is constant."""
    pairs = [(np.sign(x[i] - x[j]), np.sign(y[i] - y[j]))
             for i in range(len(x)) for j in range(i)]
    untied_x = sum(a != 0 for a, _ in pairs)
    untied_y = sum(b != 0 for _, b in pairs)
    if not untied_x or not untied_y:
        return float('nan')
    return sum(a * b for a, b in pairs) / np.sqrt(untied_x * untied_y)


def test_kendall_tau():
    assert supernet_rank.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40])[0] == \
        pytest.approx(1.0)
    assert supernet_rank.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1])[0] == \
        pytest.approx(-1.0)
    x, y = [1, 2, 2, 5, 3], [3, 1, 4, 4, 2]  # ties on both sides
    assert supernet_rank.kendall_tau(x, y)[0] == pytest.approx(_tau_b(x, y))
    assert _tau_b(x, y) == pytest.approx(2 / 9)  # 5 - 3 of 9 untied
    assert np.isnan(supernet_rank.kendall_tau([1, 1, 1], [1, 2, 3])[0])


@pytest.mark.slow
def test_rank_a_tiny_search_without_touching_it(tiny_cityscapes, tiny_cfg,
                                                tmp_path):
    work_dir = tmp_path / 'search'
    cfg = tiny_cfg(tiny_cityscapes, str(work_dir),
                   **{'train_cfg.cpu_threads': 1})
    Runner.from_cfg(cfg).train()
    before = {f: os.stat(work_dir / f).st_mtime_ns
              for f in os.listdir(work_dir)}
    rng = np.random.default_rng(0)
    space = SearchSpace(num_layers=3, num_blocks=5)
    gens = {f'random_{i:02d}': sample_genotype(rng, space) for i in range(3)}
    cmp_dir = tmp_path / 'cmp'
    cmp_dir.mkdir()
    (cmp_dir / 'results.json').write_text(json.dumps(dict(
        genotypes={n: dict(kind='random', genotype=g.to_dict())
                   for n, g in gens.items()},
        summary=dict(genotypes={n: dict(kind='random', mean=float(i))
                                for i, n in enumerate(gens)}))))
    assert supernet_rank.main([str(work_dir), str(cmp_dir),
                               '--calib-batches', '2']) == 0
    rep = json.loads((cmp_dir / 'supernet_rank.json').read_text())
    assert sorted(rep['scores']) == sorted(gens)
    assert all(0 <= s <= 100 for s in rep['scores'].values())
    names = sorted(gens)
    tau = _tau_b([rep['scores'][n] for n in names],
                 [rep['retrained'][n] for n in names])
    # NaN only where the tool must give it: equal supernet scores
    assert np.isclose(rep['kendall_tau'], tau, equal_nan=True)
    assert {f: os.stat(work_dir / f).st_mtime_ns
            for f in os.listdir(work_dir)} == before
    # the gap: the mixed supernet scored beside the genotypes
    scores, gap = list(rep['scores'].values()), rep['gap']
    assert 0 <= gap['mixed'] <= 100
    assert gap['discrete_best'] == max(scores)
    assert gap['discrete_mean'] == pytest.approx(sum(scores) / 3)
    assert rep['metric'] == 'mIoU'


def test_bad_comparison_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        supernet_rank.main([str(tmp_path), str(tmp_path)])
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'results.json' in err and \
        err.count('\n') == 1


@pytest.mark.parametrize('mistake', ['comparison', 'work_dir',
                                     'checkpoint'])
def test_bad_inputs_leave_no_out_folder_behind(tmp_path, capsys, mistake):
    """Every input is checked before ``--out`` is made and locked: a
    mistyped path leaves no folder with a lock file behind (before: the
    folder and ``.search.lock`` were made first)."""
    (tmp_path / 'search').mkdir()
    (tmp_path / 'search' / 'epoch_1.pth').write_text('')
    (tmp_path / 'cmp').mkdir()
    (tmp_path / 'cmp' / 'results.json').write_text(json.dumps(dict(
        genotypes={}, summary=dict(genotypes={}))))
    paths = dict(work_dir=tmp_path / 'search', comparison=tmp_path / 'cmp',
                 checkpoint=tmp_path / 'search' / 'epoch_1.pth')
    paths[mistake] = tmp_path / 'typo'
    with pytest.raises(SystemExit):
        supernet_rank.main([str(paths['work_dir']), str(paths['comparison']),
                            '--checkpoint', str(paths['checkpoint']),
                            '--out', str(tmp_path / 'out')])
    assert capsys.readouterr().err.count('\n') == 1
    assert sorted(os.listdir(tmp_path)) == ['cmp', 'search']


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / 'search').mkdir()
    (tmp_path / 'cmp').mkdir()
    (tmp_path / 'cmp' / 'results.json').write_text(json.dumps(dict(
        genotypes={}, summary=dict(genotypes={}))))
    with pytest.raises(SystemExit):
        supernet_rank.main([str(tmp_path / 'search'), str(tmp_path / 'cmp'),
                            '--checkpoint', str(tmp_path / 'epoch_30.pth')])
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'epoch_30.pth: no such checkpoint' in err


def test_an_owned_out_folder_is_refused_in_one_line(tmp_path, capsys):
    """A comparison folder another run writes into (search_vs_random still
    running, a second supernet_rank) is refused in one line naming it."""
    from mmseg_autodeeplab.utils.work_dir_lock import LOCK_NAME, \
        work_dir_lock
    cmp_dir = tmp_path / 'cmp'
    cmp_dir.mkdir()
    (cmp_dir / 'results.json').write_text(json.dumps(dict(
        genotypes={}, summary=dict(genotypes={}))))
    (tmp_path / 'search').mkdir()
    (tmp_path / 'search' / 'epoch_1.pth').write_text('')
    (tmp_path / 'search' / 'search_config.py').write_text('')  # its dump
    with work_dir_lock(cmp_dir, '--out', command=['search_vs_random']):
        with pytest.raises(SystemExit) as e:
            supernet_rank.main([str(tmp_path / 'search'), str(cmp_dir),
                                '--checkpoint',
                                str(tmp_path / 'search' / 'epoch_1.pth')])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--out '{cmp_dir}' is in use" in err[0]
    assert ': search_vs_random)' in err[0]
    assert sorted(os.listdir(cmp_dir)) == [LOCK_NAME, 'results.json']


def test_recalibrate_bn_is_the_cumulative_average_over_the_batches():
    """BN statistics from ``recalibrate_bn`` equal the mean of the batch
    means and of the unbiased batch variances; momentum is restored and the
    model is left in eval mode."""
    torch.manual_seed(0)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm2d(3, momentum=0.3)

        def data_preprocessor(self, batch, training):
            assert training
            return batch['inputs'] * 2

        def _run_forward(self, data, mode):
            assert mode == 'tensor'
            return self.bn(data)

    model = Model()
    batches = [dict(inputs=torch.randn(2, 3, 5, 4) + i) for i in range(3)]
    assert recalibrate_bn(model, batches) is model
    assert not model.training and model.bn.momentum == 0.3
    x = [2 * b['inputs'] for b in batches]
    mean = torch.stack([v.mean((0, 2, 3)) for v in x]).mean(0)
    var = torch.stack([v.transpose(0, 1).reshape(3, -1).var(1)
                       for v in x]).mean(0)
    assert torch.allclose(model.bn.running_mean, mean, atol=1e-6)
    assert torch.allclose(model.bn.running_var, var, atol=1e-5)
    assert model.bn.num_batches_tracked.item() == 3
