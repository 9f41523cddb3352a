"""Building cost tables, and the ``arch_cost`` option of the search loop.

The cost lookup table of a retrain config for a budgeted search
(``train_cfg.arch_cost``; the command is ``tools/build_cost_table.py``).

The table (:class:`~mmseg_autodeeplab.arch_cost.CostTable`) holds, for a search space of
``L`` layers and ``B`` blocks, the cost of every (edge, operator) choice at
every trellis node of the STATIC network (``AutoDeepLabNet`` + the config's
decode head) at the retrain input size. Two kinds:

* ``macs``: multiply-adds as ``tools/benchmark.py`` counts them (mmengine's
  counter, eval mode, image -> logits). Stem and head are counted by the
  counter on the built modules; the cells' costs come from shapes (the tests
  pin them to the counter). Exact: the entries add up to the network's count.
* ``latency``: seconds on a device (batch 1, eval mode, ``torch.no_grad``,
  median of ``repeats`` runs after ``warmup`` runs, CUDA synchronised), each
  entry measured on the modules that make it up (stem; a cell's fixed part;
  one operator; the head). Each DISTINCT module configuration is timed once,
  as many entries share one (same op, channels, stride, input size).
  Latency is only about additive, so the table ranks networks rather than
  predicting them exactly.

``--verify N`` then builds N random genotypes, counts (MACs) or times
(latency, with the same timing function) each whole network and records the
table's prediction against it (Spearman, largest difference).
"""
import datetime
import math
import os
import platform
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .analysis import (SegmentorLogits, build_segmentor, config_path,
                       count_macs, load_config)
from .arch_cost import (FORMAT, KINDS, PENALTIES, VERSION, CostTable,
                        cell_costs, expected_cost, spearman)
from .search_space import SearchSpace, build_op
from .search_space.sampling import sample_genotype
from .utils import atomic_write_json

DEFAULT_REPEATS = 20
DEFAULT_WARMUP = 5


def static_cfg(cfg, genotype):
    """A copy of retrain config ``cfg`` for ``genotype`` (inline) with the
    head's input channels of its Cell_2 / last cell levels."""
    import copy
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    f, b = bb.filter_multiplier, genotype.search_space.num_blocks
    low, high = _head_cells(bb, len(genotype.path))
    bb.genotype = genotype.to_dict()
    cfg.model.decode_head.c1_in_channels = b * f * 2**genotype.path[low]
    cfg.model.decode_head.in_channels = b * f * 2**genotype.path[high]
    return cfg


def _head_cells(backbone_cfg, num_layers):
    indices = tuple(backbone_cfg.get('out_indices', (2, -1)))
    if len(indices) != 2:
        raise ValueError('model.backbone.out_indices: the cost table needs '
                         f'(low-level cell, ASPP cell), got {indices}')
    if not all(-num_layers <= i < num_layers for i in indices):
        raise ValueError(f'model.backbone.out_indices: {indices} out of '
                         f'range for {num_layers} layers')
    return tuple(i % num_layers for i in indices)


def _head_pairs(low, high, num_levels):
    """(level of Cell ``low``, level of Cell ``high``) pairs a path can
    reach: cell ``l`` is at most at level ``l + 1``, and the two differ by at
    most one level per layer between them."""
    return [(a, b) for a in range(min(low + 1, num_levels - 1) + 1)
            for b in range(min(high + 1, num_levels - 1) + 1)
            if abs(a - b) <= abs(high - low)]


def count_network(cfg, genotype, size):
    """mmengine's multiply-adds of the built static network (logits)."""
    model = SegmentorLogits(build_segmentor(static_cfg(cfg, genotype))).eval()
    return count_macs(model, torch.zeros(1, 3, *size))


def _bn_factor(module):
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            return 2 if m.affine else 1
    raise ValueError('model.backbone.norm_cfg: the cost table expects BN')


