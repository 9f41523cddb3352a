"""Cost of an architecture: a lookup table, its expectation under α/β, a
budget penalty for the α/β step.

The cost of a genotype is the multiply-adds of the STATIC network it decodes
to (:class:`~mmseg_autodeeplab.models.backbones.AutoDeepLabNet` + the
retrain config's decode head, image -> logits, at the retrain input size),
as mmengine's counter counts them in eval mode (``analysis.count_macs``,
what ``tools/benchmark.py`` reports). That cost splits exactly into

* ``stem``: the three stem convs (one number);
* ``cells[l][pp][p][j]``: the fixed part of cell ``l`` at level ``j`` whose
  ``H(l-1)`` is at level ``p`` and ``H(l-2)`` at level ``pp`` (the 1×1
  preprocessing convs, bilinear resizes of ``H(l-1)``/``H(l-2)``);
* ``edges[l][p][j][e][o]``: operator ``o`` on edge ``e`` of that cell (edges
  ordered as α's rows); it depends on ``p`` only through the stride of the
  ops on the cell inputs (2 when ``j > p``);
* ``head[a][b]``: the decode head with its low-level feature (Cell_2) at
  level ``a`` and its ASPP input (the last cell) at level ``b``.

For layer 0 the "levels" ``pp = p = 0`` stand for the stem's conv1 (``/2``)
and its output; for layer 1 ``pp = 0`` is the stem output. Entries of
impossible combinations are 0.

Shapes (``L`` layers, ``n`` levels, ``E`` edges, ``P`` operators):
``edges (L, n, n, E, P)``, ``cells (L, n, n, n)``, ``head (n, n)``; α is
``(E, P)``, normalised β ``(L, n, 3)`` (see :mod:`..search_space.decode`).

Per-op costs are derived from shapes (:func:`cell_costs`); the tests pin
them to the counter on built networks, exactly.

A ``latency`` table (seconds on a device, measured by
``tools/build_cost_table.py --kind latency``) has the same entries, each
timed on the modules that make it up; it is only about additive (a network
also pays per-call overheads the parts do not show), so it ranks networks
rather than predicting their latency exactly.

Format versions: 1 (multiply-adds only) is still read; 2 adds ``latency``
tables and their measurement fields (``device_type``, ``threads``,
``repeats``, ``warmup``).
"""
import os

import torch

FORMAT = 'mmseg_autodeeplab.cost_table'
VERSION = 2
#: versions this module reads (1: multiply-adds tables before latency)
READ_VERSIONS = (1, 2)
KINDS = ('macs', 'latency')
PENALTIES = ('hinge', 'log')


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


