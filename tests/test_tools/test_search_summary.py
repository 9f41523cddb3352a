"""tools/search_summary.py: how far a search moved α/β, the agreement of
genotypes, several searches at once."""
import json
import math

import numpy as np
import pytest

from mmseg_autodeeplab.search_space import SearchSpace, sampling


def test_agreement(tool):
    agreement = tool('search_summary').genotype_agreement
    rng = np.random.default_rng(3)
    space = SearchSpace(num_layers=4, num_blocks=5)
    a, b = (sampling.sample_genotype(rng, space) for _ in range(2))
    assert agreement(a, a) == dict(edges=1.0, ops=1.0, path=1.0)
    got = agreement(a, b)
    assert all(0 <= v <= 1 for v in got.values())
    assert got['ops'] <= got['edges']


def test_entropy_ratios_and_stability(tool):
    entropy_ratios = tool('search_summary').entropy_ratios
    summarize = tool('search_summary').summarize
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
        tool('search_summary').genotype_agreement(last, first)


def test_agreement_of_several_searches(tmp_path, capsys, tool):
    search_summary = tool('search_summary')
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
    a01 = search_summary.genotype_agreement(genotypes[0], genotypes[1])
    assert out[3] == (f"agreement {dirs[0]} vs {dirs[1]}: cell inputs "
                      f"{a01['edges']:.0%}, inputs with their op "
                      f"{a01['ops']:.0%}, path levels {a01['path']:.0%}")
    assert out[4].endswith('vs ' + dirs[2] + ': cell inputs 100%, inputs '
                           'with their op 100%, path levels 100%')
    mean_ops = (2 * a01['ops'] + 1) / 3
    assert f'inputs with their op {mean_ops:.0%}' in out[6]
    with pytest.raises(SystemExit):
        search_summary.main([dirs[0], str(tmp_path / 'nope')])
