"""How α/β moved in a search (docs/search_quality.md), from its history.

``python tools/analysis/search_dynamics.py WORK_DIR [...] [--draws N]``:
per validation of each search, the decoded cell's parameter-free /
``skip_connect`` operators (the trajectory of a first-order DARTS
collapse); with ``--draws``, what the first and the last α/β would draw
(temperature 1): the share of paths through /16 or coarser before the last
layer and the mean parameter-free operators per cell.
"""
import json
import os.path as osp
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmseg_autodeeplab.analysis import OneLineParser  # noqa: E402
from mmseg_autodeeplab.utils import exit_with_error  # noqa: E402

#: operators without weights: the ones a collapsing search drifts to
PARAM_FREE = ('skip_connect', 'max_pool_3x3', 'avg_pool_3x3')


def op_counts(entry):
    """``(param_free, skips, total)`` operators of one history entry's
    decoded cell."""
    ops = [i['op'] for block in entry['genotype']['cell']
           for i in block['inputs']]
    return (sum(op in PARAM_FREE for op in ops),
            ops.count('skip_connect'), len(ops))


def _gumbel_top(rng, log_w, k):
    """Indices of ``k`` draws without replacement, ``P(i) ∝ exp(log_w[i])``
    (Gumbel top-k)."""
    keys = np.asarray(log_w, float) + rng.gumbel(size=len(log_w))
    return sorted(np.argsort(-keys, kind='stable')[:k].tolist())


def draw_genotype(rng, alphas, betas, space):
    """A genotype drawn from α/β at temperature 1 (GDAS-style).

    Per block, two distinct inputs are drawn without replacement with
    probability ∝ the edge's strongest non-zero operator weight in
    softmax(α) (the greedy decode's edge score), then one non-zero operator
    per drawn edge ∝ softmax(α) over the non-zero operators; the path is
    drawn move by move from normalised β.

    Args:
        rng (np.random.Generator): the source of randomness.
        alphas (Tensor): raw α ``(E, P)``.
        betas (Tensor): raw β ``(L, levels, 3)``.
        space (SearchSpace): the space (primitives name α's columns).
    """
    import torch

    from mmseg_autodeeplab.search_space import (ZERO_OP, CellGenotype,
                                                Genotype, normalize_betas,
                                                num_edges)
    primitives = tuple(space.primitives)
    nonzero = [k for k, p in enumerate(primitives) if p != ZERO_OP]
    logp = torch.log_softmax(alphas.double(), -1)[:, nonzero].numpy()
    blocks = []
    for b in range(space.num_blocks):
        rows = logp[num_edges(b):num_edges(b + 1)]
        blocks.append(tuple(
            (int(i), primitives[nonzero[_gumbel_top(rng, rows[i], 1)[0]]])
            for i in _gumbel_top(rng, rows.max(-1), 2)))
    probs = normalize_betas(betas.double()).numpy()
    path, level = [], 0
    for layer in range(space.num_layers):
        log_p = np.log(np.where(probs[layer, level] > 0,
                                probs[layer, level], 1e-300))
        level += _gumbel_top(rng, log_p, 1)[0] - 1
        path.append(int(level))
    return Genotype(cell=CellGenotype(tuple(blocks)), path=tuple(path),
                    search_space=space)


def draw_stats(entry, num=2000, seed=0):
    """What one history entry's α/β draw at temperature 1 (``num`` draws):
    ``(coarse, param_free)``, the share of paths reaching /16 or coarser
    before the last layer and the mean parameter-free operators per cell."""
    import torch

    from mmseg_autodeeplab.search_space import Genotype
    space = Genotype.from_dict(entry['genotype']).search_space
    # stored as probabilities: their logs are logits of the same softmax
    alpha, beta = (torch.tensor(entry[k], dtype=torch.float64)
                   .clamp_min(1e-30).log() for k in ('alpha', 'beta'))
    rng = np.random.default_rng(seed)
    coarse = free = 0
    for _ in range(num):
        g = draw_genotype(rng, alpha, beta, space)
        coarse += max(g.path[:-1], default=0) >= 2
        free += sum(op in PARAM_FREE for block in g.cell.blocks
                    for _, op in block)
    return coarse / num, free / num


def dynamics(work_dir, draws=0):
    """The lines ``dynamics`` prints for one search work_dir."""
    path = osp.join(work_dir, 'search_history.json')
    try:
        with open(path, encoding='utf-8') as f:
            history = json.load(f)
        lines = [f'{work_dir}: parameter-free / skip_connect ops of the '
                 'decoded cell per validation: ' + ', '.join(
                     'e{}: {}/{}'.format(e['epoch'], *op_counts(e)[:2])
                     for e in history)]
        if draws > 0:
            (c0, f0), (c1, f1) = (draw_stats(e, draws)
                                  for e in (history[0], history[-1]))
            lines.append(
                f'  draws from α/β (first -> last validation): paths through '
                f'/16 or coarser before the last layer {c0:.3f} -> {c1:.3f};'
                f' parameter-free ops per cell {f0:.2f} -> {f1:.2f}')
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        exit_with_error(f'{path}: {type(e).__name__}: {e}')
    return lines


def main(argv=None):
    p = OneLineParser(prog='search_dynamics', description=__doc__.split(
        '\n\n')[0])
    p.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    p.add_argument('--draws', type=int, default=0, metavar='N')
    args = p.parse_args(argv)
    for work_dir in args.work_dirs:
        print('\n'.join(dynamics(work_dir, args.draws)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
