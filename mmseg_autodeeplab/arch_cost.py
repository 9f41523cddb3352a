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
import math
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
BUILD_KEYS = ('config', 'size', 'num_layers', 'num_blocks')
LATENCY_BUILD_KEYS = ('device', 'repeats', 'warmup', 'threads')


def _is_int(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and \
        value >= minimum


def check_build(build, kind):
    """Validate ``arch_cost.build`` (how to make a missing table).

    Args:
        build (dict): ``config`` (retrain config path), ``size`` ``(H, W)``,
            optional ``num_layers``/``num_blocks`` (default: the config's
            genotype) and, for ``kind='latency'``, ``device``, ``repeats``,
            ``warmup``, ``threads``
            (as ``tools/build_cost_table.py --kind latency``).
        kind (str): the table kind.

    Returns:
        dict: every key, defaults filled in, ``size`` a tuple.

    Raises:
        ValueError: one line naming ``arch_cost.build.<key>``.
    """
    from .cli.build_cost_table import (DEFAULT_REPEATS, DEFAULT_WARMUP,
                                        check_device, resolve_config)
    if not isinstance(build, dict):
        raise ValueError('arch_cost.build: expected dict(config=RETRAIN_'
                         'CONFIG, size=(H, W), num_layers=L, ...), got '
                         f'{type(build).__name__}')
    allowed = BUILD_KEYS + (LATENCY_BUILD_KEYS if kind == 'latency' else ())
    for key in build:
        if key in LATENCY_BUILD_KEYS and key not in allowed:
            raise ValueError(f"arch_cost.build.{key}: only for "
                             f"kind='latency' (kind is {kind!r})")
        if key not in allowed:
            raise ValueError(f'arch_cost.build.{key}: unknown key; '
                             f'expected {", ".join(allowed)}')
    config = build.get('config')
    if not isinstance(config, str) or not config:
        raise ValueError('arch_cost.build.config: expected the path of the '
                         f'retrain config, got {config!r}')
    try:
        resolve_config(config)
    except FileNotFoundError as e:
        raise ValueError(f'arch_cost.build.config: {e}') from None
    size = build.get('size')
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(_is_int(v, 8) for v in size)):
        raise ValueError('arch_cost.build.size: expected (H, W), integers '
                         f'>= 8, got {size!r}')
    spec = dict(config=config, size=(size[0], size[1]))
    for key, low, default in (('num_layers', 1, None),
                              ('num_blocks', 1, None),
                              ('repeats', 1, DEFAULT_REPEATS),
                              ('warmup', 0, DEFAULT_WARMUP),
                              ('threads', 1, None)):
        if key not in allowed:
            continue
        value = build.get(key, default)
        if value is not None and not _is_int(value, low):
            raise ValueError(f'arch_cost.build.{key}: expected an integer '
                             f'>= {low}, got {value!r}')
        spec[key] = value
    if kind == 'latency':
        spec['device'] = build.get('device', 'cpu')
        try:
            check_device(spec['device'])
        except ValueError as e:
            raise ValueError(f'arch_cost.build.device: {e}') from None
    return spec


def _same_config(recorded, wanted):
    if not isinstance(recorded, str):
        return False
    if os.path.normpath(recorded) == os.path.normpath(wanted):
        return True
    from .cli.build_cost_table import resolve_config
    try:
        return os.path.realpath(resolve_config(recorded)) == \
            os.path.realpath(resolve_config(wanted))
    except FileNotFoundError:
        return False