class _Layout:
    """What every table of a retrain config shares: the checks, the sizes
    of each level, the head cells, a built static network (for its stem)
    and the MACs of the cells, whose non-zero pattern is the table's
    structure."""

    def __init__(self, cfg, size, num_layers, num_blocks, num_levels, seed):
        bb = cfg.model.backbone
        if bb.get('type') not in ('AutoDeepLabNet', 'mmseg.AutoDeepLabNet'):
            raise ValueError('model.backbone.type: the cost table is for '
                             'AutoDeepLabNet retrain configs, got '
                             f'{bb.get("type")}')
        if cfg.model.get('neck'):
            raise ValueError('model.neck: not supported by the cost table')
        self.space = SearchSpace(
            num_layers=num_layers, num_blocks=num_blocks,
            strides=tuple(4 * 2**j for j in range(num_levels)))
        rng = np.random.default_rng(seed)
        seg = build_segmentor(static_cfg(
            cfg, sample_genotype(rng, self.space))).eval()
        self.net = seg.backbone
        self.bn = _bn_factor(self.net)
        h, w = size
        self.size = (h, w)
        self.stem_size = ((h - 1) // 2 + 1, (w - 1) // 2 + 1)
        sizes = [((self.stem_size[0] - 1) // 2 + 1,
                  (self.stem_size[1] - 1) // 2 + 1)]
        for _ in range(num_levels - 1):
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
        self.sizes = sizes
        self.low, self.high = _head_cells(bb, num_layers)
        self.f = bb.filter_multiplier
        self.stem_channels = tuple(bb.get('stem_channels', (64, 64, 128)))
        self.norm_cfg = bb.get('norm_cfg', dict(type='BN',
                                                requires_grad=True))
        self.num_layers, self.num_blocks = num_layers, num_blocks
        self.num_levels = num_levels
        self.cells, self.edges = cell_costs(
            sizes, self.stem_size, self.stem_channels, self.f, num_layers,
            num_blocks, self.space.primitives, max(self.low, self.high),
            self.bn)
        self.head_pairs = _head_pairs(self.low, self.high, num_levels)

    def head_module(self, cfg, a, b):
        """The decode head for Cell_low at level ``a``, the last cell at
        ``b`` (eval mode, BN)."""
        from mmengine.model import revert_sync_batchnorm
        from mmseg.registry import MODELS
        head_cfg = cfg.model.decode_head.copy()
        head_cfg.c1_in_channels = self.num_blocks * self.f * 2**a
        head_cfg.in_channels = self.num_blocks * self.f * 2**b
        return revert_sync_batchnorm(MODELS.build(head_cfg)).eval()

    def head_inputs(self, a, b, make=torch.zeros):
        return tuple(make(1, self.num_blocks * self.f * 2**j, *self.sizes[j])
                     for j in (a, b))

    def metadata(self, cfg):
        """The fields every table records besides its costs."""
        return dict(
            format=FORMAT, version=VERSION, input_size=list(self.size),
            versions=dict(torch=torch.__version__),
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec='seconds'),
            filter_multiplier=self.f, stem_channels=list(self.stem_channels),
            num_classes=cfg.model.decode_head.get('num_classes'),
            num_layers=self.num_layers, num_blocks=self.num_blocks,
            num_levels=self.num_levels,
            primitives=list(self.space.primitives),
            head_cells=[self.low, self.high])


def build_table(cfg, size, num_layers, num_blocks, num_levels=4, seed=0):
    """The multiply-adds cost table (a JSON-ready dict) of retrain config
    ``cfg``.

    Args:
        cfg (Config): a retrain config with an ``AutoDeepLabNet`` backbone.
        size (tuple[int]): input ``(H, W)``.
        num_layers, num_blocks (int): the searched space's L and B.
        num_levels (int): levels of the space.
        seed (int): draws the genotype whose static network gives the stem.
    """
    lay = _Layout(cfg, size, num_layers, num_blocks, num_levels, seed)
    stem = count_macs(lay.net.stem, torch.zeros(1, 3, *lay.size))
    head = [[0] * num_levels for _ in range(num_levels)]
    for a, b in lay.head_pairs:
        head[a][b] = count_macs(lay.head_module(cfg, a, b),
                                lay.head_inputs(a, b))
    return dict(
        lay.metadata(cfg), kind='macs',
        unit='multiply-adds (mmengine counter, eval mode, image -> logits)',
        device=f'cpu ({platform.processor() or platform.machine()}); '
        'multiply-adds do not depend on the device',
        stem=stem, cells=lay.cells, edges=lay.edges, head=head)


# -- latency -------------------------------------------------------------


def time_modules(items, repeats, warmup, device):
    """Median seconds of each ``module(*inputs)`` in ``items``: batch 1 as
    given, eval mode and ``torch.no_grad``; ``warmup`` untimed runs of each
    first (allocator, caches, cuDNN autotuning), then ``repeats`` ROUNDS in
    which every module runs once, timed, synchronised on CUDA so that it
    times the kernels, not their launch.

    Round-robin, not one module after the other: a shared or frequency-
    scaling CPU drifts by tens of percent over a minute, which timing the
    modules one after the other turns into differences between modules
    (measured on the proxy table: Spearman of predicted vs measured
    networks 0.62-0.99 across four builds); interleaved, every module sees
    the same drift.

    Args:
        items (list[tuple]): ``(module, inputs)`` pairs; ``module`` is an
            nn.Module or a callable, ``inputs`` its positional arguments.
        repeats (int): timed rounds (>= 1).
        warmup (int): untimed runs of each module before.
        device (torch.device | str): where modules and inputs are.

    Returns:
        list[float]: seconds, in the order of ``items``.
    """
    cuda = torch.device(device).type == 'cuda'

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for module, _ in items:
        if isinstance(module, nn.Module):
            module.eval()
    times = [[] for _ in items]
    with torch.no_grad():
        for module, inputs in items:
            for _ in range(warmup):
                module(*inputs)
        sync()
        for _ in range(repeats):
            for k, (module, inputs) in enumerate(items):
                start = time.perf_counter()
                module(*inputs)
                sync()
                times[k].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def time_module(module, inputs, repeats, warmup, device):
    """:func:`time_modules` of one module."""
    return time_modules([(module, inputs)], repeats, warmup, device)[0]


class CellFixedPart(nn.Module):
    """What a cell of the static network runs besides its operators: the
    upsampling of ``H(l-1)`` (finer cell), the resize of ``H(l-2)``, both
    1×1 projections, the block sums (``0 + y + y``, as
    :class:`AutoDeepLabCell` adds) and the concat of the blocks.

    Args:
        prev_channels, prev_prev_channels, channels (int): as
            :class:`AutoDeepLabCell`.
        num_blocks (int): B.
        out_size (tuple): ``(h, w)`` of the cell's level.
        upsample (bool): ``H(l-1)`` is upsampled to ``out_size`` first.
        norm_cfg (dict): the projections' norm.
    """

    def __init__(self, prev_channels, prev_prev_channels, channels,
                 num_blocks, out_size, upsample, norm_cfg):
        super().__init__()
        from .models.backbones.autodeeplab_net import AutoDeepLabCell
        # one projection each, built exactly as the static cell builds them
        cell = AutoDeepLabCell([], channels, prev_channels,
                               prev_prev_channels, 1, norm_cfg)
        self.preprocess0, self.preprocess1 = cell.preprocess0, \
            cell.preprocess1
        self.num_blocks = num_blocks
        self.out_size = tuple(out_size)
        self.upsample = upsample
        self._config = (prev_channels, prev_prev_channels, channels,
                        num_blocks, self.out_size, upsample)

    def extra_repr(self):
        p, pp, c, b, size, up = self._config
        return (f'prev={p}, prev_prev={pp}, channels={c}, blocks={b}, '
                f'out_size={size}, upsample={up}')

    def forward(self, prev_prev, prev, block_out):
        if self.upsample:
            prev = F.interpolate(prev, size=self.out_size, mode='bilinear',
                                 align_corners=True)
        if prev_prev.shape[2:] != prev.shape[2:]:
            prev_prev = F.interpolate(prev_prev, size=prev.shape[2:],
                                      mode='bilinear', align_corners=True)
        self.preprocess0(prev_prev)
        self.preprocess1(prev)
        states = []
        for _ in range(self.num_blocks):
            out = 0
            for _ in range(2):
                out = out + block_out
            states.append(out)
        return torch.cat(states, dim=1)


class HeadWithLastReLU(nn.Module):
    """The decode head, after the ReLU the static network applies to its
    last cell (``relu_input``: which head input that cell is, or None)."""

    def __init__(self, head, relu_input):
        super().__init__()
        self.head = head
        self.relu_input = relu_input

    def forward(self, feats):
        feats = list(feats)
        if self.relu_input is not None:
            feats[self.relu_input] = F.relu(feats[self.relu_input])
        return self.head(feats)


def _cpu_name():
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device):
    """Human-readable name of ``device`` (GPU model or CPU model)."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return _cpu_name()


def check_device(device):
    """``torch.device`` of a ``'cpu'``/``'cuda[:i]'`` string; one-line
    ValueError if it is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"expected 'cpu' or 'cuda[:i]', got {device!r}") \
            from None
    if dev.type not in ('cpu', 'cuda'):
        raise ValueError(f"expected 'cpu' or 'cuda[:i]', got {device!r}")
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'{device!r}: CUDA is not available on this machine')
    return dev


