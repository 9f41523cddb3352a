"""tools/search_vs_random.py: the uniform sampler, the statistics, resuming
a killed comparison, and (slow) one real retrain through the Runner."""
import collections
import contextlib
import itertools
import json
import math
import os
import os.path as osp

import numpy as np
import pytest

from mmseg_autodeeplab.cli import search_vs_random as svr
from mmseg_autodeeplab.search_space import (PRIMITIVES, Genotype,
                                            SearchSpace, sampling)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OPS = [p for p in PRIMITIVES if p != 'none']


def _valid_paths(num_layers):
    for path in itertools.product(range(4), repeat=num_layers):
        prev, ok = 0, True
        for layer, level in enumerate(path):
            ok &= abs(level - prev) <= 1 and level <= min(layer + 1, 3)
            prev = level
        if ok:
            yield path


def test_path_counts_match_enumeration():
    for layers in (1, 2, 3, 5, 6):
        n = sum(1 for _ in _valid_paths(layers))
        assert sampling.count_paths(layers)[0][0] == n
    assert sampling.count_paths(1)[0][0] == 2  # /4 or /8 after the stem


def _chi2_ok(counts, n_cells, n):
    """Pearson chi-square against uniform, within ~5 sigma of its mean."""
    expected = n / n_cells
    chi2 = sum((c - expected)**2 / expected for c in counts.values()) + \
        (n_cells - len(counts)) * expected
    dof = n_cells - 1
    return chi2 < dof + 5 * math.sqrt(2 * dof), chi2


def test_path_sampler_is_uniform_over_valid_paths():
    paths = list(_valid_paths(4))
    rng = np.random.default_rng(0)
    n = 6000
    counts = collections.Counter(
        tuple(sampling.sample_path(rng, 4)) for _ in range(n))
    assert set(counts) == set(paths)  # only valid paths, all of them
    ok, chi2 = _chi2_ok(counts, len(paths), n)
    assert ok, chi2
    # a random walk would not be uniform: all-/4 is 1/2**4 of its mass
    assert abs(counts[(0, 0, 0, 0)] / n - 1 / len(paths)) < 0.01


def test_cell_sampler_is_valid_and_uniform():
    rng = np.random.default_rng(1)
    n = 14000
    cells = [sampling.sample_cell(rng, 2, PRIMITIVES) for _ in range(n)]
    for cell in cells:
        for b, block in enumerate(cell):
            (i, op_i), (j, op_j) = block
            assert 0 <= i < j < b + 2  # two distinct inputs, ordered
            assert op_i in OPS and op_j in OPS  # never 'none'
    # block 0: 1 pair x 49 op pairs; block 1: 3 pairs x 49
    counts = collections.Counter(cell[1] for cell in cells)
    assert len(counts) == 3 * 49
    ok, chi2 = _chi2_ok(counts, 3 * 49, n)
    assert ok, chi2
    ops = collections.Counter(op for cell in cells for block in cell
                              for _, op in block)
    assert set(ops) == set(OPS)
    assert max(ops.values()) / min(ops.values()) < 1.1


def test_sample_genotype_is_a_valid_genotype():
    space = SearchSpace(num_layers=6, num_blocks=5)
    rng = np.random.default_rng(2)
    for _ in range(50):
        g = sampling.sample_genotype(rng, space)
        assert Genotype.from_dict(json.loads(g.to_json())) == g
        assert len(g.path) == 6 and len(g.cell.blocks) == 5


def _results(means):
    runs, genotypes = {}, {}
    for name, (kind, values) in means.items():
        genotypes[name] = dict(kind=kind, macs=1e6)
        for seed, v in enumerate(values):
            runs[f'{name}@{seed}'] = dict(mIoU=v)
    return dict(genotypes=genotypes, runs=runs)


