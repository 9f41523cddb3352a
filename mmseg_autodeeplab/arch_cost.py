"""Cost of an architecture: a lookup table and its expectation under α/β.

A table holds the cost of the STATIC network a genotype decodes to
(:class:`~mmseg_autodeeplab.models.backbones.AutoDeepLabNet` + the retrain
config's decode head, image -> logits, at the retrain input size), split
exactly into

* ``stem``: the three stem convs (one number);
* ``cells[l][pp][p][j]``: the fixed part of cell ``l`` at level ``j`` whose
  ``H(l-1)`` is at level ``p`` and ``H(l-2)`` at level ``pp`` (1×1
  projections, bilinear resizes: :func:`fixed_cell_cost`);
* ``edges[l][p][j][e][o]``: operator ``o`` on edge ``e`` of that cell (edges
  ordered as α's rows: :func:`op_cost`); it depends on ``p`` only through
  the stride of the ops on the cell inputs (2 when ``j > p``);
* ``head[a][b]``: the decode head with its low-level feature (Cell_2) at
  level ``a`` and its ASPP input (the last cell) at level ``b``.

For layer 0 the "levels" ``pp = p = 0`` stand for the stem's conv1 (``/2``)
and its output; for layer 1 ``pp = 0`` is the stem output. Entries of
impossible combinations are 0. Shapes (``L`` layers, ``n`` levels, ``E``
edges, ``P`` operators): ``edges (L, n, n, E, P)``, ``cells (L, n, n, n)``,
``head (n, n)``; α is ``(E, P)``, normalised β ``(L, n, 3)``.

Kinds: ``macs``, multiply-adds as mmengine's counter counts them in eval
mode (``tools/analysis/benchmark.py``; the tests pin the table to the
counter on built networks, exactly), and ``latency``, seconds on a device,
each entry timed on the modules that make it up: only about additive (a
network also pays per-call overheads), so it ranks networks rather than
predicting them.
Format version 1 (multiply-adds only) is still read; 2 adds latency tables.
"""
import os

import torch

FORMAT = 'mmseg_autodeeplab.cost_table'
VERSION = 2
#: versions this module reads (1: multiply-adds tables before latency)
READ_VERSIONS = (1, 2)
KINDS = ('macs', 'latency')
PENALTIES = ('hinge', 'log')
#: how a latency table is measured unless told (``threads``: torch's count)
LATENCY_DEFAULTS = dict(device='cpu', repeats=20, warmup=5, threads=None)


def _hw(size):
    return size[0] * size[1]


def op_cost(op, channels, stride, out_hw, bn=2):
    """Multiply-adds of one cell operator producing ``out_hw`` pixels.

    mmengine counts convs as ``out_pixels * C_out * C_in / groups * k*k``
    and an eval-mode BN as ``bn`` per element (2 affine, 1 otherwise);
    pools, ReLU, identity and the zero op count 0.
    """
    c = channels
    if op in ('none', 'max_pool_3x3', 'avg_pool_3x3'):
        return 0
    if op == 'skip_connect':
        return 0 if stride == 1 else (c * c + bn * c) * out_hw
    if op.startswith('sep_conv_'):
        k = int(op[-1])
        return 2 * (c * k * k + c * c + bn * c) * out_hw
    if op.startswith('atrous_conv_'):
        k = int(op[-1])
        return (c * c * k * k + bn * c) * out_hw
    raise ValueError(f'op_cost: no cost formula for operator {op!r}')


def fixed_cell_cost(prev_channels, prev_size, prev_prev_channels,
                    prev_prev_size, channels, out_size, upsample, bn=2):
    """Multiply-adds of a cell besides its operators (``cells``): the 1×1
    projection of ``H(l-1)`` (and of ``H(l-2)`` only when its channels
    differ: TF's), at the size of ``H(l-1)`` after its upsampling to
    ``out_size`` (``upsample``: the cell is finer) and the bilinear resize
    of ``H(l-2)`` to it, each resize 4 per output element."""
    c = channels
    size = out_size if upsample else prev_size
    cost = (prev_channels * c + bn * c) * _hw(size)
    if upsample:
        cost += 4 * prev_channels * _hw(out_size)
    if tuple(prev_prev_size) != tuple(size):
        cost += 4 * prev_prev_channels * _hw(size)
    if prev_prev_channels != c:
        cost += (prev_prev_channels * c + bn * c) * _hw(size)
    return cost


