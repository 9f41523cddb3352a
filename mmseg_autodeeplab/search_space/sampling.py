"""Uniform sampling of a search space.

"Random" (the baseline of ``tools/search_vs_random.py``) means uniform over
the space: every valid cell (per block two DISTINCT inputs, each with a
non-zero operator) and every valid path equally likely.
"""
import numpy as np

from .decode import max_level
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

