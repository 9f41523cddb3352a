"""tools/search_summary.py: how far a search moved α/β, the agreement of
genotypes, several searches at once."""
import json
import math

import pytest

from mmseg_autodeeplab.search_space import (CellGenotype, Genotype,
                                            SearchSpace)


#: two genotypes written to agree on 3 of 4 cell inputs, 2 of 4 inputs
#: with their op and 3 of 4 path levels
SPACE2 = SearchSpace(num_layers=4, num_blocks=2)
A = Genotype(cell=CellGenotype((
    ((0, 'skip_connect'), (1, 'sep_conv_3x3')),
    ((1, 'max_pool_3x3'), (2, 'sep_conv_5x5')))), path=(0, 1, 2, 2),
    search_space=SPACE2)
B = Genotype(cell=CellGenotype((
    ((0, 'skip_connect'), (1, 'sep_conv_5x5')),  # inputs 2/2, ops 1/2
    # inputs 1/2 (1), ops 1/2: (1, max pool), first in A, second here
    ((0, 'skip_connect'), (1, 'max_pool_3x3')))), path=(0, 1, 1, 2),
    search_space=SPACE2)  # path 3/4
AGREE = dict(edges=0.75, ops=0.5, path=0.75)


def test_agreement(tool):
    agreement = tool('search_summary').genotype_agreement
    assert agreement(A, B) == AGREE == agreement(B, A)
    assert agreement(A, A) == dict(edges=1.0, ops=1.0, path=1.0)


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
    history = [dict(entry, genotype=B.to_dict(), epoch=0, iter=0),
               dict(entry, genotype=A.to_dict(), epoch=2, iter=32)]
    assert summarize(history)['prior_agreement'] == AGREE


def test_agreement_of_several_searches(tmp_path, capsys, tool):
    search_summary = tool('search_summary')
    import torch

    from mmseg_autodeeplab.search_space import normalize_betas
    genotypes = [A, B]
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
    assert out[3] == (f'agreement {dirs[0]} vs {dirs[1]}: cell inputs '
                      '75%, inputs with their op 50%, path levels 75%')
    assert out[4].endswith('vs ' + dirs[2] + ': cell inputs 100%, inputs '
                           'with their op 100%, path levels 100%')
    # pairs: A-B, A-A, B-A: ops (0.5 + 1 + 0.5) / 3
    assert out[6] == ('mean agreement over 3 pairs: cell inputs 83%, '
                      'inputs with their op 67%, path levels 83%')
    with pytest.raises(SystemExit):
        search_summary.main([dirs[0], str(tmp_path / 'nope')])