def build_mismatch(data, spec, kind):
    """What a table records that ``arch_cost.build`` does not ask for.

    Returns:
        list[str]: ``'<field> <recorded> vs <asked>'`` for each difference
        (empty when the table is the one ``build`` would make).
    """
    def hw(v):
        return 'x'.join(map(str, v)) if isinstance(v, (list, tuple)) else v

    diffs = []
    if data.get('kind') != kind:
        diffs.append(f'kind {data.get("kind")!r} vs {kind!r}')
    if list(data.get('input_size') or ()) != list(spec['size']):
        diffs.append(f'size {hw(data.get("input_size"))} vs '
                     f'{hw(spec["size"])}')
    if not _same_config(data.get('config'), spec['config']):
        diffs.append(f'config {data.get("config")} vs {spec["config"]}')
    for key in ('num_layers', 'num_blocks'):
        if spec[key] is not None and data.get(key) != spec[key]:
            diffs.append(f'{key} {data.get(key)} vs {spec[key]}')
    if kind == 'latency' and data.get('kind') == 'latency':
        from .cli.build_cost_table import check_device, device_name
        dev = check_device(spec['device'])
        here = f'{dev.type} ({device_name(dev)})'
        if data.get('device') != here:  # measured elsewhere: not this one
            diffs.append(f'device {data.get("device")} vs {here}')
        if spec['threads'] is not None and \
                data.get('threads') != spec['threads']:
            diffs.append(f'threads {data.get("threads")} vs '
                         f'{spec["threads"]}')
    return diffs


def build_table_file(path, spec, kind):
    """Make the table ``arch_cost.build`` describes and write it to
    ``path`` atomically, with the code of ``tools/build_cost_table.py``
    (the main process builds it; the others wait for the file)."""
    from mmengine.dist import barrier, is_main_process
    from mmengine.logging import print_log

    from .cli.build_cost_table import make_table, write_table

    def log(msg):
        print_log(msg, logger='current')

    if is_main_process():
        h, w = spec['size']
        log(f'arch_cost: {path} not found: building the {kind} cost table '
            f'of {spec["config"]} at {h}x{w} (once; later runs reuse it)')
        options = {k: spec[k] for k in LATENCY_BUILD_KEYS if k in spec}
        data = make_table(spec['config'], spec['size'], spec['num_layers'],
                          spec['num_blocks'], kind, log=log, **options)
        write_table(path, data)
        log(f'arch_cost: cost table written to {path}')
    barrier()


def format_cost(value, kind):
    """A cost with its unit: ``'12.35M multiply-adds'``, ``'4.21 ms'``."""
    if kind == 'latency':
        return f'{value * 1e3:.4g} ms'
    if kind == 'macs':
        if abs(value) >= 1e9:
            return f'{value / 1e9:.2f}G multiply-adds'
        return f'{value / 1e6:.2f}M multiply-adds'
    return f'{value:.6g} {kind}'


