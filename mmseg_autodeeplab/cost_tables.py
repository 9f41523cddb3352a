"""Building cost tables (``tools/build_cost_table.py``), and the
``arch_cost`` option of the search loop.

One walk over the static network's layout (:meth:`_Layout.parts`) names the
part behind every entry of a table (:mod:`..arch_cost`): the stem, a cell's
fixed part, an operator, the head. Many entries share a part (same op,
channels, stride, input size), and each distinct part is measured once:
``macs`` from shapes (operators, fixed parts) or mmengine's counter (stem,
head), ``latency`` by timing it (:func:`time_modules`).
"""
import copy
import datetime
import functools
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .analysis import (SegmentorLogits, build_segmentor, config_path,
                       count_macs, load_config, machine_info)
from .arch_cost import (FORMAT, KINDS, PENALTIES, VERSION, CostTable,
                        expected_cost, fixed_cell_cost, op_cost, spearman)
from .search_space import SearchSpace, build_op, level_sizes
from .search_space.sampling import sample_genotype
from .utils import atomic_write_json
from .utils.work_dir_lock import table_lock

DEFAULT_REPEATS = 20
DEFAULT_WARMUP = 5
#: ``arch_cost.build`` keys and defaults: every kind's, then latency's
BUILD_KEYS = dict(config=None, size=None, num_layers=None, num_blocks=None)
LATENCY_KEYS = dict(device='cpu', repeats=DEFAULT_REPEATS,
                    warmup=DEFAULT_WARMUP, threads=None)


def _head_cells(backbone_cfg, num_layers):
    indices = tuple(backbone_cfg.get('out_indices', (2, -1)))
    if len(indices) != 2:
        raise ValueError('model.backbone.out_indices: the cost table needs '
                         f'(low-level cell, ASPP cell), got {indices}')
    if not all(-num_layers <= i < num_layers for i in indices):
        raise ValueError(f'model.backbone.out_indices: {indices} out of '
                         f'range for {num_layers} layers')
    return tuple(i % num_layers for i in indices)


def static_cfg(cfg, genotype):
    """A copy of retrain config ``cfg`` for ``genotype`` (inline) with the
    head's input channels of its Cell_2 / last cell levels."""
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    width = bb.filter_multiplier * genotype.search_space.num_blocks
    low, high = _head_cells(bb, len(genotype.path))
    bb.genotype = genotype.to_dict()
    cfg.model.decode_head.c1_in_channels = width * 2**genotype.path[low]
    cfg.model.decode_head.in_channels = width * 2**genotype.path[high]
    return cfg


def count_network(cfg, genotype, size):
    """mmengine's multiply-adds of the built static network (logits)."""
    model = SegmentorLogits(build_segmentor(static_cfg(cfg, genotype))).eval()
    return count_macs(model, torch.zeros(1, 3, *size))


class CellFixedPart(nn.Module):
    """What a cell of the static network runs besides its operators: the
    upsampling of ``H(l-1)`` (``upsample``: the cell is finer), the resize
    of ``H(l-2)``, both 1×1 projections, the block sums (``0 + y + y``, as
    :class:`AutoDeepLabCell` adds) and the concat of the blocks."""

    def __init__(self, prev_channels, prev_prev_channels, channels,
                 num_blocks, out_size, upsample, norm_cfg):
        super().__init__()
        from .models.backbones.autodeeplab_net import AutoDeepLabCell
        # the projections, built exactly as the static cell builds them
        cell = AutoDeepLabCell([], channels, prev_channels,
                               prev_prev_channels, 1, norm_cfg)
        self.preprocess0 = cell.preprocess0
        self.preprocess1 = cell.preprocess1
        self.num_blocks = num_blocks
        self.out_size = tuple(out_size)
        self.upsample = upsample

    def forward(self, prev_prev, prev, block_out):
        if self.upsample:
            prev = F.interpolate(prev, size=self.out_size, mode='bilinear',
                                 align_corners=True)
        if prev_prev.shape[2:] != prev.shape[2:]:
            prev_prev = F.interpolate(prev_prev, size=prev.shape[2:],
                                      mode='bilinear', align_corners=True)
        self.preprocess0(prev_prev)
        self.preprocess1(prev)
        return torch.cat([0 + block_out + block_out
                          for _ in range(self.num_blocks)], dim=1)


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


