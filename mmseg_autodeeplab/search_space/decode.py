"""Decoding α and β into a genotype: pure functions on tensors.

α: ``(E, P)``, ``E = 2 + 3 + ... + (B + 1)`` (20 for B = 5); edges ordered
block by block, within block ``i`` (0-based) by its inputs
``[H(l-2), H(l-1), H1, ..., Hi]``; columns follow the primitives.

β: ``(L, levels, 3)``; ``beta[l, s, d]`` weights the move from level ``s``
at layer ``l - 1`` (layer -1 is the stem, at level 0) to level ``s + d - 1``
at layer ``l`` (``d``: 0 finer, 1 same, 2 coarser).

Boundary bias: β is normalised per node over its OUTGOING moves, 2-way at
the finest and coarsest level and 3-way elsewhere, so under uniform β a step
leaving a boundary node scores ``log 1/2`` and any other ``log 1/3``: the
paper's plain Viterbi (``path_prior='none'``) prefers paths that hug ``/4``.
``path_prior='uniform'`` scores each move against its node's uniform prior,
``log(n_out * p)`` (:func:`debias_path_probs`).
"""
import math

import torch

from .genotype import CellGenotype, Genotype, SearchSpace
from .primitives import PRIMITIVES, ZERO_OP

PATH_PRIORS = ('none', 'uniform')


def num_edges(num_blocks):
    """Number of α rows for ``num_blocks`` blocks (20 for 5, 14 for 4)."""
    return sum(i + 2 for i in range(num_blocks))


def max_level(layer, num_levels=4):
    """Coarsest level reachable at ``layer`` (0-based; -1 is the stem)."""
    return min(layer + 1, num_levels - 1)