class ArchCost:
    """The ``arch_cost`` option of the search loop: a budget penalty.

    ``penalty='hinge'``: ``weight * max(0, cost / target - 1)`` (a budget:
    nothing below the target); ``'log'``: ``weight * |log(cost / target)|``
    (pulls towards the target from both sides, scale-free). ``cost`` is
    :func:`expected_cost`.

    A search runs from one config with ``build``: a missing ``table`` is
    then made (once, by :func:`build_table_file`) and later runs reuse it;
    an existing table must record what ``build`` asks for (config, size,
    kind, L/B given, and for latency this device and the threads given),
    else it is refused: delete it to rebuild, or change ``table``.

    Args:
        kind (str): ``'macs'`` (multiply-adds) or ``'latency'`` (seconds).
        target (float): the budget, in the table's unit (multiply-adds or
            seconds per image).
        weight (float): >= 0; 0 logs the expected cost without a penalty.
        table (str): a table from ``tools/build_cost_table.py``.
        penalty (str): ``'hinge'`` or ``'log'``.
        build (dict, optional): how to make ``table`` when it is missing
            (:func:`check_build`).

    Raises:
        ValueError: one line naming the bad ``arch_cost.<key>``.
    """

    KEYS = ('kind', 'target', 'weight', 'table', 'penalty', 'build')

    def __init__(self, kind=None, target=None, weight=None, table=None,
                 penalty='hinge', build=None):
        spec = self._check(kind, target, weight, table, penalty, build)
        self.kind, self.target, self.weight = kind, float(target), float(
            weight)
        self.penalty_kind = penalty
        self.build_spec = spec
        if not os.path.isfile(table):
            build_table_file(table, spec, kind)
        self.table = self._load(table, kind, spec)

    @staticmethod
    def _check(kind, target, weight, table, penalty, build):
        """Every check that needs no table; returns the build spec."""
        if kind not in KINDS:
            raise ValueError(f'arch_cost.kind: expected one of {KINDS}, got '
                             f'{kind!r}')
        for key, value, low in (('target', target, 'positive'),
                                ('weight', weight, 'non-negative')):
            ok = isinstance(value, (int, float)) and not isinstance(
                value, bool) and math.isfinite(value)
            if not ok or (value <= 0 if key == 'target' else value < 0):
                raise ValueError(f'arch_cost.{key}: expected a finite '
                                 f'{low} number, got {value!r}')
        if penalty not in PENALTIES:
            raise ValueError(f'arch_cost.penalty: expected one of '
                             f'{PENALTIES}, got {penalty!r}')
        if not isinstance(table, (str, os.PathLike)) or not table:
            raise ValueError('arch_cost.table: expected the path of a cost '
                             f'table, got {table!r}')
        spec = None if build is None else check_build(build, kind)
        if spec is None and not os.path.isfile(table):
            raise ValueError(
                f'arch_cost.table: cost table file {table!r} not found; '
                'build it with tools/build_cost_table.py CONFIG --size HxW '
                '--out PATH, or give arch_cost.build=dict(config=, size=) '
                'to build it at the start of the search')
        return spec

    @staticmethod
    def _load(table, kind, spec):
        """The table at ``table``, checked against ``kind`` and ``spec``."""
        try:
            loaded = CostTable.load(table)
        except ValueError as e:
            raise ValueError(f'arch_cost.table: {e}') from None
        if spec is not None:
            diffs = build_mismatch(loaded.data, spec, kind)
            if diffs:
                raise ValueError(
                    f'arch_cost.table: {table} is not the table '
                    f'arch_cost.build asks for ({"; ".join(diffs)}: table vs '
                    'build); delete the file to rebuild it, or change '
                    'arch_cost.table')
        if loaded.kind != kind:
            raise ValueError(f'arch_cost.kind: {kind!r} but the table '
                             f'{table} holds {loaded.kind!r} costs')
        return loaded

    @classmethod
    def _kwargs(cls, cfg):
        if not isinstance(cfg, dict):
            raise ValueError('arch_cost: expected a dict(kind=, target=, '
                             f'weight=, table=), got {type(cfg).__name__}')
        unknown = sorted(set(cfg) - set(cls.KEYS))
        if unknown:
            raise ValueError(f'arch_cost.{unknown[0]}: unknown key; '
                             f'expected {", ".join(cls.KEYS)}')
        return dict(cfg)

    @classmethod
    def build(cls, cfg):
        """From the config dict; ``None`` stays ``None`` (off)."""
        if cfg is None:
            return None
        if isinstance(cfg, cls):
            return cfg
        return cls(**cls._kwargs(cfg))

    @classmethod
    def check_cfg(cls, cfg):
        """Check ``arch_cost`` without building a table (for
        ``tools/search.py``, before the Runner makes the work_dir): the
        values, ``build``, and an existing table's kind and record.

        Raises:
            ValueError: one line naming the bad ``arch_cost.<key>``.
        """
        if cfg is None or isinstance(cfg, cls):
            return
        kwargs = cls._kwargs(cfg)
        kwargs.setdefault('penalty', 'hinge')
        spec = cls._check(**{k: kwargs.get(k) for k in cls.KEYS})
        if os.path.isfile(kwargs['table']):
            cls._load(kwargs['table'], kwargs['kind'], spec)

    def check_supernet(self, net):
        self.table.check_space(net.num_layers, net.num_blocks,
                               net.num_levels, net.primitives)

    def expected(self, net):
        """Expected cost of the supernet's current α/β (scalar tensor)."""
        return expected_cost(net.alphas, net.normalized_betas(), self.table)

    def penalty(self, cost):
        ratio = cost / self.target
        if self.penalty_kind == 'hinge':
            return self.weight * torch.relu(ratio - 1)
        return self.weight * ratio.log().abs()


def spearman(x, y):
    """Spearman rank correlation (average ranks for ties)."""
    import numpy as np
    from scipy.stats import spearmanr
    return float(spearmanr(np.asarray(x), np.asarray(y)).correlation)


__all__ = ['CostTable', 'ArchCost', 'expected_cost', 'transition_matrices',
           'cell_costs', 'op_cost', 'edge_keep', 'spearman', 'check_build',
           'build_mismatch', 'build_table_file', 'format_cost']