def test_summary_rank_percentile_and_p_value():
    res = _results({
        'searched': ('searched', [50.0, 52.0]),
        'paper': ('paper', [10.0, 12.0]),
        **{f'random_{i}': ('random', [20.0 + 10 * i, 22.0 + 10 * i])
           for i in range(4)}})  # random means 21, 31, 41, 51
    s = svr.summarize(res)
    searched = s['genotypes']['searched']
    assert searched['mean'] == 51.0
    assert searched['std'] == pytest.approx(math.sqrt(2))
    # 51 vs random 21, 31, 41, 51: rank 1 of 5 (ties count against it)
    assert searched['rank'] == 1
    assert searched['percentile'] == 75.0
    assert searched['p_value'] == pytest.approx(2 / 5)
    paper = s['genotypes']['paper']
    assert (paper['rank'], paper['percentile']) == (5, 0.0)
    assert paper['p_value'] == 1.0
    assert s['spread']['between_random_std'] == pytest.approx(
        np.std([21, 31, 41, 51], ddof=1))
    assert s['spread']['within_genotype_std'] == pytest.approx(math.sqrt(2))
    md = svr.render_markdown(s, dict(config='c.py', seeds=[0, 1],
                                     match_macs=False))
    assert '| searched | searched |' in md and '1 of 5' in md
    assert md.index('| searched') < md.index('| random_3')


def _searched_file(tmp_path):
    g = sampling.sample_genotype(np.random.default_rng(9),
                                 SearchSpace(num_layers=4, num_blocks=5))
    path = tmp_path / 'searched.json'
    g.save(path)
    return str(path)


class _Killed(Exception):
    pass


def _comparison(tmp_path, monkeypatch, fake_retrain, name, num_random=3,
                jobs=1):
    """Patch in ``fake_retrain`` (and 1000 multiply-adds per network);
    the folder and argv of a comparison over seeds 0 and 1."""
    monkeypatch.setattr(svr, 'run_retrain', fake_retrain)
    monkeypatch.setattr(svr, 'model_macs', lambda cfg: 1000)
    out = tmp_path / name
    argv = ['--searched', _searched_file(tmp_path), '--num-random',
            str(num_random), '--seeds', '0', '1', '--out', str(out),
            '--jobs', str(jobs)]
    return out, argv


def test_comparison_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    calls, killed = [], []

    def fake_retrain(cfg):
        calls.append(cfg.work_dir)
        os.write(1, b'runner noise\n')  # what mmengine prints goes to the log
        if len(calls) == 5 and not killed:
            killed.append(True)
            raise _Killed  # killed in the middle of run 5
        name = osp.basename(cfg.work_dir)
        return float(len(name) + cfg.randomness['seed'])

    out, argv = _comparison(tmp_path, monkeypatch, fake_retrain, 'cmp')
    with pytest.raises(SystemExit):
        svr.main(argv)
    # one line naming the failed run and where its output went
    err = capsys.readouterr().err
    assert err.startswith('error: random_00_seed0: the retrain failed '
                          '(_Killed: ); its output: ') and \
        err.count('\n') == 1 and '4 finished runs are kept' in err
    assert (out / 'runs' / 'random_00_seed0.log').read_text() == \
        'runner noise\n'
    saved = json.loads((out / 'results.json').read_text())
    assert len(saved['runs']) == 4  # the interrupted 5th is not recorded
    assert not (out / 'results.md').exists()
    genotypes = {n: g['genotype'] for n, g in saved['genotypes'].items()}
    assert sorted(genotypes) == ['paper', 'random_00', 'random_01',
                                 'random_02', 'searched']

    calls.clear()
    assert svr.main(argv) == 0
    assert len(calls) == 10 - 4  # only the missing runs
    assert 'resuming, 4 runs' in capsys.readouterr().out
    final = json.loads((out / 'results.json').read_text())
    assert len(final['runs']) == 10
    # the same genotypes as before the interruption
    assert {n: g['genotype'] for n, g in final['genotypes'].items()} == \
        genotypes
    assert final['summary']['genotypes']['searched']['n'] == 2
    assert (out / 'results.md').is_file() and (out / 'results.png').is_file()

    calls.clear()
    assert svr.main(argv) == 0 and calls == []  # all done: nothing rerun
    # other settings in the same folder: refused, not mixed
    with pytest.raises(SystemExit):
        svr.main(argv[:3] + ['5'] + argv[4:])
    assert capsys.readouterr().err.startswith('error:')


