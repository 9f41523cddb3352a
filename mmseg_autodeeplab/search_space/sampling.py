"""Uniform sampling of a search space, and draws from α/β.

"Random" (the baseline of ``tools/search_vs_random.py``) means uniform over
the space: every valid cell (per block two DISTINCT inputs, each with a
non-zero operator) and every valid path equally likely.
"""
import numpy as np

from .decode import max_level, normalize_betas, num_edges
from .genotype import CellGenotype, Genotype
from .primitives import ZERO_OP


def count_paths(num_layers, num_levels=4):
    """``counts[l][j]``: number of valid completions of a path that is at
    level ``j`` after layer ``l - 1`` (``l = 0``: the stem, level 0)."""
    counts = [[0] * num_levels for _ in range(num_layers + 1)]
    counts[num_layers] = [1] * num_levels
    for layer in range(num_layers - 1, -1, -1):
        top = max_level(layer, num_levels)
        for j in range(num_levels):
            counts[layer][j] = sum(counts[layer + 1][k]
                                   for k in (j - 1, j, j + 1)
                                   if 0 <= k <= top)
    return counts


def sample_path(rng, num_layers, num_levels=4):
    """A path drawn uniformly from all valid paths (not a random walk,
    which would favour paths through the boundary levels)."""
    counts = count_paths(num_layers, num_levels)
    path, level = [], 0
    for layer in range(num_layers):
        top = max_level(layer, num_levels)
        nexts = [k for k in (level - 1, level, level + 1) if 0 <= k <= top]
        weights = np.array([counts[layer + 1][k] for k in nexts], float)
        level = nexts[rng.choice(len(nexts), p=weights / weights.sum())]
        path.append(int(level))
    return path


def sample_cell(rng, num_blocks, primitives):
    """A cell drawn uniformly: per block an unordered pair of distinct
    inputs and one non-zero operator per input."""
    ops = [p for p in primitives if p != ZERO_OP]
    blocks = []
    for b in range(num_blocks):
        pair = sorted(rng.choice(b + 2, size=2, replace=False).tolist())
        blocks.append(tuple((int(i), ops[rng.integers(len(ops))])
                            for i in pair))
    return tuple(blocks)


def sample_genotype(rng, space):
    """A uniformly drawn :class:`Genotype` of ``space``."""
    return Genotype(cell=CellGenotype(sample_cell(rng, space.num_blocks,
                                                  space.primitives)),
                    path=tuple(sample_path(rng, space.num_layers,
                                           space.num_levels)),
                    search_space=space)


def _gumbel_top(rng, log_w, k):
    """Indices of ``k`` draws without replacement, ``P(i) ∝ exp(log_w[i])``
    (Gumbel top-k)."""
    keys = np.asarray(log_w, float) + rng.gumbel(size=len(log_w))
    return sorted(np.argsort(-keys, kind='stable')[:k].tolist())


def sample_genotype_from(rng, alphas, betas, space, temperature=1.0):
    """A genotype drawn from α/β (GDAS-style sampling of one architecture).

    Per block, two distinct inputs are drawn without replacement with
    probability ∝ ``w ** (1 / temperature)``, ``w`` the edge's strongest
    non-zero operator weight in softmax(α) (the greedy decode's edge
    score), then one non-zero operator per drawn edge ∝ softmax(α /
    temperature) over the non-zero operators; the path is drawn move by move
    from normalised β / temperature. Large temperatures draw near-uniformly;
    small ones give the greedy cell decode and the greedy path.

    Args:
        rng (np.random.Generator): the source of randomness.
        alphas (Tensor | ndarray): raw α ``(E, P)``.
        betas (Tensor | ndarray): raw β ``(L, levels, 3)``.
        space (SearchSpace): the space (primitives name α's columns).
        temperature (float): > 0.

    Returns:
        Genotype
    """
    import torch
    alphas = torch.as_tensor(alphas).detach().double().cpu()
    betas = torch.as_tensor(betas).detach().double().cpu()
    primitives = tuple(space.primitives)
    nonzero = [k for k, p in enumerate(primitives) if p != ZERO_OP]
    logp = torch.log_softmax(alphas, -1)[:, nonzero].numpy()
    blocks = []
    for b in range(space.num_blocks):
        rows = logp[num_edges(b):num_edges(b + 1)]
        block = []
        for i in _gumbel_top(rng, rows.max(-1) / temperature, 2):
            op = _gumbel_top(rng, rows[i] / temperature, 1)[0]
            block.append((int(i), primitives[nonzero[op]]))
        blocks.append(tuple(block))
    probs = normalize_betas(betas / temperature).numpy()
    path, level = [], 0
    for layer in range(space.num_layers):
        p = probs[layer, level]
        move = _gumbel_top(rng, np.log(np.where(p > 0, p, 1e-300)), 1)[0]
        level = level + move - 1
        path.append(int(level))
    return Genotype(cell=CellGenotype(tuple(blocks)), path=tuple(path),
                    search_space=space)


def genotype_log_prob(genotype, alphas, betas, temperature=1.0):
    """Log-probability that :func:`sample_genotype_from` draws ``genotype``
    from raw ``alphas`` ``(E, P)`` / ``betas`` ``(L, levels, 3)``:
    differentiable in both (the score function of REINFORCE).

    Returns:
        Tensor: a scalar.
    """
    import torch
    space = genotype.search_space
    nonzero = [k for k, p in enumerate(space.primitives) if p != ZERO_OP]
    logp = torch.log_softmax(alphas, -1)[:, nonzero]
    total = alphas.new_zeros(())
    for b, block in enumerate(genotype.cell.blocks):
        rows = logp[num_edges(b):num_edges(b + 1)]
        # the unordered pair under Plackett-Luce (Gumbel top-2):
        # p_i p_j / (1 - p_i) + p_j p_i / (1 - p_j), in log space with
        # log(1 - p_k) the others' log-mass: finite when one edge dominates
        # and p_k rounds to 1 (a low temperature)
        edge = torch.log_softmax(rows.max(-1).values / temperature, -1)
        (i, op_i), (j, op_j) = block
        rest = [torch.logsumexp(edge[torch.arange(len(edge)) != k], 0)
                for k in (i, j)]
        total = total + edge[i] + edge[j] + torch.logaddexp(-rest[0],
                                                            -rest[1])
        for k, op in ((i, op_i), (j, op_j)):
            col = nonzero.index(space.primitives.index(op))
            total = total + torch.log_softmax(rows[k] / temperature, -1)[col]
    probs = normalize_betas(betas / temperature)
    level = 0
    for layer, nxt in enumerate(genotype.path):
        total = total + torch.log(probs[layer, level, nxt - level + 1])
        level = nxt
    return total