class CostTable:
    """A cost lookup table from its JSON content ``data`` (module
    docstring); ``source`` names it in messages."""

    def __init__(self, data, source='cost table'):
        self.source = source
        if not isinstance(data, dict) or data.get('format') != FORMAT:
            raise ValueError(f'{source}: not a cost table (expected '
                             f'"format": "{FORMAT}")')
        if data.get('version') not in READ_VERSIONS:
            raise ValueError(f'{source}: cost table version '
                             f'{data.get("version")!r}, expected one of '
                             f'{", ".join(map(str, READ_VERSIONS))}')
        self.data = data
        try:
            self.kind = data['kind']
            self.num_layers = int(data['num_layers'])
            self.num_blocks = int(data['num_blocks'])
            self.num_levels = int(data['num_levels'])
            self.primitives = tuple(data['primitives'])
            self.head_cells = tuple(int(i) for i in data['head_cells'])
            self.stem = float(data['stem'])
            self.edges = torch.tensor(data['edges'], dtype=torch.float64)
            self.cells = torch.tensor(data['cells'], dtype=torch.float64)
            self.head = torch.tensor(data['head'], dtype=torch.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f'{source}: malformed cost table ({e})') \
                from None
        L, n = self.num_layers, self.num_levels
        E = sum(b + 2 for b in range(self.num_blocks))
        for name, shape in (('edges', (L, n, n, E, len(self.primitives))),
                            ('cells', (L, n, n, n)), ('head', (n, n))):
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f'{source}: {name} has shape {got}, '
                                 f'expected {shape}')

    @classmethod
    def load(cls, path):
        """Read a table written by ``tools/build_cost_table.py``."""
        import json
        path = os.fspath(path)
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except OSError as e:
            raise ValueError(f'{path}: cannot read cost table '
                             f'({e.strerror})') from None
        except ValueError as e:
            raise ValueError(f'{path}: invalid JSON ({e})') from None
        return cls(data, source=path)

    def check_space(self, num_layers, num_blocks, num_levels, primitives,
                    where='arch_cost.table'):
        """Raise a one-line ValueError if the table is for another space."""
        mine = (self.num_layers, self.num_blocks, self.num_levels,
                self.primitives)
        theirs = (num_layers, num_blocks, num_levels, tuple(primitives))
        if mine != theirs:
            names = ('num_layers', 'num_blocks', 'num_levels', 'primitives')
            diff = ', '.join(f'{k} {a!r} vs {b!r}' for k, a, b in zip(
                names, mine, theirs) if a != b)
            raise ValueError(f'{where}: {self.source} was built for another '
                             f'search space ({diff}: table vs supernet); '
                             'rebuild it with tools/build_cost_table.py')

    def predicted(self, genotype):
        """Cost of the static network of ``genotype`` (a float): exact for
        multiply-adds, the sum of its parts' latencies for latency."""
        space = genotype.search_space
        self.check_space(space.num_layers, space.num_blocks,
                         space.num_levels, space.primitives, 'genotype')
        path = genotype.path
        total = self.stem
        cols = {o: k for k, o in enumerate(self.primitives)}
        for layer, j in enumerate(path):
            p = path[layer - 1] if layer >= 1 else 0
            pp = path[layer - 2] if layer >= 2 else 0
            total += float(self.cells[layer, pp, p, j])
            start = 0
            for b, block in enumerate(genotype.cell.blocks):
                for i, op in block:
                    total += float(self.edges[layer, p, j, start + i,
                                              cols[op]])
                start += b + 2
        a, b = (path[i] for i in self.head_cells)
        return total + float(self.head[a, b])