def test_macs_matching_rejects_out_of_range(tmp_path, monkeypatch):
    sizes = iter([1000, 5000, 1000] + [2000, 1050, 900, 1099] * 10)
    monkeypatch.setattr(svr, 'model_macs', lambda cfg: next(sizes))
    monkeypatch.setattr(svr, 'run_retrain', lambda cfg: 1.0)
    out = tmp_path / 'm'
    svr.main(['--searched', _searched_file(tmp_path), '--num-random', '3',
              '--seeds', '0', '--match-macs', '--out', str(out), '--jobs',
              '1'])
    res = json.loads((out / 'results.json').read_text())
    macs = {n: g['macs'] for n, g in res['genotypes'].items()}
    assert macs['searched'] == 1000 and macs['paper'] == 5000
    assert sorted(macs[f'random_0{i}'] for i in range(3)) == [900, 1000,
                                                              1050]
    assert res['sampling_tries'] == 4


def test_parallel_runs_record_each_finished_run_and_resume(
        tmp_path, monkeypatch):
    """--jobs 2: runs finish out of order; each is recorded when it ends, a
    failure stops the comparison, and a rerun does only the rest."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    lock, calls, fail = threading.Lock(), [], ['random_01_seed0']

    def fake_retrain(cfg):
        name = osp.basename(cfg.work_dir)
        with lock:
            calls.append(name)
        if name in fail:
            fail.clear()
            raise _Killed
        return float(len(name))

    # threads stand in for the worker processes (monkeypatching reaches
    # them); the scheduling and recording code is the real one
    monkeypatch.setattr(svr, '_pool', lambda jobs: ThreadPoolExecutor(jobs))
    # (file descriptors are per process: threads must not redirect them)
    monkeypatch.setattr(svr, '_output_to',
                        lambda path: contextlib.nullcontext())
    out, argv = _comparison(tmp_path, monkeypatch, fake_retrain, 'par',
                            jobs=2)
    with pytest.raises(SystemExit):
        svr.main(argv)
    saved = json.loads((out / 'results.json').read_text())
    assert 'random_01@0' not in saved['runs']
    assert all(r['mIoU'] == len(k.replace('@', '_seed'))
               for k, r in saved['runs'].items())
    first = set(saved['runs'])
    calls.clear()
    assert svr.main(argv) == 0
    final = json.loads((out / 'results.json').read_text())
    assert len(final['runs']) == 10
    assert not first & {c.replace('_seed', '@') for c in calls}
    assert 'random_01_seed0' in calls


def test_extra_genotypes_join_a_finished_comparison(tmp_path, monkeypatch):
    calls = []

    def fake_retrain(cfg):
        calls.append(osp.basename(cfg.work_dir))
        return 1.0 + cfg.randomness['seed']

    out, argv = _comparison(tmp_path, monkeypatch, fake_retrain, 'ext',
                            num_random=2)
    assert svr.main(argv) == 0
    calls.clear()
    g = sampling.sample_genotype(np.random.default_rng(123),
                                 SearchSpace(num_layers=4, num_blocks=5))
    g.save(tmp_path / 'budget.json')
    assert svr.main(argv + ['--extra',
                            f'budget_0.5x={tmp_path / "budget.json"}']) == 0
    assert sorted(calls) == ['budget_0.5x_seed0', 'budget_0.5x_seed1']
    res = json.loads((out / 'results.json').read_text())
    rec = res['genotypes']['budget_0.5x']
    assert rec['kind'] == 'searched' and rec['macs'] == 1000
    assert Genotype.from_dict(rec['genotype']) == g
    s = res['summary']['genotypes']['budget_0.5x']
    assert s['mean'] == 1.5 and s['rank'] >= 1
    assert 'budget_0.5x' in (out / 'results.md').read_text()


@pytest.mark.parametrize('bad', [['--extra', 'paper=x.json'],
                                 ['--extra', 'no-equals-sign'],
                                 ['--extra', 'ok=missing.json'],
                                 ['--jobs', '0'], ['--jobs', 'many']])
def test_bad_arguments_are_one_line(tmp_path, capsys, bad):
    with pytest.raises(SystemExit):
        svr.main(['--searched', _searched_file(tmp_path)] + bad)
    err = capsys.readouterr().err
    assert err.startswith('error:') and err.count('\n') == 1
    with pytest.raises(SystemExit):
        svr.main(['--searched', str(tmp_path / 'missing')])
    err = capsys.readouterr().err
    assert err.startswith('error:') and err.count('\n') == 1


@pytest.mark.slow
def test_one_real_retrain_through_the_runner(tmp_path, tiny_cityscapes):
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    g = sampling.sample_genotype(np.random.default_rng(4),
                                 SearchSpace(num_layers=4, num_blocks=5))
    gfile = tmp_path / 'g.json'
    g.save(gfile)
    config = osp.join(REPO, svr.DEFAULT_CONFIG)
    opts = {'train_cfg.max_iters': 4, 'train_cfg.val_interval': 4,
            'param_scheduler.0.end': 4,
            'model.backbone.filter_multiplier': 2,
            'train_dataloader.dataset.data_root': tiny_cityscapes,
            'val_dataloader.dataset.data_root': tiny_cityscapes}
    cfg = svr.retrain_cfg(config, str(gfile), g, 0, str(tmp_path / 'wd'),
                          opts)
    assert svr.model_macs(cfg) > 0
    miou = svr.run_retrain(cfg)
    assert 0.0 <= miou <= 100.0


@pytest.mark.slow
def test_parallel_comparison_in_worker_processes(tmp_path, tiny_cityscapes,
                                                 capsys):
    """--jobs 2 for real: spawned workers rebuild the config, retrain
    through the Runner and send back the scores; the console keeps one line
    per run and each run's output is in its log."""
    argv = ['--searched', _searched_file(tmp_path), '--paper', '',
            '--num-random', '1', '--seeds', '0', '1', '--jobs', '2',
            '--out', str(tmp_path / 'par'), '--cfg-options',
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'param_scheduler.0.end=2', 'model.backbone.filter_multiplier=2',
            f'train_dataloader.dataset.data_root={tiny_cityscapes}',
            f'val_dataloader.dataset.data_root={tiny_cityscapes}']
    assert svr.main(argv) == 0
    res = json.loads((tmp_path / 'par' / 'results.json').read_text())
    assert sorted(res['runs']) == ['random_00@0', 'random_00@1',
                                   'searched@0', 'searched@1']
    assert all(0.0 <= r['mIoU'] <= 100.0 for r in res['runs'].values())
    out = capsys.readouterr().out
    assert '4 runs to go, 2 at a time (' in out
    assert out.count('search_vs_random: searched@') == 2
    log = (tmp_path / 'par' / 'runs' / 'searched_seed0.log').read_text()
    assert 'mmengine' in log  # the Runner's output went to the run's log


def test_the_untrained_prior_is_a_row_of_its_own(tmp_path):
    space = SearchSpace(num_layers=4, num_blocks=5)
    import torch
    from mmseg_autodeeplab.search_space.decode import normalize_betas

    def entry(it, seed):
        gen = torch.Generator().manual_seed(seed)
        alpha = torch.softmax(torch.randn(20, 8, generator=gen), -1)
        beta = normalize_betas(torch.randn(4, 4, 3, generator=gen))
        g = sampling.sample_genotype(np.random.default_rng(seed), space)
        return dict(iter=it, alpha=alpha.tolist(), beta=beta.tolist(),
                    genotype=g.to_dict())

    hist = [entry(0, 1), entry(96, 2)]
    (tmp_path / 'search_history.json').write_text(json.dumps(hist))
    out = svr._searched(str(tmp_path), ['none'])
    assert sorted(out) == ['prior', 'searched']
    assert out['prior'] == svr.decode_history(hist[0])
    assert out['searched'] == svr.decode_history(hist[1])
    hist[0]['iter'] = 16  # no validation before training: no prior row
    (tmp_path / 'search_history.json').write_text(json.dumps(hist))
    assert sorted(svr._searched(str(tmp_path), ['none'])) == ['searched']
