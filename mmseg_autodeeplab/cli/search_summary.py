"""How far a search moved α and β, from its ``search_history.json``.

``python -m mmseg_autodeeplab.cli.search_summary WORK_DIR [...]`` prints, for
the last validation: the mean per-row α entropy and the mean per-node β
entropy as fractions of their uniform values (1.0 = nothing learned), the
validations since the decoded genotype last changed, and the path each
decode gives (the paper's Viterbi on β and the boundary-unbiased one, see
:mod:`mmseg_autodeeplab.search_space.decode`). ``make demo`` ends with it.
Given several work_dirs (e.g. search seeds) it also prints how much their
final genotypes agree (cell inputs, inputs with their operator, path).

β nodes: only nodes the supernet builds count (layer ``l`` reads levels
``0..min(l, 3)`` of layer ``l - 1``); the others never get a gradient and
stay uniform. The per-node uniform entropy is ``ln 2`` at ``/4`` and
``/32`` and ``ln 3`` elsewhere.
"""
import json
import os.path as osp
import sys

import numpy as np


def entropy_ratios(entry):
    """``(alpha_ratio, beta_ratio)`` of one history entry: the hook's own
    :func:`~mmseg_autodeeplab.engine.genotype_hook.arch_entropies` (β over
    the built nodes) of the entry, over the same of uniform α/β."""
    import torch

    from ..engine.genotype_hook import arch_entropies
    from ..search_space.decode import normalize_betas
    alpha = torch.tensor(entry['alpha'], dtype=torch.float64)
    beta = torch.tensor(entry['beta'], dtype=torch.float64)
    a, b = arch_entropies(alpha, beta)
    ua, ub = arch_entropies(torch.full_like(alpha, 1 / alpha.shape[1]),
                            normalize_betas(torch.zeros_like(beta)))
    return a / ua, b / ub


def summarize(history):
    """Plain-data summary of a search history (list of entries)."""
    import torch

    from ..search_space.decode import debias_path_probs, decode_path
    last = history[-1]
    alpha_ratio, beta_ratio = entropy_ratios(last)
    stable = 1
    for prev in reversed(history[:-1]):
        if prev['genotype'] != last['genotype']:
            break
        stable += 1
    beta = torch.tensor(last['beta'], dtype=torch.float64)
    return dict(
        epoch=last['epoch'], mIoU=last.get('mIoU'),
        alpha_entropy_ratio=alpha_ratio, beta_entropy_ratio=beta_ratio,
        same_genotype_validations=stable, validations=len(history),
        path=decode_path(beta),
        path_unbiased=decode_path(debias_path_probs(beta)))


def agreement(genotypes):
    """Pairwise agreement of searched genotypes (e.g. several search seeds):
    ``[(i, j, dict(edges=, ops=, path=)), ...]`` as fractions in [0, 1]
    (:func:`~mmseg_autodeeplab.search_space.sampling.genotype_agreement`)."""
    from ..search_space.sampling import genotype_agreement
    return [(i, j, genotype_agreement(genotypes[i], genotypes[j]))
            for i in range(len(genotypes))
            for j in range(i + 1, len(genotypes))]


def _summary_line(s):
    return (f"search summary (epoch {s['epoch']}): alpha entropy "
            f"{s['alpha_entropy_ratio']:.3f} of uniform, beta entropy "
            f"{s['beta_entropy_ratio']:.3f} of uniform (per built node); "
            f"genotype unchanged over the last "
            f"{s['same_genotype_validations']} of {s['validations']} "
            f"validations; path (levels) {s['path']}, unbiased decode "
            f"{s['path_unbiased']}")


def main(argv=None):
    """``search_summary WORK_DIR [WORK_DIR ...]``: one summary line per
    search; with several (e.g. search seeds), how much their final
    genotypes agree."""
    from ..search_space import Genotype, GenotypeError
    from ..utils import exit_with_error
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        exit_with_error('usage: python -m mmseg_autodeeplab.cli.'
                        'search_summary WORK_DIR [WORK_DIR ...]')
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
        print((f'{work_dir}: ' if len(argv) > 1 else '') + _summary_line(s))
    if len(genotypes) > 1:
        pairs = agreement(genotypes)
        for i, j, a in pairs:
            print(f"agreement {argv[i]} vs {argv[j]}: cell inputs "
                  f"{a['edges']:.0%}, inputs with their op {a['ops']:.0%}, "
                  f"path levels {a['path']:.0%}")
        mean = {k: float(np.mean([a[k] for _, _, a in pairs]))
                for k in ('edges', 'ops', 'path')}
        print(f"mean agreement over {len(pairs)} pairs: cell inputs "
              f"{mean['edges']:.0%}, inputs with their op {mean['ops']:.0%}, "
              f"path levels {mean['path']:.0%}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
