"""tools/analysis/search_verdict.py (the verdict over several searches'
comparisons: margins, split-half τ, baselines) and search_dynamics.py
(operators per validation, draws from α/β); plot_op_share, which uses it."""
import json
import math
import os

import numpy as np
import pytest
import search_dynamics as dyn
import search_verdict as study
import torch

from mmseg_autodeeplab.cli import search_vs_random as svr
from mmseg_autodeeplab.search_space import PRIMITIVES, SearchSpace, sampling
from mmseg_autodeeplab.search_space.decode import normalize_betas

SPACE = SearchSpace(num_layers=4, num_blocks=5)


def test_split_half_tau_and_kendall():
    """τ between two retrain seeds' rankings (planted: seed 1 swaps the
    two best of five)."""
    names = [f'random_{i:02d}' for i in range(5)]
    runs = {}
    for i, n in enumerate(names):
        runs[f'{n}@0'] = dict(mIoU=float(i))
        runs[f'{n}@1'] = dict(mIoU=float({3: 4, 4: 3}.get(i, i)))
    assert study.split_half_tau(runs, names, [0, 1]) == pytest.approx(0.8)
    assert study.split_half_tau(runs, names, [0]) is None
    assert study.kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert study.kendall([1, 1, 1], [1, 2, 3]) is None  # constant
    assert study.kendall([1, 2], [1, 2]) is None  # too few
    assert study.kendall([1, None, 3], [1, 2, 3]) is None


def test_free_scores_of_a_real_retrain_model(tmp_path, tiny_retrain_cfg):
    g = sampling.sample_genotype(np.random.default_rng(3),
                                 SearchSpace(num_layers=3, num_blocks=5))
    g.save(tmp_path / 'g.json')
    cfg = svr.retrain_cfg(tiny_retrain_cfg(), str(tmp_path / 'g.json'), g,
                          0, str(tmp_path / 'w'))
    a, b = study.free_scores(cfg), study.free_scores(cfg)
    assert a == b  # deterministic
    from mmseg_autodeeplab.analysis import build_segmentor
    model = build_segmentor(cfg)
    head_aux = sum(p.numel() for n, p in model.named_parameters()
                   if n.startswith('auxiliary_head'))
    assert a['params'] == sum(p.numel() for p in model.parameters()) - \
        head_aux
    assert math.isfinite(a['synflow']) and a['synflow'] > 0


def test_one_verdict_line_per_search(tmp_path, monkeypatch, capsys):
    """Two searches compared separately (each against its own randoms), one
    verdict: a beats its randoms, b does not."""
    paths = []
    for name, seed in (('seed_a', 1), ('seed_b', 2)):
        path = tmp_path / f'{name}.json'
        sampling.sample_genotype(np.random.default_rng(seed), SPACE).save(
            path)
        paths.append(str(path))

    def fake_retrain(cfg):
        parts = cfg.work_dir.split(os.sep)
        search, run = parts[-3], parts[-1]
        if run.startswith('searched'):  # a beats its random, b does not
            return 60.0 if search == 'seed_a' else 1.0
        return 10.0 + int(run[len('random_'):len('random_00')]) + \
            cfg.randomness['seed']

    monkeypatch.setattr(svr, 'run_retrain', fake_retrain)
    monkeypatch.setattr(svr, 'model_macs', lambda cfg: 1000)
    folders = []
    for name, path in zip(('seed_a', 'seed_b'), paths):
        folders.append(str(tmp_path / name))
        assert svr.main(['--searched', path, '--num-random', '3', '--seeds',
                         '0', '1', '--paper', '', '--out', folders[-1],
                         '--jobs', '1']) == 0
    # the baselines build every random genotype's model: planted here
    seen = []
    monkeypatch.setattr(study, 'baselines', lambda folder, results, names: (
        seen.append(names) or dict(params=0.5, synflow=-0.5, macs=None)))
    out = tmp_path / 'verdict'
    assert study.main([*folders, '--out', str(out)]) == 0
    a, b = json.loads((out / 'verdict.json').read_text())
    # the baselines rank each comparison's random genotypes only
    assert seen == [[f'random_{i:02d}' for i in range(3)]] * 2
    assert (a['name'], a['beats'], a['num_random']) == ('seed_a', 3, 3)
    assert a['mean'] == 60.0 and a['p_value'] == pytest.approx(1 / 4)
    assert (b['name'], b['beats']) == ('seed_b', 0)
    assert b['p_value'] == 1.0
    # random means 10.5, 11.5, 12.5
    assert b['random_median'] == pytest.approx(11.5)
    # margins in units of the mean within-genotype std (0 for the searched
    # genotype, 1/sqrt(2) for each random one: seeds differ by 1)
    std = 3 * 2**-0.5 / 4
    assert a['retrain_std'] == pytest.approx(std)
    assert a['margin_best_random'] == pytest.approx((60 - 12.5) / std)
    assert a['best_random'] == pytest.approx(12.5)
    assert a['prior_mean'] is None and a['margin_prior'] is None
    # seeds rank the randoms alike (each seed adds 1 to every random)
    assert a['split_half_tau'] == pytest.approx(1.0)
    md = (out / 'verdict.md').read_text()
    assert '| seed_a |' in md and '3 of 3' in md and '0 of 3' in md
    assert '| 0.500 / -0.500 /  |' in md
    # neither comparison recorded a prior: not measured, not beaten
    assert ('0 of 2 searches beat their prior and their best random '
            'genotype by more than one retrain std (2 without a measured '
            'prior).') in md
    assert md in capsys.readouterr().out


