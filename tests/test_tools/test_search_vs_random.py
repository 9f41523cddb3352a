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


def _free(cfg):
    """Stand-in for the training-free scores (no model is built)."""
    return dict(params=1, synflow=0.0)


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


def test_agreement():
    rng = np.random.default_rng(3)
    space = SearchSpace(num_layers=4, num_blocks=5)
    a, b = sampling.sample_genotype(rng, space), sampling.sample_genotype(rng, space)
    assert sampling.genotype_agreement(a, a) == dict(edges=1.0, ops=1.0,
                                                     path=1.0)
    got = sampling.genotype_agreement(a, b)
    assert all(0 <= v <= 1 for v in got.values())
    assert got['ops'] <= got['edges']


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
    monkeypatch.setattr(svr, 'free_scores', _free)
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
    monkeypatch.setattr(svr, 'free_scores', _free)
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


def test_search_summary_entropy_ratios_and_stability():
    from mmseg_autodeeplab.cli.search_summary import (entropy_ratios,
                                                       summarize)
    import torch

    from mmseg_autodeeplab.search_space import normalize_betas
    uniform_beta = normalize_betas(torch.zeros(4, 4, 3)).tolist()
    entry = dict(alpha=[[1 / 8] * 8] * 20, beta=uniform_beta)
    assert entropy_ratios(entry) == pytest.approx((1.0, 1.0))
    peaked = torch.full((4, 4, 3), -20.0)
    peaked[..., 1] = 0.0  # always stay: zero entropy on every built node
    alpha = [[0.93] + [0.01] * 7] * 20
    entry = dict(alpha=alpha, beta=normalize_betas(peaked).tolist())
    a, b = entropy_ratios(entry)
    h = -(0.93 * math.log(0.93) + 7 * 0.01 * math.log(0.01))
    assert a == pytest.approx(h / math.log(8)) and b < 1e-6
    g = lambda k: dict(cell=k)  # noqa: E731
    history = [dict(entry, genotype=g(k), epoch=e, mIoU=1.0)
               for e, k in enumerate('abbb')]
    s = summarize(history)
    assert (s['same_genotype_validations'], s['validations']) == (3, 4)
    assert s['path'] == [0, 0, 0, 0]
    assert s['prior_agreement'] is None  # no validation before training
    space = SearchSpace(num_layers=4, num_blocks=5)
    first, last = (sampling.sample_genotype(np.random.default_rng(k), space)
                   for k in (1, 2))
    history = [dict(entry, genotype=first.to_dict(), epoch=0, iter=0),
               dict(entry, genotype=last.to_dict(), epoch=2, iter=32)]
    assert summarize(history)['prior_agreement'] == \
        sampling.genotype_agreement(last, first)


def test_search_summary_draw_stats_on_planted_alpha_beta(tmp_path, capsys):
    """Peaked β that always stays at /4: no draw goes coarse; α that puts
    all weight on skip_connect: every operator is parameter-free."""
    import torch

    from mmseg_autodeeplab.cli import search_summary
    from mmseg_autodeeplab.search_space import normalize_betas
    space = SearchSpace(num_layers=4, num_blocks=5)
    g = sampling.sample_genotype(np.random.default_rng(0), space)
    stay = torch.full((4, 4, 3), -30.0)
    stay[..., 1] = 0.0
    skip = torch.full((20, 8), 1e-9)
    skip[:, PRIMITIVES.index('skip_connect')] = 1.0
    entry = dict(alpha=skip.tolist(), beta=normalize_betas(stay).tolist(),
                 genotype=g.to_dict())
    assert search_summary.draw_stats(entry, 200) == (0.0, 10.0)
    uniform = dict(entry, alpha=[[1 / 8] * 8] * 20,
                   beta=normalize_betas(torch.zeros(4, 4, 3)).tolist())
    coarse, free = search_summary.draw_stats(uniform, 2000)
    # uniform operators: 2 of the 7 non-zero ones are pools, 1 is skip
    assert free == pytest.approx(10 * 3 / 7, abs=0.15)
    assert 0.2 < coarse < 0.4  # a random walk reaches /16 in 3 layers
    (tmp_path / 'search_history.json').write_text(json.dumps(
        [dict(uniform, epoch=0, iter=0, mIoU=1.0),
         dict(entry, epoch=2, iter=32, mIoU=1.0)]))
    assert search_summary.main(['--draws', '50', str(tmp_path)]) == 0
    assert '-> 0.000; parameter-free ops per cell' in capsys.readouterr().out