class _Layout:
    """The static networks of a retrain config for a space: the size of
    each level, the head cells, and the parts a table is made of."""

    def __init__(self, cfg, size, num_layers, num_blocks):
        bb = cfg.model.backbone
        if bb.get('type') not in ('AutoDeepLabNet', 'mmseg.AutoDeepLabNet'):
            raise ValueError('model.backbone.type: the cost table is for '
                             'AutoDeepLabNet retrain configs, got '
                             f'{bb.get("type")}')
        if cfg.model.get('neck'):
            raise ValueError('model.neck: not supported by the cost table')
        from .models.backbones.autodeeplab_net import AutoDeepLabStem
        self.cfg = cfg
        self.space = SearchSpace(num_layers=num_layers, num_blocks=num_blocks)
        # the image, the stem's conv1 (/2), then the levels (/4 ... /32)
        sizes = level_sizes(*size, self.space.num_levels + 2)
        self.size, self.stem_size, self.sizes = sizes[0], sizes[1], sizes[2:]
        self.low, self.high = _head_cells(bb, num_layers)
        self.f = bb.filter_multiplier
        self.stem_channels = tuple(bb.get('stem_channels', (64, 64, 128)))
        self.norm_cfg = bb.get('norm_cfg', dict(type='BN',
                                                requires_grad=True))
        self.stem = AutoDeepLabStem(3, self.stem_channels, self.norm_cfg)
        self.bn = next((2 if m.affine else 1 for m in self.stem.modules()
                        if isinstance(m, nn.modules.batchnorm._BatchNorm)),
                       None)
        if self.bn is None:
            raise ValueError('model.backbone.norm_cfg: the cost table '
                             'expects BN')

    def channels(self, level):
        """Output channels of a cell at ``level``."""
        return self.space.num_blocks * self.f * 2**level

    def feature(self, layer, level):
        """``(channels, size)`` of cell ``layer``'s output at ``level``;
        layer -1 is the stem output, -2 the stem's conv1 (``/2``)."""
        if layer == -2:
            return self.stem_channels[1], self.stem_size
        if layer == -1:
            return self.stem_channels[2], self.sizes[0]
        return self.channels(level), self.sizes[level]

    def parts(self):
        """Yield ``(entry, key)`` for every non-zero entry of a table:
        ``entry`` is ``(name, *index)`` into its ``stem``/``cells``/
        ``edges``/``head``; ``key`` names the part (one per distinct
        module configuration) for :meth:`module`."""
        L, n, sizes = self.space.num_layers, self.space.num_levels, self.sizes
        inputs = [i for b in range(self.space.num_blocks)
                  for i in range(b + 2)]  # the input of each edge
        yield ('stem', ), ('stem', )
        for layer in range(min(L, max(self.low, self.high) + 1)):
            for j in range(min(layer + 2, n)):
                c = self.f * 2**j
                # H(l-1) one level finer, the same or coarser
                for p in range(max(j - 1, 0), min(j + 2, layer + 1, n)):
                    size_in = sizes[min(p, j)]
                    for e, i in enumerate(inputs):
                        # ops on the cell inputs carry the cell's stride
                        s, hw = (2 if j > p else 1, size_in) if i < 2 else (
                            1, sizes[j])
                        for k, op in enumerate(self.space.primitives):
                            if op != 'none':  # the zero op costs nothing
                                yield (('edges', layer, p, j, e, k),
                                       ('op', op, c, s, hw))
                    # inputs as AutoDeepLabNet.forward hands them to cell l
                    prev = self.feature(layer - 1, p)
                    for pp in (0, ) if layer < 2 else range(
                            max(p - 1, 0), min(p + 2, layer, n)):
                        yield (('cells', layer, pp, p, j),
                               ('cell', *prev, *self.feature(layer - 2, pp),
                                c, sizes[j], j < p))
        # (level of Cell low, of Cell high): cell l is at most at level
        # l + 1, and the two differ by at most one level per layer between
        for a in range(min(self.low + 2, n)):
            for b in range(min(self.high + 2, n)):
                if abs(a - b) <= abs(self.high - self.low):
                    yield ('head', a, b), ('head', a, b)

    def macs(self, key):
        """Multiply-adds of part ``key``."""
        if key[0] == 'op':
            _, op, c, stride, (h, w) = key
            out_hw = ((h - 1) // stride + 1) * ((w - 1) // stride + 1)
            return op_cost(op, c, stride, out_hw, self.bn)
        if key[0] == 'cell':
            return fixed_cell_cost(*key[1:], bn=self.bn)
        module, inputs = self.module(key, torch.zeros)
        return count_macs(module, *inputs)

    def module(self, key, make):
        """``(module, inputs)`` of part ``key`` (eval mode, BN), the inputs
        made by ``make(*shape)``."""
        from mmengine.model import revert_sync_batchnorm
        from mmseg.registry import MODELS
        kind, *args = key
        if kind == 'stem':
            module, inputs = self.stem, (make(1, 3, *self.size), )
        elif kind == 'op':
            op, c, stride, size = args
            module = build_op(op, c, stride, self.norm_cfg)
            inputs = (make(1, c, *size), )
        elif kind == 'cell':
            p_ch, p_size, pp_ch, pp_size, c, size, upsample = args
            module = CellFixedPart(p_ch, pp_ch, c, self.space.num_blocks,
                                   size, upsample, self.norm_cfg)
            inputs = (make(1, pp_ch, *pp_size), make(1, p_ch, *p_size),
                      make(1, c, *size))
        else:
            head_cfg = self.cfg.model.decode_head.copy()
            head_cfg.c1_in_channels, head_cfg.in_channels = (
                self.channels(j) for j in args)
            last = self.space.num_layers - 1
            relu_input = 1 if self.high == last else (
                0 if self.low == last else None)
            module = HeadWithLastReLU(MODELS.build(head_cfg), relu_input)
            inputs = (tuple(make(1, self.channels(j), *self.sizes[j])
                            for j in args), )
        return revert_sync_batchnorm(module).eval(), inputs


def time_modules(items, repeats, warmup, device):
    """Median seconds of each ``module(*inputs)`` in ``items`` (inputs on
    ``device``), in eval mode and ``torch.no_grad``: ``warmup`` untimed runs
    of each (allocator, caches, cuDNN autotuning), then ``repeats`` ROUNDS
    in which every module runs once, synchronised on CUDA so that it times
    the kernels, not their launch.

    Round-robin, not one module after the other: a shared or frequency-
    scaling CPU drifts by tens of percent over a minute, which timing the
    modules one after the other turns into differences between modules
    (measured on the proxy table: Spearman of predicted vs measured
    networks 0.62-0.99 across four builds); interleaved, every module sees
    the same drift.
    """
    def sync():
        if torch.device(device).type == 'cuda':
            torch.cuda.synchronize(device)

    for module, _ in items:
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


def device_name(device):
    """A latency table's ``device``: ``'cpu (CPU model)'``, ``'cuda (GPU
    model)'``."""
    info = machine_info(device)
    return f'{device.type} ({info["gpu"] or info["cpu"]})'


def check_device(device):
    """``torch.device`` of a ``'cpu'``/``'cuda[:i]'`` string; one-line
    ValueError if it is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ('cpu', 'cuda'):
        raise ValueError(f"expected 'cpu' or 'cuda[:i]', got {device!r}")
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'{device!r}: CUDA is not available on this machine')
    return dev


def build_table(cfg, size, num_layers, num_blocks, seed=0, kind='macs',
                device='cpu', repeats=DEFAULT_REPEATS, warmup=DEFAULT_WARMUP,
                log=None):
    """The cost table (a JSON-ready dict) of retrain config ``cfg``.

    Args:
        cfg (Config): a retrain config with an ``AutoDeepLabNet`` backbone.
        size (tuple[int]): input ``(H, W)``.
        num_layers, num_blocks (int): the searched space's L and B.
        seed (int): seeds the inputs of the timed modules.
        kind (str): ``'macs'`` or ``'latency'``: timed on ``device``
            (``'cpu'``, ``'cuda[:i]'``; torch's current CPU threads),
            ``warmup`` runs and ``repeats`` rounds (:func:`time_modules`).
        log (callable, optional): progress messages (one line each).
    """
    dev = check_device(device)
    log = log or (lambda msg: None)
    lay = _Layout(cfg, size, num_layers, num_blocks)
    parts = list(lay.parts())
    keys = list(dict.fromkeys(key for _, key in parts))
    if kind == 'macs':
        log(f'cost table: counting multiply-adds at {size[0]}x{size[1]}')
        cost = {key: lay.macs(key) for key in keys}
        dtype = np.int64
        record = dict(
            unit='multiply-adds (mmengine counter, eval mode, image -> '
            'logits)',
            device=f'{device_name(torch.device("cpu"))}; multiply-adds do '
            'not depend on the device')
    else:
        threads, where = torch.get_num_threads(), device_name(dev)
        log(f'cost table: timing {len(keys)} distinct modules for '
            f'{len(parts)} entries on {where}, {threads} threads, '
            f'{warmup} warm-up + {repeats} timed runs each')
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(seed)
        items = [lay.module(key, lambda *shape: torch.randn(
            *shape, generator=gen).to(dev)) for key in keys]
        seconds = time_modules([(m.to(dev), x) for m, x in items], repeats,
                               warmup, dev)
        log(f'cost table: timed {len(keys)} modules in {repeats} '
            f'interleaved rounds ({time.perf_counter() - start:.0f} s)')
        cost = dict(zip(keys, seconds))
        bad = [k for k, v in cost.items() if not (math.isfinite(v) and v > 0)]
        if bad:  # a zero would make that choice free; never silently
            raise ValueError(f'cost table: module {bad[0]} timed as '
                             f'{cost[bad[0]]!r} s')
        dtype = np.float64
        record = dict(
            unit='seconds (median of timed runs after warm-up; batch 1, '
            'eval mode, torch.no_grad, image -> logits)',
            device=where, device_type=dev.type, threads=threads,
            repeats=repeats, warmup=warmup, timed_modules=len(keys))
    n, E = lay.space.num_levels, sum(b + 2 for b in range(num_blocks))
    shapes = dict(stem=(), cells=(num_layers, n, n, n),
                  edges=(num_layers, n, n, E, len(lay.space.primitives)),
                  head=(n, n))
    tables = {name: np.zeros(shape, dtype) for name, shape in shapes.items()}
    for (name, *index), key in parts:
        tables[name][tuple(index)] = cost[key]
    return dict(
        format=FORMAT, version=VERSION, input_size=list(lay.size),
        versions=dict(torch=torch.__version__),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        filter_multiplier=lay.f, stem_channels=list(lay.stem_channels),
        num_classes=cfg.model.decode_head.get('num_classes'),
        num_layers=num_layers, num_blocks=num_blocks, num_levels=n,
        primitives=list(lay.space.primitives),
        head_cells=[lay.low, lay.high], kind=kind, **record,
        **{name: t.tolist() for name, t in tables.items()})


def build_latency_table(cfg, size, num_layers, num_blocks, **kwargs):
    """:func:`build_table` of kind ``'latency'``."""
    return build_table(cfg, size, num_layers, num_blocks, kind='latency',
                       **kwargs)


def verify(cfg, table, size, num, seed=1):
    """Predicted vs counted (MACs) or measured (latency) cost of ``num``
    random genotypes: a dict of ``seed``, ``predicted``, ``counted`` or
    ``measured``, ``spearman`` and ``max_abs_diff`` (MACs) or
    ``max_rel_diff`` (``|predicted - measured| / measured``)."""
    # the space of the tables _Layout walks (4 levels)
    space = SearchSpace(num_layers=table.num_layers,
                        num_blocks=table.num_blocks)
    rng = np.random.default_rng(seed)
    genotypes = [sample_genotype(rng, space) for _ in range(num)]
    predicted = [table.predicted(g) for g in genotypes]
    if table.kind == 'macs':
        predicted = [int(round(p)) for p in predicted]
        actual = [count_network(cfg, g, size) for g in genotypes]
        name, diff = 'counted', dict(max_abs_diff=max(
            abs(p - c) for p, c in zip(predicted, actual)))
    else:
        dev = check_device(table.data.get('device_type', 'cpu'))
        x = torch.randn(1, 3, *size,
                        generator=torch.Generator().manual_seed(0))
        # all networks in the same interleaved rounds, as the table's parts
        actual = time_modules(
            [(SegmentorLogits(build_segmentor(static_cfg(cfg, g))).to(dev),
              (x.to(dev), )) for g in genotypes],
            table.data.get('repeats', DEFAULT_REPEATS),
            table.data.get('warmup', DEFAULT_WARMUP), dev)
        name, diff = 'measured', dict(max_rel_diff=max(
            abs(p - m) / m for p, m in zip(predicted, actual)))
    return dict({'seed': seed, 'predicted': predicted, name: actual},
                spearman=spearman(predicted, actual) if num > 1 else None,
                **diff)


def resolve_config(config):
    """Absolute path of a retrain config given as a path (relative to the
    CWD, the repo root or the installed package), as ``configs/``-relative
    or as ``mmseg::``; FileNotFoundError (one line) if there is none."""
    from .utils.configs import find_project_file
    found, _ = find_project_file(config)
    return os.path.abspath(found) if found else config_path(config)


def make_table(config, size, num_layers=None, num_blocks=None, kind='macs',
               device='cpu', repeats=DEFAULT_REPEATS, warmup=DEFAULT_WARMUP,
               threads=None, seed=0, num_verify=0, log=None):
    """The table of retrain config file ``config`` as the tool and
    ``arch_cost.build`` make it: L/B default to the config's genotype, the
    config is recorded (as given), ``threads`` pins torch's CPU threads
    while timing (restored after), ``num_verify`` adds ``verification``.
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
        data = build_table(cfg, size, num_layers, num_blocks, seed, kind,
                           device, repeats, warmup, log)
        data['config'] = config
        if num_verify:
            data['verification'] = verify(cfg, CostTable(data), size,
                                          num_verify, seed=seed + 1)
    finally:
        torch.set_num_threads(before)
    return data


# -- arch_cost -------------------------------------------------------------


def _is_int(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and \
        value >= minimum


def check_build(build, kind):
    """``arch_cost.build`` (how to make a missing table) with every key of
    ``kind`` (:data:`BUILD_KEYS`, :data:`LATENCY_KEYS`), defaults filled
    in; a one-line ValueError naming ``arch_cost.build.<key>``."""
    if not isinstance(build, dict):
        raise ValueError('arch_cost.build: expected dict(config=RETRAIN_'
                         'CONFIG, size=(H, W), num_layers=L, ...), got '
                         f'{type(build).__name__}')
    spec = dict(BUILD_KEYS, **(LATENCY_KEYS if kind == 'latency' else {}))
    key = next((k for k in build if k not in spec), None)
    if key is not None:
        raise ValueError(f'arch_cost.build.{key}: ' + (
            f"only for kind='latency' (kind is {kind!r})"
            if key in LATENCY_KEYS else
            f'unknown key; expected {", ".join(spec)}'))
    spec.update(build)
    config, size = spec['config'], spec['size']
    if not isinstance(config, str) or not config:
        raise ValueError('arch_cost.build.config: expected the path of the '
                         f'retrain config, got {config!r}')
    try:
        resolve_config(config)
    except FileNotFoundError as e:
        raise ValueError(f'arch_cost.build.config: {e}') from None
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(_is_int(v, 8) for v in size)):
        raise ValueError('arch_cost.build.size: expected (H, W), integers '
                         f'>= 8, got {size!r}')
    spec['size'] = tuple(size)
    for key, low in (('num_layers', 1), ('num_blocks', 1), ('repeats', 1),
                     ('warmup', 0), ('threads', 1)):
        value = spec.get(key)
        if value is not None and not _is_int(value, low):
            raise ValueError(f'arch_cost.build.{key}: expected an integer '
                             f'>= {low}, got {value!r}')
    if kind == 'latency':
        try:
            check_device(spec['device'])
        except ValueError as e:
            raise ValueError(f'arch_cost.build.device: {e}') from None
    return spec


def build_mismatch(data, spec, kind):
    """``'<field> <recorded> vs <asked>'`` for each thing table ``data``
    records other than ``arch_cost.build`` (``spec``) asks for."""
    def hw(v):
        return 'x'.join(map(str, v)) if isinstance(v, (list, tuple)) else v

    config = data.get('config')
    try:  # the same file, named otherwise
        if os.path.samefile(resolve_config(config),
                            resolve_config(spec['config'])):
            config = spec['config']
    except (FileNotFoundError, TypeError):
        pass
    fields = [('kind', repr(data.get('kind')), repr(kind)),
              ('size', hw(data.get('input_size')), hw(spec['size'])),
              ('config', config, spec['config'])]
    fields += [(k, data.get(k), spec[k]) for k in ('num_layers', 'num_blocks')]
    if kind == data.get('kind') == 'latency':  # measured here, so threads
        fields += [('device', data.get('device'),
                    device_name(torch.device(spec['device']))),
                   ('threads', data.get('threads'), spec['threads'])]
    return [f'{key} {recorded} vs {asked}'
            for key, recorded, asked in fields
            if asked is not None and recorded != asked]


class ArchCost:
    """The ``arch_cost`` option of the search loop: a budget penalty on
    the :func:`expected_cost`, ``'hinge'``: ``weight * max(0, cost / target
    - 1)`` (nothing below the target) or ``'log'``: ``weight * |log(cost /
    target)|`` (towards the target from both sides, scale-free).

    With ``build``, a missing ``table`` is made (once, by the main process)
    and an existing one must record what ``build`` asks for (config, size,
    kind, L/B given; for latency this device and the threads given), else
    it is refused: delete it to rebuild, or change ``table``.

    Args:
        kind (str): ``'macs'`` (multiply-adds) or ``'latency'`` (seconds).
        target (float): the budget, in the table's unit (multiply-adds or
            seconds per image).
        weight (float): >= 0; 0 logs the expected cost without a penalty.
        table (str): a table from ``tools/build_cost_table.py``.
        penalty (str): ``'hinge'`` or ``'log'``.
        build (dict, optional): how to make a missing ``table``
            (:func:`check_build`).

    Raises:
        ValueError: one line naming the bad ``arch_cost.<key>``.
    """

    KEYS = ('kind', 'target', 'weight', 'table', 'penalty', 'build')

    def __init__(self, kind=None, target=None, weight=None, table=None,
                 penalty='hinge', build=None):
        self.table = self._table(kind, target, weight, table, penalty, build)
        self.kind, self.target, self.weight = kind, float(target), float(
            weight)
        self.penalty_kind = penalty

    @staticmethod
    def _table(kind=None, target=None, weight=None, table=None,
               penalty='hinge', build=None, make=True):
        """Every check; the table, made first if missing and ``make``."""
        if kind not in KINDS:
            raise ValueError(f'arch_cost.kind: expected one of {KINDS}, got '
                             f'{kind!r}')
        for key, value, least in (('target', target, 'positive'),
                                  ('weight', weight, 'non-negative')):
            if not (isinstance(value, (int, float))
                    and not isinstance(value, bool) and math.isfinite(value)
                    and (value > 0 or key == 'weight' and value == 0)):
                raise ValueError(f'arch_cost.{key}: expected a finite '
                                 f'{least} number, got {value!r}')
        if penalty not in PENALTIES:
            raise ValueError(f'arch_cost.penalty: expected one of '
                             f'{PENALTIES}, got {penalty!r}')
        if not isinstance(table, (str, os.PathLike)) or not table:
            raise ValueError('arch_cost.table: expected the path of a cost '
                             f'table, got {table!r}')
        spec = None if build is None else check_build(build, kind)
        if not os.path.isfile(table):
            if spec is None:
                raise ValueError(
                    f'arch_cost.table: cost table file {table!r} not found; '
                    'build it with tools/build_cost_table.py CONFIG --size '
                    'HxW --out PATH, or give arch_cost.build=dict(config=, '
                    'size=) to build it at the start of the search')
            if not make:
                return None
            _build_file(table, spec, kind)
        try:
            loaded = CostTable.load(table)
        except ValueError as e:
            raise ValueError(f'arch_cost.table: {e}') from None
        diffs = [] if spec is None else build_mismatch(loaded.data, spec,
                                                       kind)
        if diffs:
            raise ValueError(
                f'arch_cost.table: {table} is not the table arch_cost.build '
                f'asks for ({"; ".join(diffs)}: table vs build); delete the '
                'file to rebuild it, or change arch_cost.table')
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
        if cfg is None or isinstance(cfg, cls):
            return cfg
        return cls(**cls._kwargs(cfg))

    @classmethod
    def check_cfg(cls, cfg):
        """Check ``arch_cost`` without building a table (for
        ``tools/search.py``, before the Runner makes the work_dir): the
        values, ``build``, and an existing table's kind and record."""
        if cfg is not None and not isinstance(cfg, cls):
            cls._table(**cls._kwargs(cfg), make=False)

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


def _build_file(path, spec, kind):
    """Make the table ``spec`` describes and write it to ``path``
    atomically (the main process builds it; the others wait for it)."""
    from mmengine.dist import barrier, is_main_process
    from mmengine.logging import print_log
    log = functools.partial(print_log, logger='current')
    lock = table_lock(path).acquire(wait=True, on_wait=lambda holder: log(
        f'arch_cost: waiting for {holder} to finish building {path}')) \
        if is_main_process() else None
    if lock is not None and os.path.isfile(path):
        log(f'arch_cost: {path} was built by the run waited for; reusing it')
    elif lock is not None:
        h, w = spec['size']
        log(f'arch_cost: {path} not found: building the {kind} cost table '
            f'of {spec["config"]} at {h}x{w} (once; later runs reuse it)')
        options = {k: spec[k] for k in LATENCY_KEYS if k in spec}
        atomic_write_json(path, make_table(
            spec['config'], spec['size'], spec['num_layers'],
            spec['num_blocks'], kind, log=log, **options))
        log(f'arch_cost: cost table written to {path}')
    if lock is not None:
        lock.release()
    barrier()


__all__ = ['ArchCost', 'build_table', 'build_latency_table', 'make_table',
           'verify', 'time_modules', 'count_network', 'check_device',
           'device_name']
