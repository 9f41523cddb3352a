"""How far a search moved α and β, from its ``search_history.json``.

``python -m mmseg_autodeeplab.cli.search_summary WORK_DIR [...]`` prints, for
the last validation: the mean α entropy and the mean β entropy over the
nodes the supernet builds, as fractions of their uniform values (1.0 =
nothing learned), the validations since the decoded genotype last changed,
and the path of the paper's Viterbi decode and of the boundary-unbiased
one, and how much the decoded genotype still agrees with the decode of the
untrained α/β (the search's prior; when the history starts with the
validation before training). ``make demo`` ends with it. Given several work_dirs (e.g. search
seeds), it also prints how much their final genotypes agree. ``--ops``
adds, per validation, how many of the decoded cell's operators are
parameter-free (skip, pooling) and how many are ``skip_connect``: the
trajectory of a first-order DARTS collapse.
"""
import json
import os.path as osp
import sys

import numpy as np


def entropy_ratios(entry):
    """``(alpha_ratio, beta_ratio)`` of one history entry: the hook's
    :func:`~mmseg_autodeeplab.engine.genotype_hook.arch_entropies` of the
    entry over the same of uniform α/β."""
    import torch

    from ..engine.genotype_hook import arch_entropies
    from ..search_space.decode import normalize_betas
    alpha = torch.tensor(entry['alpha'], dtype=torch.float64)
    beta = torch.tensor(entry['beta'], dtype=torch.float64)
    a, b = arch_entropies(alpha, beta)
    ua, ub = arch_entropies(torch.full_like(alpha, 1 / alpha.shape[1]),
                            normalize_betas(torch.zeros_like(beta)))
    return a / ua, b / ub


#: operators without weights: the ones a collapsing search drifts to
PARAM_FREE = ('skip_connect', 'max_pool_3x3', 'avg_pool_3x3')


def op_counts(entry):
    """``(param_free, skips, total)`` operators of one history entry's
    decoded cell."""
    ops = [i['op'] for block in entry['genotype']['cell']
           for i in block['inputs']]
    return (sum(op in PARAM_FREE for op in ops),
            ops.count('skip_connect'), len(ops))


def summarize(history):
    """Plain-data summary of a search history (list of entries)."""
    import torch

    from ..search_space.decode import debias_path_probs, decode_path
    last = history[-1]
    alpha_ratio, beta_ratio = entropy_ratios(last)
    stable = 1
    while stable < len(history) and \
            history[-1 - stable]['genotype'] == last['genotype']:
        stable += 1
    beta = torch.tensor(last['beta'], dtype=torch.float64)
    prior = None
    if len(history) > 1 and history[0].get('iter') == 0:
        from ..search_space import Genotype
        from ..search_space.sampling import genotype_agreement
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


def draw_stats(entry, num=2000, seed=0):
    """What α/β of one history entry would draw (temperature 1, ``num``
    draws of :func:`~..search_space.sampling.sample_genotype_from`):
    ``(coarse, param_free)``, the share of paths that reach /16 or coarser
    (level >= 2) before the last layer, and the mean number of
    parameter-free operators per cell."""
    import torch

    from ..search_space import Genotype
    from ..search_space.sampling import sample_genotype_from
    space = Genotype.from_dict(entry['genotype']).search_space
    # stored as probabilities: their logs are logits of the same softmax
    alpha, beta = (torch.tensor(entry[k], dtype=torch.float64)
                   .clamp_min(1e-30).log() for k in ('alpha', 'beta'))
    rng = np.random.default_rng(seed)
    coarse = free = 0
    for _ in range(num):
        g = sample_genotype_from(rng, alpha, beta, space)
        coarse += max(g.path[:-1], default=0) >= 2
        free += sum(op in PARAM_FREE for block in g.cell.blocks
                    for _, op in block)
    return coarse / num, free / num


def _agreement_line(a):
    return (f"cell inputs {a['edges']:.0%}, inputs with their op "
            f"{a['ops']:.0%}, path levels {a['path']:.0%}")


def main(argv=None):
    """``search_summary WORK_DIR [WORK_DIR ...]``."""
    from ..search_space import Genotype, GenotypeError
    from ..search_space.sampling import genotype_agreement
    from ..utils import exit_with_error
    from ..analysis import OneLineParser
    p = OneLineParser(prog='python -m mmseg_autodeeplab.cli.search_summary',
                      description='one line per search work_dir')
    p.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    p.add_argument('--ops', action='store_true', help='also the decoded '
                   "cell's parameter-free / skip_connect counts per "
                   'validation')
    p.add_argument('--draws', type=int, default=0, metavar='N',
                   help='also what the first and the last α/β would draw '
                   '(N draws each): the share of paths through /16 or '
                   'coarser before the last layer and the mean '
                   'parameter-free operators per cell')
    args = p.parse_args(argv)
    argv, show_ops = args.work_dirs, args.ops
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
        if args.draws > 0:
            (c0, f0), (c1, f1) = (draw_stats(e, args.draws)
                                  for e in (history[0], history[-1]))
            print(f'  draws from α/β (first -> last validation): paths '
                  f'through /16 or coarser before the last layer {c0:.3f} '
                  f'-> {c1:.3f}; parameter-free ops per cell {f0:.2f} -> '
                  f'{f1:.2f}')
        if show_ops:
            print('  parameter-free / skip_connect ops of the decoded cell '
                  'per validation: ' + ', '.join(
                      'e{}: {}/{}'.format(e['epoch'], *op_counts(e)[:2])
                      for e in history))
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