def test_search_summary_agreement_of_several_searches(tmp_path, capsys):
    from mmseg_autodeeplab.cli import search_summary
    import torch

    from mmseg_autodeeplab.search_space import normalize_betas
    space = SearchSpace(num_layers=4, num_blocks=5)
    rng = np.random.default_rng(11)
    genotypes = [sampling.sample_genotype(rng, space) for _ in range(2)]
    beta = normalize_betas(torch.zeros(4, 4, 3)).tolist()
    dirs = []
    for k, g in enumerate(genotypes + genotypes[:1]):
        d = tmp_path / f'seed{k}'
        d.mkdir()
        entry = dict(alpha=[[1 / 8] * 8] * 20, beta=beta, epoch=30,
                     mIoU=1.0, genotype=g.to_dict())
        (d / 'search_history.json').write_text(json.dumps([entry]))
        dirs.append(str(d))
    assert search_summary.main(dirs) == 0
    out = capsys.readouterr().out.splitlines()
    a01 = sampling.genotype_agreement(genotypes[0], genotypes[1])
    assert out[3] == (f"agreement {dirs[0]} vs {dirs[1]}: cell inputs "
                      f"{a01['edges']:.0%}, inputs with their op "
                      f"{a01['ops']:.0%}, path levels {a01['path']:.0%}")
    assert out[4].endswith('vs ' + dirs[2] + ': cell inputs 100%, inputs '
                           'with their op 100%, path levels 100%')
    mean_ops = (2 * a01['ops'] + 1) / 3
    assert f'inputs with their op {mean_ops:.0%}' in out[6]
    with pytest.raises(SystemExit):
        search_summary.main([dirs[0], str(tmp_path / 'nope')])


def test_several_searches_get_one_comparison_and_verdict_each(
        tmp_path, monkeypatch, capsys):
    """--searched A B: each search has its own comparison (own MACs target)
    in OUT/NAME and one verdict line; a rerun resumes both."""
    space = SearchSpace(num_layers=4, num_blocks=5)
    paths = []
    for name, seed in (('seed_a', 1), ('seed_b', 2)):
        path = tmp_path / f'{name}.json'
        sampling.sample_genotype(np.random.default_rng(seed), space).save(
            path)
        paths.append(str(path))
    calls = []

    def fake_retrain(cfg):
        parts = cfg.work_dir.split(os.sep)
        search, run = parts[-3], parts[-1]
        calls.append((search, run))
        if run.startswith('searched'):  # a beats its random, b does not
            return 60.0 if search == 'seed_a' else 1.0
        return 10.0 + int(run[len('random_'):len('random_00')]) + \
            cfg.randomness['seed']

    monkeypatch.setattr(svr, 'run_retrain', fake_retrain)
    monkeypatch.setattr(svr, 'model_macs', lambda cfg: 1000)
    monkeypatch.setattr(svr, 'free_scores', _free)
    out = tmp_path / 'multi'
    argv = ['--searched', *paths, '--num-random', '3', '--seeds', '0', '1',
            '--paper', '', '--out', str(out), '--jobs', '1']
    assert svr.main(argv) == 0
    assert len(calls) == 2 * (1 + 3) * 2
    verdicts = json.loads((out / 'verdict.json').read_text())
    a, b = verdicts
    assert (a['name'], a['beats'], a['num_random']) == ('seed_a', 3, 3)
    assert a['mean'] == 60.0 and a['p_value'] == pytest.approx(1 / 4)
    assert (b['name'], b['beats']) == ('seed_b', 0)
    assert b['p_value'] == 1.0
    # random means 10.5, 11.5, 12.5
    assert b['random_median'] == pytest.approx(11.5)
    md = (out / 'verdict.md').read_text()
    assert '| seed_a |' in md and '3 of 3' in md and '0 of 3' in md
    assert '1 of 2 searches beat their prior and their best random' in md
    # margins in units of the mean within-genotype std (0 for the searched
    # genotypes, 1/sqrt(2) for each random one: seeds differ by 1)
    std = 3 * 2**-0.5 / 4
    assert a['retrain_std'] == pytest.approx(std)
    assert a['margin_best_random'] == pytest.approx((60 - 12.5) / std)
    assert a['best_random'] == pytest.approx(12.5)
    assert a['prior_mean'] is None and a['margin_prior'] is None
    assert md in capsys.readouterr().out
    for name in ('seed_a', 'seed_b'):
        assert (out / name / 'results.json').is_file()
    calls.clear()
    assert svr.main(argv) == 0 and calls == []  # resumed: nothing rerun