def test_a_missing_prior_or_macs_is_not_measured():
    """A search without a ``prior`` row has not beaten its prior (before:
    counted as if it had); MACs that were not recorded print empty (before:
    ``None / 1e6`` raised)."""
    base = dict(mean=60.0, std=0.5, beats=3, num_random=3, macs=None,
                random_median=11.5, best_random=12.5, margin_best_random=5.0,
                split_half_tau=None, p_value=0.25, prior_macs=None,
                baseline_tau=dict(params=None, synflow=None, macs=None))
    md = study.render_verdicts([
        dict(base, name='no_prior', prior_mean=None, margin_prior=None),
        dict(base, name='beat_it', prior_mean=50.0, margin_prior=2.0),
        dict(base, name='lost', prior_mean=61.0, prior_macs=2e6,
             margin_prior=-0.5)])
    assert ('\n1 of 3 searches beat their prior and their best random '
            'genotype by more than one retrain std (1 without a measured '
            'prior).\n') in md
    assert '| no_prior |  | 60.00 ± 0.50 | 3 of 3 |' in md
    assert '| 50.00,  (+2.0) |' in md and '| 61.00, 2.0 (-0.5) |' in md


def test_an_unfinished_comparison_is_one_line(tmp_path, capsys):
    (tmp_path / 'results.json').write_text(json.dumps(dict(runs={})))
    with pytest.raises(SystemExit):
        study.main([str(tmp_path), '--out', str(tmp_path / 'v')])
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'not a finished comparison' in err
    assert err.count('\n') == 1 and not (tmp_path / 'v').exists()


def test_draw_stats_on_planted_alpha_beta(tmp_path, capsys):
    """Peaked β that always stays at /4: no draw goes coarse; α that puts
    all weight on skip_connect: every operator is parameter-free."""
    g = sampling.sample_genotype(np.random.default_rng(0), SPACE)
    stay = torch.full((4, 4, 3), -30.0)
    stay[..., 1] = 0.0
    skip = torch.full((20, 8), 1e-9)
    skip[:, PRIMITIVES.index('skip_connect')] = 1.0
    entry = dict(alpha=skip.tolist(), beta=normalize_betas(stay).tolist(),
                 genotype=g.to_dict())
    assert dyn.draw_stats(entry, 200) == (0.0, 10.0)
    uniform = dict(entry, alpha=[[1 / 8] * 8] * 20,
                   beta=normalize_betas(torch.zeros(4, 4, 3)).tolist())
    coarse, free = dyn.draw_stats(uniform, 2000)
    # uniform operators: 2 of the 7 non-zero ones are pools, 1 is skip
    assert free == pytest.approx(10 * 3 / 7, abs=0.15)
    assert 0.2 < coarse < 0.4  # a random walk reaches /16 in 3 layers
    (tmp_path / 'search_history.json').write_text(json.dumps(
        [dict(uniform, epoch=0, iter=0, mIoU=1.0),
         dict(entry, epoch=2, iter=32, mIoU=1.0)]))
    assert dyn.main(['--draws', '50', str(tmp_path)]) == 0
    assert '-> 0.000; parameter-free ops per cell' in capsys.readouterr().out


def _history_with_cells(tmp_path, cells):
    """A search_history.json whose entries decode to ``cells`` (lists of
    10 op names), uniform α/β otherwise."""
    base = sampling.sample_genotype(np.random.default_rng(0), SPACE).to_dict()
    history = []
    for epoch, ops in enumerate(cells):
        g = json.loads(json.dumps(base))
        flat = [i for block in g['cell'] for i in block['inputs']]
        for i, op in zip(flat, ops):
            i['op'] = op
        history.append(dict(
            epoch=2 * epoch, mIoU=1.0, arch_start_epoch=2, genotype=g,
            alpha=[[1 / 8] * 8] * 20,
            beta=normalize_betas(torch.zeros(4, 4, 3)).tolist()))
    work_dir = tmp_path / 'search'
    work_dir.mkdir()
    (work_dir / 'search_history.json').write_text(json.dumps(history))
    return work_dir


def test_op_counts_and_the_ops_trajectory(tmp_path, capsys):
    cells = [['sep_conv_3x3'] * 10,
             ['skip_connect'] * 3 + ['max_pool_3x3'] * 2 +
             ['sep_conv_5x5'] * 5]
    work_dir = _history_with_cells(tmp_path, cells)
    history = json.loads((work_dir / 'search_history.json').read_text())
    assert dyn.op_counts(history[0]) == (0, 0, 10)
    assert dyn.op_counts(history[1]) == (5, 3, 10)
    assert dyn.main([str(work_dir)]) == 0
    assert 'per validation: e0: 0/0, e2: 5/3' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        dyn.main([str(tmp_path / 'missing')])
    assert 'search_history.json' in capsys.readouterr().err


def test_plot_op_share_writes_a_png_and_refuses_bad_runs(tmp_path, capsys):
    import plot_op_share as tool
    work_dir = _history_with_cells(tmp_path, [['skip_connect'] * 10] * 3)
    out = tmp_path / 'share.png'
    assert tool.main([str(out), f'a={work_dir}']) == 0
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'x.png'), f'a={tmp_path / "missing"}'])
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'search_history.json' in err
    assert not (tmp_path / 'x.png').exists()