def build_latency_table(cfg, size, num_layers, num_blocks, num_levels=4,
                        device='cpu', repeats=DEFAULT_REPEATS,
                        warmup=DEFAULT_WARMUP, seed=0, log=None):
    """The latency cost table (a JSON-ready dict) of retrain config ``cfg``,
    measured with :func:`time_module` (seconds) on ``device``, at torch's
    current CPU thread count.

    Same structure as :func:`build_table`: an entry is timed where the
    multiply-adds table has a cell (fixed part), a trellis node (its
    operators) or a head pair; the zero op stays 0. Each distinct module
    configuration is timed once and shared by every entry it makes up.

    Args:
        cfg, size, num_layers, num_blocks, num_levels, seed: as
            :func:`build_table`.
        device (str): ``'cpu'`` or ``'cuda[:i]'``.
        repeats (int): timed runs per module (the median is kept).
        warmup (int): untimed runs before.
        log (callable, optional): progress messages (one line each).
    """
    dev = check_device(device)
    log = log or (lambda msg: None)
    lay = _Layout(cfg, size, num_layers, num_blocks, num_levels, seed)
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(dev)

    from mmengine.model import revert_sync_batchnorm
    # key -> (build the module, build its inputs); the entries refer to keys
    jobs = {}
    n, prims = num_levels, lay.space.primitives
    cells = [[[[0.] * n for _ in range(n)] for _ in range(n)]
             for _ in range(num_layers)]
    edges = [[[[[0.] * len(prims) for _ in row] for row in by_j]
              for by_j in by_p] for by_p in lay.edges]
    head = [[0.] * n for _ in range(n)]
    refs = []  # (table list, index, key)
    stem_ch = lay.stem_channels
    out_ch = [num_blocks * lay.f * 2**j for j in range(n)]

    def job(key, make, inputs):
        if key not in jobs:
            jobs[key] = (make, inputs)
        return key

    def op_job(op, c, stride, in_size):
        return job(('op', op, c, stride, tuple(in_size)),
                   lambda: revert_sync_batchnorm(
                       build_op(op, c, stride, lay.norm_cfg)),
                   lambda: (rand(1, c, *in_size), ))

    for layer in range(num_layers):
        for p in range(n):
            for j in range(n):
                if not any(any(row) for row in lay.edges[layer][p][j]):
                    continue  # a node the static network never builds
                c = lay.f * 2**j
                stride = 2 if j > p else 1
                size_in = lay.sizes[min(p, j)]
                e = 0
                for b in range(num_blocks):
                    for i in range(b + 2):
                        s, hw = (stride, size_in) if i < 2 else (
                            1, lay.sizes[j])
                        for k, op in enumerate(prims):
                            if op == 'none':
                                continue  # never decoded: costs nothing
                            refs.append((edges[layer][p][j][e], k,
                                         op_job(op, c, s, hw)))
                        e += 1
                for pp in range(n):
                    if not lay.cells[layer][pp][p][j]:
                        continue
                    # inputs as AutoDeepLabNet.forward hands them to cell l
                    p_ch = stem_ch[2] if layer == 0 else out_ch[p]
                    p_size = lay.sizes[p]
                    if layer == 0:
                        pp_ch, pp_size = stem_ch[1], lay.stem_size
                    elif layer == 1:
                        pp_ch, pp_size = stem_ch[2], lay.sizes[0]
                    else:
                        pp_ch, pp_size = out_ch[pp], lay.sizes[pp]
                    key = ('cell', p_ch, tuple(p_size), pp_ch,
                           tuple(pp_size), c, tuple(lay.sizes[j]), j < p)
                    job(key, lambda a=(p_ch, pp_ch, c, num_blocks,
                                       lay.sizes[j], j < p):
                        revert_sync_batchnorm(
                            CellFixedPart(*a, lay.norm_cfg)),
                        lambda a=(pp_ch, pp_size, p_ch, p_size, c,
                                  lay.sizes[j]): (
                            rand(1, a[0], *a[1]), rand(1, a[2], *a[3]),
                            rand(1, a[4], *a[5])))
                    refs.append((cells[layer][pp][p], j, key))
    last = num_layers - 1
    relu_input = 1 if lay.high == last else 0 if lay.low == last else None
    for a, b in lay.head_pairs:
        key = job(('head', a, b),
                  lambda a=a, b=b: HeadWithLastReLU(
                      lay.head_module(cfg, a, b), relu_input),
                  lambda a=a, b=b: (lay.head_inputs(a, b, rand), ))
        refs.append((head[a], b, key))
    job(('stem', ), lambda: lay.net.stem, lambda: (rand(1, 3, *lay.size), ))

    threads = torch.get_num_threads()
    name = device_name(dev)
    log(f'cost table: timing {len(jobs)} distinct modules for '
        f'{len(refs) + 1} entries on {dev} ({name}, {threads} threads), '
        f'{warmup} warm-up + {repeats} timed runs each')
    start = time.perf_counter()
    keys = list(jobs)
    items = [(make().to(dev).eval(), inputs()) for make, inputs in
             (jobs[k] for k in keys)]
    seconds = dict(zip(keys, time_modules(items, repeats, warmup, dev)))
    log(f'cost table: timed {len(keys)} modules in {repeats} interleaved '
        f'rounds ({time.perf_counter() - start:.0f} s)')
    for target, index, key in refs:
        target[index] = seconds[key]
    bad = [k for k, v in seconds.items() if not (math.isfinite(v) and v > 0)]
    if bad:  # a zero would make that choice free; never silently
        raise ValueError(f'cost table: module {bad[0]} timed as '
                         f'{seconds[bad[0]]!r} s')
    return dict(
        lay.metadata(cfg), kind='latency',
        unit='seconds (median of timed runs after warm-up; batch 1, eval '
        'mode, torch.no_grad, image -> logits)',
        device=f'{dev.type} ({name})', device_type=dev.type,
        threads=threads, repeats=repeats, warmup=warmup,
        timed_modules=len(jobs),
        stem=seconds[('stem', )], cells=cells, edges=edges, head=head)