def cell_costs(sizes, stem_sizes, stem_channels, filter_multiplier,
               num_layers, num_blocks, primitives, last_cell, bn=2):
    """The ``cells`` and ``edges`` tables of the static network (module
    docstring), from shapes.

    Args:
        sizes (list[tuple]): ``(h, w)`` of each level.
        stem_sizes (tuple): ``(h, w)`` of the stem's conv1 (``/2``).
        stem_channels (tuple): widths of the stem's three convs.
        filter_multiplier (int): F.
        num_layers, num_blocks (int): L, B.
        primitives (Sequence[str]): α's columns.
        last_cell (int): last cell that runs (``max(out_indices)``).
        bn (int): counted multiply-adds per BN element.
    """
    n = len(sizes)
    num_e = sum(b + 2 for b in range(num_blocks))
    cells = [[[[0] * n for _ in range(n)] for _ in range(n)]
             for _ in range(num_layers)]
    edges = [[[[[0] * len(primitives) for _ in range(num_e)]
               for _ in range(n)] for _ in range(n)]
             for _ in range(num_layers)]
    out_ch = [num_blocks * filter_multiplier * 2**j for j in range(n)]
    for layer in range(min(num_layers, last_cell + 1)):
        top = min(layer + 1, n - 1)
        for j in range(top + 1):
            c = filter_multiplier * 2**j
            for p in (j - 1, j, j + 1):
                if not 0 <= p <= min(layer, n - 1):
                    continue
                if layer == 0 and p != 0:
                    continue
                stride = 2 if j > p else 1
                p_ch = stem_channels[2] if layer == 0 else out_ch[p]
                size_in = sizes[min(p, j)]
                # the edge costs: ops on the cell inputs carry the stride
                e = 0
                for b in range(num_blocks):
                    for i in range(b + 2):
                        s = stride if i < 2 else 1
                        edges[layer][p][j][e] = [
                            op_cost(o, c, s, _hw(sizes[j]), bn)
                            for o in primitives]
                        e += 1
                for pp in range(n):
                    if layer == 0:
                        if pp:
                            continue
                        pp_ch, pp_size = stem_channels[1], stem_sizes
                    elif layer == 1:
                        if pp:
                            continue
                        pp_ch, pp_size = stem_channels[2], sizes[0]
                    else:
                        if abs(pp - p) > 1 or pp > min(layer - 1, n - 1):
                            continue
                        pp_ch, pp_size = out_ch[pp], sizes[pp]
                    cost = (p_ch * c + bn * c) * _hw(size_in)  # preprocess1
                    if j < p:  # H(l-1) upsampled: 4 per output element
                        cost += 4 * p_ch * _hw(sizes[j])
                    if tuple(pp_size) != tuple(size_in):
                        cost += 4 * pp_ch * _hw(size_in)
                    if pp_ch != c:  # preprocess0 only when channels differ
                        cost += (pp_ch * c + bn * c) * _hw(size_in)
                    cells[layer][pp][p][j] = cost
    return cells, edges


class CostTable:
    """A cost lookup table (see the module docstring).

    Args:
        data (dict): the table's JSON content.
        source (str): where it came from, for messages.
    """

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
        E, P = sum(b + 2 for b in range(self.num_blocks)), len(
            self.primitives)
        for name, shape in (('edges', (L, n, n, E, P)),
                            ('cells', (L, n, n, n)), ('head', (n, n))):
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f'{source}: {name} has shape {got}, '
                                 f'expected {shape}')
        self._cache = {}

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

    def tensors(self, device):
        """``(edges, cells, head)`` as float64 tensors on ``device``."""
        key = str(device)
        if key not in self._cache:
            self._cache[key] = tuple(
                t.to(device) for t in (self.edges, self.cells, self.head))
        return self._cache[key]

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


def edge_keep(num_blocks, dtype=torch.float64, device=None):
    """``(E,)``: ``2 / n_b`` for each edge of block ``b`` (``n_b = b + 2``
    candidate inputs)."""
    return torch.tensor([2. / (b + 2) for b in range(num_blocks)
                         for _ in range(b + 2)], dtype=dtype, device=device)


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
        probs (Tensor): normalised β ``(L, n, 3)``
            (``supernet.normalized_betas()``).
        table (CostTable): the costs.

    Returns:
        Tensor: scalar, float64, differentiable w.r.t. ``alphas`` and
        ``probs``.
    """
    edges, cells, head = table.tensors(alphas.device)
    w = torch.softmax(alphas.to(torch.float64), dim=-1)
    w = w * edge_keep(table.num_blocks, device=w.device)[:, None]
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


#: ``arch_cost.build`` keys: for every kind, and for ``latency`` only
def format_cost(value, kind):
    """A cost with its unit: ``'12.35M multiply-adds'``, ``'4.21 ms'``."""
    if kind == 'latency':
        return f'{value * 1e3:.4g} ms'
    if kind == 'macs':
        if abs(value) >= 1e9:
            return f'{value / 1e9:.2f}G multiply-adds'
        return f'{value / 1e6:.2f}M multiply-adds'
    return f'{value:.6g} {kind}'


def spearman(x, y):
    """Spearman rank correlation (average ranks for ties)."""
    import numpy as np
    from scipy.stats import spearmanr
    return float(spearmanr(np.asarray(x), np.asarray(y)).correlation)


__all__ = ['CostTable', 'expected_cost', 'transition_matrices', 'cell_costs',
           'op_cost', 'edge_keep', 'spearman', 'format_cost']