def level_sizes(height, width, num_levels=4):
    """``(h, w)`` of every level given level 0's (each halves, rounding up)."""
    # repeated (h + 1) // 2 on non-negative sizes: the dynamic ONNX export
    # got the one-expression ceil -(-h // 2**j) wrong
    sizes = [(height, width)]
    for _ in range(num_levels - 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def valid_moves(num_levels=4):
    """Boolean mask ``(num_levels, 3)``: which moves exist from each level."""
    mask = torch.ones(num_levels, 3, dtype=torch.bool)
    mask[0, 0] = False  # nothing finer than /4
    mask[num_levels - 1, 2] = False  # nothing coarser than the last level
    return mask


def normalize_betas(betas):
    """Softmax of raw β ``(L, levels, 3)`` over each node's valid outgoing
    moves (2-way at the boundary levels); impossible moves get exactly 0.
    No extra scaling (Eq. 7 of the paper)."""
    mask = valid_moves(betas.shape[1]).to(betas.device)
    return torch.softmax(betas.masked_fill(~mask, float('-inf')), dim=-1)


def debias_path_probs(probs):
    """Normalised β times each node's number of moves: decoding this
    maximises the path's log-ratio to uniform β, which scores every move 0,
    so no path is favoured by the node sizes."""
    probs = torch.as_tensor(probs)
    n_out = valid_moves(probs.shape[1]).sum(-1).to(probs)
    return probs * n_out[None, :, None]


def _with_prior(probs, path_prior):
    if path_prior not in PATH_PRIORS:
        raise ValueError(f'path_prior: expected one of {PATH_PRIORS}, got '
                         f'{path_prior!r}')
    return debias_path_probs(probs) if path_prior == 'uniform' else probs


def _as_tensor(x, name, ndim):
    x = torch.as_tensor(x).detach().to('cpu', torch.float64)
    if x.dim() != ndim:
        raise ValueError(f'{name}: expected a {ndim}-D tensor, got shape '
                         f'{tuple(x.shape)}')
    return x


def decode_cell(alphas, primitives=PRIMITIVES):
    """Greedy cell decode of raw α ``(E, P)`` (columns named by
    ``primitives``) into a :class:`CellGenotype`.

    Each block keeps the two incoming edges whose strongest NON-zero
    operator weight (softmax over ALL operators) is largest, each with that
    operator. Ties go to the lower index (edge and operator); the zero
    operator is never chosen.
    """
    alphas = _as_tensor(alphas, 'alphas', 2)
    primitives = tuple(primitives)
    if alphas.shape[1] != len(primitives):
        raise ValueError(f'alphas: {alphas.shape[1]} columns but '
                         f'{len(primitives)} primitives')
    num_blocks = 0
    while num_edges(num_blocks) < alphas.shape[0]:
        num_blocks += 1
    if num_edges(num_blocks) != alphas.shape[0]:
        raise ValueError(f'alphas: {alphas.shape[0]} rows is not 2+3+...+'
                         '(B+1) for any number of blocks B')
    nonzero = [k for k, p in enumerate(primitives) if p != ZERO_OP]
    weights = torch.softmax(alphas, dim=-1)[:, nonzero]
    blocks = []
    for b in range(num_blocks):
        w = weights[num_edges(b):num_edges(b + 1)]
        best_w, best_op = w.max(dim=1)  # first max on ties
        # stable sort: equal strengths keep the lower input index first
        order = sorted(range(b + 2), key=lambda i: -best_w[i].item())[:2]
        blocks.append(tuple((i, primitives[nonzero[best_op[i].item()]])
                            for i in sorted(order)))
    return CellGenotype(tuple(blocks))


def decode_path(betas, end_level=None):
    """Viterbi decode of NORMALISED β ``(L, levels, 3)`` into a level per
    layer (list of L ints).

    The path from the stem (layer -1, level 0) with the maximum product of
    transition probabilities, by dynamic programming in
    ``O(L * levels * 3)``; impossible moves are ignored. Ties: the move from
    the lower source level, then the lowest final level. ``end_level``
    forces the last layer's level.
    """
    betas = _as_tensor(betas, 'betas', 3)
    num_layers, num_levels, moves = betas.shape
    if moves != 3:
        raise ValueError(f'betas: expected shape (L, levels, 3), got '
                         f'{tuple(betas.shape)}')
    neg_inf = -math.inf
    # score[j]: best log-probability of a path reaching level j
    score = [0.0] + [neg_inf] * (num_levels - 1)
    back = []
    for layer in range(num_layers):
        new, ptr = [neg_inf] * num_levels, [-1] * num_levels
        for dst in range(max_level(layer, num_levels) + 1):
            for src in (dst - 1, dst, dst + 1):
                if not 0 <= src < num_levels or score[src] == neg_inf:
                    continue
                p = betas[layer, src, dst - src + 1].item()
                cand = score[src] + (math.log(p) if p > 0 else neg_inf)
                if cand > new[dst]:
                    new[dst], ptr[dst] = cand, src
        score = new
        back.append(ptr)
    if end_level is None:
        last = max(range(num_levels), key=lambda j: (score[j], -j))
    elif not 0 <= end_level <= max_level(num_layers - 1, num_levels):
        raise ValueError(f'end_level: {end_level} is not reachable')
    else:
        last = end_level
    if score[last] == neg_inf:
        raise ValueError('betas: no path has non-zero probability')
    path = [last]
    for layer in range(num_layers - 1, 0, -1):
        path.append(back[layer][path[-1]])
    return path[::-1]


def decode_genotype(alphas, betas, search_space=None, end_level=None,
                    normalized=False, path_prior='none'):
    """Decode raw α ``(E, P)`` and β ``(L, levels, 3)`` (probabilities if
    ``normalized``) into a :class:`Genotype`; ``search_space`` defaults from
    the shapes, ``path_prior`` is ``'none'`` (the paper's Viterbi) or
    ``'uniform'`` (see the module docstring)."""
    betas = torch.as_tensor(betas).detach().float().cpu()
    probs = _with_prior(betas if normalized else normalize_betas(betas),
                        path_prior)
    cell = decode_cell(alphas, PRIMITIVES if search_space is None else
                       search_space.primitives)
    if search_space is None:
        search_space = SearchSpace(num_layers=betas.shape[0],
                                   num_blocks=len(cell.blocks))
    return Genotype(cell=cell, path=tuple(decode_path(probs, end_level)),
                    search_space=search_space)


def _entropy(probs):
    """Mean entropy (nats) of the rows of ``probs`` (0 log 0 = 0)."""
    return float(torch.special.entr(probs).sum(-1).mean())


def arch_entropies(alpha, beta):
    """Mean entropy (nats) of α's rows and of the built nodes' β rows.

    Args:
        alpha (Tensor): softmaxed α, ``(E, P)``.
        beta (Tensor): normalised β, ``(L, levels, 3)``.

    Returns:
        tuple[float, float]: α entropy, β entropy (NaN without built rows).
    """
    # only the nodes the supernet builds: β[l] leaves layer l-1 (-1 is the
    # stem), which reaches levels 0..max_level(l - 1)
    layers, levels = beta.shape[:2]
    built = torch.tensor([[j <= max_level(i - 1, levels)
                           for j in range(levels)] for i in range(layers)])
    rows = beta[(beta.sum(-1) > 0) & built]
    return _entropy(alpha), _entropy(rows) if len(rows) else math.nan


def genotype_weights(genotype, num_levels=4, dtype=torch.float32):
    """The α/β weights that make the supernet compute ``genotype``: the
    inverse of :func:`decode_genotype` (used to score a genotype with a
    trained supernet's weights).

    Returns:
        tuple[Tensor, Tensor]: operator weights ``(E, P)`` (one-hot: the
        genotype's operator on its kept edges, all zeros on every other
        edge, i.e. no contribution) and transition weights
        ``(L, levels, 3)`` (1 on the path's moves, 0 elsewhere, so off-path
        nodes hold zeros).
    """
    space = genotype.search_space
    primitives = tuple(space.primitives)
    alpha = torch.zeros(num_edges(space.num_blocks), len(primitives),
                        dtype=dtype)
    for b, block in enumerate(genotype.cell.blocks):
        for i, op in block:
            alpha[num_edges(b) + i, primitives.index(op)] = 1.0
    beta = torch.zeros(space.num_layers, num_levels, 3, dtype=dtype)
    prev = 0  # the stem is at level 0
    for layer, level in enumerate(genotype.path):
        beta[layer, prev, level - prev + 1] = 1.0
        prev = level
    return alpha, beta