def transition_matrices(probs):
    """Normalised β ``(L, n, 3)`` -> level transitions ``(L, n, n)``,
    ``T[l, i, k] = P(level k at layer l | level i at layer l - 1)``."""
    L, n, _ = probs.shape
    index = (torch.arange(n, device=probs.device)[:, None]
             + torch.arange(3, device=probs.device)[None])
    rows = probs.new_zeros(L, n, n + 2).scatter(
        2, index.expand(L, n, 3), probs)
    return rows[:, :, 1:n + 1]  # moves off the trellis fall off the edges


def expected_cost(alphas, probs, table):
    """Differentiable expected cost of the architecture.

    Cell (α): each edge costs ``sum_o softmax(α)[e, o] * cost[e, o]`` with
    the zero op at cost 0. The decode keeps the 2 strongest of a block's
    ``n_b`` candidate edges; the expectation does not model that choice and
    counts every edge at weight ``2 / n_b`` (each edge kept with equal
    probability), so a block's expected cost is twice the mean over its
    edges of the expected op cost. With uniform α the edge part is 7/8 (the
    zero op's share) of its mean over uniformly drawn cells (the sampler of
    ``tools/search_vs_random.py``). It is exact only when every edge of a
    block has the same op costs; otherwise an edge the decode drops still
    counts, and a kept edge's op is the argmax, not the mixture.

    Path (β): the path is a Markov chain from the stem (level 0) with the
    normalised β as transition probabilities; the path-dependent costs are
    weighted by the exact marginals of that chain: pairs ``(l-1, l)`` for
    the edges, triples ``(l-2, l-1, l)`` for the fixed cell costs and the
    joint of (Cell_2, last cell) for the head. The Viterbi decode takes the
    most probable path instead; a one-hot β gives that path's cost exactly.

    Args:
        alphas (Tensor): raw α ``(E, P)``.
        probs (Tensor): normalised β ``(L, n, 3)``.
        table (CostTable): the costs.

    Returns:
        Tensor: scalar, float64, differentiable w.r.t. α and β.
    """
    edges, cells, head = (t.to(alphas.device)
                          for t in (table.edges, table.cells, table.head))
    keep = torch.tensor([2. / (b + 2) for b in range(table.num_blocks)
                         for _ in range(b + 2)], dtype=torch.float64,
                        device=alphas.device)  # 2 / n_b, edges of block b
    w = torch.softmax(alphas.to(torch.float64), dim=-1) * keep[:, None]
    cell_edge = torch.einsum('lpjeo,eo->lpj', edges, w)
    trans = transition_matrices(probs.to(torch.float64))
    n = table.num_levels
    delta = torch.zeros(n, dtype=torch.float64, device=w.device)
    delta[0] = 1.
    m_pp, m_p = delta, delta  # levels at layers l-2 and l-1
    t_p = torch.diag(delta)  # transition into layer l-1 (stem conv1 -> stem)
    total = w.new_tensor(table.stem)
    low, last = table.head_cells
    first, second = sorted((low, last))
    joint = None  # (level at `first`, level at the current layer)
    for layer in range(table.num_layers):
        t = trans[layer]
        pair = m_p[:, None] * t
        triple = m_pp[:, None, None] * t_p[:, :, None] * t[None]
        total = total + (pair * cell_edge[layer]).sum() \
            + (triple * cells[layer]).sum()
        m_pp, m_p, t_p = m_p, m_p @ t, t
        if first < layer <= second:
            joint = joint @ t
        elif layer == first:
            joint = torch.diag(m_p)
    if low > last:
        joint = joint.t()
    return total + (joint * head).sum()


def format_cost(value, kind):
    """A cost with its unit: ``'12.35M multiply-adds'``, ``'4.21 ms'``."""
    if kind == 'latency':
        return f'{value * 1e3:.4g} ms'
    if kind == 'macs':
        if abs(value) >= 1e9:
            return f'{value / 1e9:.2f}G multiply-adds'
        return f'{value / 1e6:.2f}M multiply-adds'
    return f'{value:.6g} {kind}'


__all__ = ['CostTable', 'expected_cost', 'transition_matrices',
           'fixed_cell_cost', 'op_cost', 'format_cost']