def test_several_searches_need_distinct_names(tmp_path, capsys):
    d1, d2 = tmp_path / 'x' / 'run', tmp_path / 'y' / 'run'
    d1.mkdir(parents=True)
    d2.mkdir(parents=True)
    with pytest.raises(SystemExit):
        svr.main(['--searched', str(d1), str(d2)])
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'distinct' in err and \
        err.count('\n') == 1


def _history_with_cells(tmp_path, cells):
    """A search_history.json whose entries decode to ``cells`` (lists of
    10 op names), uniform α/β otherwise."""
    import torch

    from mmseg_autodeeplab.search_space import normalize_betas
    rng = np.random.default_rng(0)
    base = sampling.sample_genotype(rng, SearchSpace(num_layers=4,
                                                     num_blocks=5)).to_dict()
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
    from mmseg_autodeeplab.cli import search_summary
    cells = [['sep_conv_3x3'] * 10,
             ['skip_connect'] * 3 + ['max_pool_3x3'] * 2 +
             ['sep_conv_5x5'] * 5]
    work_dir = _history_with_cells(tmp_path, cells)
    history = json.loads((work_dir / 'search_history.json').read_text())
    assert search_summary.op_counts(history[0]) == (0, 0, 10)
    assert search_summary.op_counts(history[1]) == (5, 3, 10)
    assert search_summary.main(['--ops', str(work_dir)]) == 0
    out = capsys.readouterr().out
    assert 'per validation: e0: 0/0, e2: 5/3' in out


def test_plot_op_share_writes_a_png_and_refuses_bad_runs(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'plot_op_share', osp.join(REPO, 'tools', 'analysis',
                                  'plot_op_share.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    work_dir = _history_with_cells(tmp_path, [['skip_connect'] * 10] * 3)
    out = tmp_path / 'share.png'
    assert tool.main([str(out), f'a={work_dir}']) == 0
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'x.png'), f'a={tmp_path / "missing"}'])
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'search_history.json' in err
    assert not (tmp_path / 'x.png').exists()


def test_split_half_tau_and_baseline_taus():
    """τ between two retrain seeds' rankings (planted: seed 1 swaps the
    two best of five), and the baselines' τ against the mean mIoU."""
    names = [f'random_{i:02d}' for i in range(5)]
    runs = {}
    for i, n in enumerate(names):
        runs[f'{n}@0'] = dict(mIoU=float(i))
        runs[f'{n}@1'] = dict(mIoU=float({3: 4, 4: 3}.get(i, i)))
    assert svr.split_half_tau(runs, names, [0, 1]) == pytest.approx(0.8)
    assert svr.split_half_tau(runs, names, [0]) is None
    results = dict(runs=runs, genotypes={
        n: dict(kind='random', macs=1000, params=10 * i, synflow=-i)
        for i, n in enumerate(names)})
    spread = svr.summarize(results)['spread']
    assert spread['split_half_tau'] == pytest.approx(0.8)
    # means 0, 1, 2, 3.5, 3.5: params rank them (ties aside) exactly
    assert spread['baseline_tau']['params'] == pytest.approx(
        svr._tau([0, 1, 2, 3, 4], [0, 1, 2, 3.5, 3.5]))
    assert spread['baseline_tau']['synflow'] == pytest.approx(
        -spread['baseline_tau']['params'])
    assert spread['baseline_tau']['macs'] is None  # constant
    md = svr.render_markdown(svr.summarize(results), dict(
        config='c.py', seeds=[0, 1], match_macs=False))
    assert 'split-half, random genotypes): 0.800' in md
    assert 'MACs n/a' in md


def test_free_scores_of_a_real_retrain_model(tmp_path, tiny_retrain_cfg):
    g = sampling.sample_genotype(np.random.default_rng(3),
                                 SearchSpace(num_layers=3, num_blocks=5))
    g.save(tmp_path / 'g.json')
    cfg = svr.retrain_cfg(tiny_retrain_cfg(), str(tmp_path / 'g.json'), g,
                          0, str(tmp_path / 'w'))
    a, b = svr.free_scores(cfg), svr.free_scores(cfg)
    assert a == b  # deterministic
    from mmseg_autodeeplab.analysis import build_segmentor
    model = build_segmentor(cfg)
    head_aux = sum(p.numel() for n, p in model.named_parameters()
                   if n.startswith('auxiliary_head'))
    assert a['params'] == sum(p.numel() for p in model.parameters()) - \
        head_aux
    assert math.isfinite(a['synflow']) and a['synflow'] > 0


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