def network_module(cfg, genotype, device='cpu'):
    """The built static network (image -> logits) on ``device``, eval
    mode, and its input: what :func:`verify` times."""
    dev = check_device(device)
    model = SegmentorLogits(build_segmentor(static_cfg(cfg, genotype)))
    return model.to(dev).eval()


def _network_input(size, device):
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    return (x.to(check_device(device)), )


def verify(cfg, table, size, num, seed=1, log=None):
    """Predicted vs counted (MACs) or measured (latency) cost of ``num``
    random genotypes.

    Returns:
        dict: ``predicted``, ``counted`` or ``measured`` (lists),
        ``spearman``, ``max_abs_diff`` (MACs) or ``max_rel_diff`` (latency,
        ``|predicted - measured| / measured``), ``seed``.
    """
    space = SearchSpace(num_layers=table.num_layers,
                        num_blocks=table.num_blocks,
                        strides=tuple(4 * 2**j
                                      for j in range(table.num_levels)))
    rng = np.random.default_rng(seed)
    latency = table.kind == 'latency'
    genotypes = [sample_genotype(rng, space) for _ in range(num)]
    if latency:
        device = table.data.get('device_type', 'cpu')
        predicted = [table.predicted(g) for g in genotypes]
        # all networks timed in the same interleaved rounds, as the
        # table's modules were
        actual = time_modules(
            [(network_module(cfg, g, device), _network_input(size, device))
             for g in genotypes], table.data.get('repeats', DEFAULT_REPEATS),
            table.data.get('warmup', DEFAULT_WARMUP), device)
        for k, (p, m) in enumerate(zip(predicted, actual)):
            if log:
                log(f'verify: network {k + 1}/{num}: predicted '
                    f'{p * 1e3:.3f} ms, measured {m * 1e3:.3f} ms')
    else:
        predicted = [int(round(table.predicted(g))) for g in genotypes]
        actual = [count_network(cfg, g, size) for g in genotypes]
    rho = spearman(predicted, actual) if num > 1 else None
    if latency:
        return dict(seed=seed, predicted=predicted, measured=actual,
                    spearman=rho, max_rel_diff=max(
                        abs(p - m) / m for p, m in zip(predicted, actual)))
    return dict(seed=seed, predicted=predicted, counted=actual, spearman=rho,
                max_abs_diff=max(abs(p - c)
                                 for p, c in zip(predicted, actual)))


