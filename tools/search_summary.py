"""How far a search moved α and β, from its ``search_history.json``.

``python tools/search_summary.py WORK_DIR [...]`` prints, for
the last validation: the mean α entropy and the mean β entropy over the
nodes the supernet builds, as fractions of their uniform values (1.0 =
nothing learned), the validations since the decoded genotype last changed,
and the path of the paper's Viterbi decode and of the boundary-unbiased
one, and how much the decoded genotype still agrees with the decode of the
untrained α/β (the search's prior; when the history starts with the
validation before training). ``make demo`` ends with it. Given several
work_dirs (e.g. search seeds), it also prints how much their final
genotypes agree.
"""
import json
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def entropy_ratios(entry):
    """``(alpha_ratio, beta_ratio)`` of one history entry: the hook's
    :func:`~mmseg_autodeeplab.search_space.decode.arch_entropies` of the
    entry over the same of uniform α/β."""
    import torch

    from mmseg_autodeeplab.search_space.decode import (arch_entropies,
                                                       normalize_betas)
    alpha = torch.tensor(entry['alpha'], dtype=torch.float64)
    beta = torch.tensor(entry['beta'], dtype=torch.float64)
    a, b = arch_entropies(alpha, beta)
    ua, ub = arch_entropies(torch.full_like(alpha, 1 / alpha.shape[1]),
                            normalize_betas(torch.zeros_like(beta)))
    return a / ua, b / ub


def genotype_agreement(a, b):
    """Share of cell branches (input, op) and of path levels two genotypes
    agree on: ``dict(edges=, ops=, path=)`` in [0, 1]."""
    edges = ops = total = 0
    for x, y in zip(a.cell.blocks, b.cell.blocks):
        total += len(x)
        edges += len({i for i, _ in x} & {i for i, _ in y})
        ops += len(set(x) & set(y))
    same = sum(p == q for p, q in zip(a.path, b.path))
    return dict(edges=edges / total, ops=ops / total,
                path=same / max(len(a.path), len(b.path)))


def summarize(history):
    """Plain-data summary of a search history (list of entries)."""
    import torch

    from mmseg_autodeeplab.search_space.decode import (debias_path_probs,
                                                       decode_path)
    last = history[-1]
    alpha_ratio, beta_ratio = entropy_ratios(last)
    stable = 1
    while stable < len(history) and \
            history[-1 - stable]['genotype'] == last['genotype']:
        stable += 1
    beta = torch.tensor(last['beta'], dtype=torch.float64)
    prior = None
    if len(history) > 1 and history[0].get('iter') == 0:
        from mmseg_autodeeplab.search_space import Genotype
        prior = genotype_agreement(Genotype.from_dict(last['genotype']),
                                   Genotype.from_dict(
                                       history[0]['genotype']))
    return dict(
        prior_agreement=prior,
        epoch=last['epoch'], mIoU=last.get('mIoU'),
        alpha_entropy_ratio=alpha_ratio, beta_entropy_ratio=beta_ratio,
        same_genotype_validations=stable, validations=len(history),
        path=decode_path(beta),
        path_unbiased=decode_path(debias_path_probs(beta)))


def _agreement_line(a):
    return (f"cell inputs {a['edges']:.0%}, inputs with their op "
            f"{a['ops']:.0%}, path levels {a['path']:.0%}")


def main(argv=None):
    """``search_summary WORK_DIR [WORK_DIR ...]``."""
    from mmseg_autodeeplab.analysis import OneLineParser
    from mmseg_autodeeplab.search_space import Genotype, GenotypeError
    from mmseg_autodeeplab.utils import exit_with_error
    p = OneLineParser(prog='search_summary',
                      description='one line per search work_dir')
    p.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    argv = p.parse_args(argv).work_dirs
    genotypes = []
    for work_dir in argv:
        path = osp.join(work_dir, 'search_history.json')
        try:
            with open(path, encoding='utf-8') as f:
                history = json.load(f)
            s = summarize(history)
            genotypes.append(Genotype.from_dict(history[-1]['genotype'],
                                                source=path))
        except (OSError, ValueError, KeyError, IndexError, TypeError,
                GenotypeError) as e:
            exit_with_error(f'{path}: {e}')
        print((f'{work_dir}: ' if len(argv) > 1 else '') +
              f"search summary (epoch {s['epoch']}): alpha entropy "
              f"{s['alpha_entropy_ratio']:.3f} of uniform, beta entropy "
              f"{s['beta_entropy_ratio']:.3f} of uniform (per built node); "
              f"genotype unchanged over the last "
              f"{s['same_genotype_validations']} of {s['validations']} "
              f"validations; path (levels) {s['path']}, unbiased decode "
              f"{s['path_unbiased']}" + (
                  '' if s['prior_agreement'] is None else
                  '; vs the untrained-α/β decode: ' +
                  _agreement_line(s['prior_agreement'])))
    pairs = [(i, j, genotype_agreement(genotypes[i], genotypes[j]))
             for i in range(len(genotypes))
             for j in range(i + 1, len(genotypes))]
    for i, j, a in pairs:
        print(f'agreement {argv[i]} vs {argv[j]}: {_agreement_line(a)}')
    if pairs:
        print(f'mean agreement over {len(pairs)} pairs: ' + _agreement_line(
            {k: np.mean([a[k] for _, _, a in pairs]) for k in pairs[0][2]}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