def resolve_config(config):
    """Absolute path of a retrain config given as a path (relative to the
    CWD, the repo root or the installed package), as ``configs/``-relative
    or as ``mmseg::``.

    Raises:
        FileNotFoundError: one-line message naming the config.
    """
    from .utils.configs import find_project_file
    found, _ = find_project_file(config)
    return os.path.abspath(found) if found else config_path(config)


def make_table(config, size, num_layers=None, num_blocks=None, kind='macs',
               device='cpu', repeats=DEFAULT_REPEATS, warmup=DEFAULT_WARMUP,
               threads=None, seed=0, num_verify=0, log=None):
    """The table of retrain config file ``config`` as the tool and
    ``arch_cost.build`` make it: L/B default to the config's genotype, the
    config is recorded (as given), ``threads`` pins torch's CPU threads
    while timing (restored after).

    Returns:
        dict: the table, with ``config`` and, for ``num_verify``,
        ``verification``.
    """
    cfg = load_config(resolve_config(config))
    if num_layers is None or num_blocks is None:
        from .models.backbones.autodeeplab_net import load_genotype
        space = load_genotype(cfg.model.backbone.genotype).search_space
        num_layers = num_layers or space.num_layers
        num_blocks = num_blocks or space.num_blocks
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if kind == 'latency':
            data = build_latency_table(cfg, size, num_layers, num_blocks,
                                       device=device, repeats=repeats,
                                       warmup=warmup, seed=seed, log=log)
        elif kind == 'macs':
            if log:
                log(f'cost table: counting multiply-adds of {config} at '
                    f'{size[0]}x{size[1]}')
            data = build_table(cfg, size, num_layers, num_blocks, seed=seed)
        else:
            raise ValueError(f"kind: expected 'macs' or 'latency', got "
                             f'{kind!r}')
        data['config'] = config
        if num_verify:
            data['verification'] = verify(cfg, CostTable(data), size,
                                          num_verify, seed=seed + 1, log=log)
    finally:
        torch.set_num_threads(before)
    return data


def write_table(path, data):
    """Write a table atomically (readers never see half a file)."""
    atomic_write_json(path, data)


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


__all__ = ['ArchCost', 'build_table', 'build_latency_table', 'make_table',
           'write_table', 'verify', 'time_modules', 'time_module',
           'check_build', 'build_mismatch', 'build_table_file',
           'check_device', 'device_name', 'resolve_config']
