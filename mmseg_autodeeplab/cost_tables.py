"""Building cost tables (:mod:`..arch_cost`): ``tools/build_cost_table.py``
and ``arch_cost.build`` both call :func:`make_table`.

One pipeline, each step handing data to the next:

1. :func:`make_table` resolves and loads the retrain config, once;
2. :class:`Layout` reads from it what the static networks are made of
   (level sizes, head cells, widths, the head's config) and names, in
   :meth:`Layout.parts`, the part behind every entry of a table: the stem, a
   cell's fixed part, an operator, the head;
3. :func:`build_table` measures each DISTINCT part once (many entries share
   one: same op, channels, stride, input size): ``macs`` from shapes
   (operators, fixed parts) or mmengine's counter (stem, head), ``latency``
   by timing (:func:`time_modules`), and fills the table;
(``tools/analysis/verify_cost_table.py`` compares a table's prediction with
counted or timed static networks of random genotypes.)
"""
import copy
import datetime
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .analysis import SegmentorLogits, build_segmentor, count_macs, \
    load_config
from .arch_cost import (FORMAT, LATENCY_DEFAULTS, VERSION, fixed_cell_cost,
                        op_cost)
from .search_space import SearchSpace, build_op, level_sizes
from .utils.devices import check_device, device_name

# -- 2. the layout -----------------------------------------------------------


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


class Layout:
    """The static networks of a retrain config for a searched space, read
    from the config once: the size of each level, the head cells, the
    widths, and the parts a table is made of.

    Args:
        cfg (Config): a retrain config with an ``AutoDeepLabNet`` backbone,
            read here only (a copy of its ``model`` builds the head and
            whole networks, :meth:`network`).
        size (tuple[int]): input ``(H, W)``.
        num_layers, num_blocks (int, optional): the searched space's L and
            B; by default the config's genotype's.

    Raises:
        ValueError: one line naming the config key it cannot build.
    """

    def __init__(self, cfg, size, num_layers=None, num_blocks=None):
        from .models.backbones.autodeeplab_net import (AutoDeepLabStem,
                                                       load_genotype)
        bb = cfg.model.backbone
        if bb.get('type') not in ('AutoDeepLabNet', 'mmseg.AutoDeepLabNet'):
            raise ValueError('model.backbone.type: the cost table is for '
                             'AutoDeepLabNet retrain configs, got '
                             f'{bb.get("type")}')
        if cfg.model.get('neck'):
            raise ValueError('model.neck: not supported by the cost table')
        if num_layers is None or num_blocks is None:
            space = load_genotype(bb.genotype).search_space
            num_layers = num_layers or space.num_layers
            num_blocks = num_blocks or space.num_blocks
        self.space = SearchSpace(num_layers=num_layers, num_blocks=num_blocks)
        # the image, the stem's conv1 (/2), then the levels (/4 ... /32)
        sizes = level_sizes(*size, self.space.num_levels + 2)
        self.size, self.stem_size, self.sizes = sizes[0], sizes[1], sizes[2:]
        indices = tuple(bb.get('out_indices', (2, -1)))
        if len(indices) != 2:
            raise ValueError('model.backbone.out_indices: the cost table '
                             'needs (low-level cell, ASPP cell), got '
                             f'{indices}')
        if not all(-num_layers <= i < num_layers for i in indices):
            raise ValueError(f'model.backbone.out_indices: {indices} out of '
                             f'range for {num_layers} layers')
        self.low, self.high = (i % num_layers for i in indices)
        self.f = bb.filter_multiplier
        self.stem_channels = tuple(bb.get('stem_channels', (64, 64, 128)))
        self.norm_cfg = bb.get('norm_cfg', dict(type='BN',
                                                requires_grad=True))
        self.model_cfg = copy.deepcopy(cfg.model)  # for whole networks
        self.num_classes = cfg.model.decode_head.get('num_classes')
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
            head_cfg = self.model_cfg.decode_head.copy()
            head_cfg.c1_in_channels, head_cfg.in_channels = (
                self.channels(j) for j in args)
            last = self.space.num_layers - 1
            relu_input = 1 if self.high == last else (
                0 if self.low == last else None)
            module = HeadWithLastReLU(MODELS.build(head_cfg), relu_input)
            inputs = (tuple(make(1, self.channels(j), *self.sizes[j])
                            for j in args), )
        return revert_sync_batchnorm(module).eval(), inputs

    def network(self, genotype):
        """The whole static network of ``genotype`` (image -> logits, eval
        mode), the head fed by its Cell_low / Cell_high levels."""
        from mmengine.config import ConfigDict
        model = copy.deepcopy(self.model_cfg)
        model.backbone.genotype = genotype.to_dict()
        model.decode_head.c1_in_channels = self.channels(
            genotype.path[self.low])
        model.decode_head.in_channels = self.channels(
            genotype.path[self.high])
        return SegmentorLogits(build_segmentor(ConfigDict(
            model=model))).eval()


# -- 3. measuring each part once, and the table ------------------------------


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


def _count_parts(layout, keys, log):
    """``({key: multiply-adds}, record)`` of the distinct parts."""
    h, w = layout.size
    log(f'cost table: counting multiply-adds at {h}x{w}')
    record = dict(
        unit='multiply-adds (mmengine counter, eval mode, image -> logits)',
        device=f'{device_name("cpu")}; multiply-adds do not depend on the '
        'device')
    return {key: layout.macs(key) for key in keys}, record


def _time_parts(layout, keys, entries, dev, repeats, warmup, seed, log):
    """``({key: seconds}, record)``: the distinct parts timed together
    (:func:`time_modules`), on inputs drawn from ``seed``."""
    threads, where = torch.get_num_threads(), device_name(dev)
    log(f'cost table: timing {len(keys)} distinct modules for {entries} '
        f'entries on {where}, {threads} threads, {warmup} warm-up + '
        f'{repeats} timed runs each')
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    items = [layout.module(key, lambda *shape: torch.randn(
        *shape, generator=gen).to(dev)) for key in keys]
    seconds = time_modules([(m.to(dev), x) for m, x in items], repeats,
                           warmup, dev)
    log(f'cost table: timed {len(keys)} modules in {repeats} interleaved '
        f'rounds ({time.perf_counter() - start:.0f} s)')
    cost = dict(zip(keys, seconds))
    bad = [k for k, v in cost.items() if not (math.isfinite(v) and v > 0)]
    if bad:  # a zero would make that choice free; never silently
        raise ValueError(f'cost table: module {bad[0]} timed as '
                         f'{cost[bad[0]]!r} s')
    record = dict(
        unit='seconds (median of timed runs after warm-up; batch 1, eval '
        'mode, torch.no_grad, image -> logits)',
        device=where, device_type=dev.type, threads=threads,
        repeats=repeats, warmup=warmup, timed_modules=len(keys))
    return cost, record


def build_table(layout, kind='macs', device=LATENCY_DEFAULTS['device'],
                repeats=LATENCY_DEFAULTS['repeats'],
                warmup=LATENCY_DEFAULTS['warmup'], seed=0, log=None):
    """The cost table (a JSON-ready dict) of a :class:`Layout`: each
    distinct part measured once, then every entry filled from its part.

    Args:
        layout (Layout): what the table is made of.
        kind (str): ``'macs'`` or ``'latency'``: timed on ``device``
            (``'cpu'``, ``'cuda[:i]'``; torch's current CPU threads),
            ``warmup`` runs and ``repeats`` rounds (:func:`time_modules`).
        seed (int): seeds the inputs of the timed modules.
        log (callable, optional): progress messages (one line each).
    """
    dev = check_device(device)
    log = log or (lambda msg: None)
    parts = list(layout.parts())
    keys = list(dict.fromkeys(key for _, key in parts))
    if kind == 'macs':
        cost, record = _count_parts(layout, keys, log)
    else:
        cost, record = _time_parts(layout, keys, len(parts), dev, repeats,
                                   warmup, seed, log)
    space = layout.space
    L, n, E = space.num_layers, space.num_levels, sum(
        b + 2 for b in range(space.num_blocks))
    shapes = dict(stem=(), cells=(L, n, n, n),
                  edges=(L, n, n, E, len(space.primitives)), head=(n, n))
    dtype = np.int64 if kind == 'macs' else np.float64
    tables = {name: np.zeros(shape, dtype) for name, shape in shapes.items()}
    for (name, *index), key in parts:
        tables[name][tuple(index)] = cost[key]
    return dict(
        format=FORMAT, version=VERSION, input_size=list(layout.size),
        versions=dict(torch=torch.__version__),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        filter_multiplier=layout.f, stem_channels=list(layout.stem_channels),
        num_classes=layout.num_classes, num_layers=L,
        num_blocks=space.num_blocks, num_levels=n,
        primitives=list(space.primitives),
        head_cells=[layout.low, layout.high], kind=kind, **record,
        **{name: t.tolist() for name, t in tables.items()})


# -- 1. the entry ------------------------------------------------------------


def make_table(path, size, num_layers=None, num_blocks=None, kind='macs',
               device=LATENCY_DEFAULTS['device'],
               repeats=LATENCY_DEFAULTS['repeats'],
               warmup=LATENCY_DEFAULTS['warmup'], threads=None, seed=0,
               log=None, name=None):
    """The table of the retrain config file at ``path``, as the tool and
    ``arch_cost.build`` make it: loaded here, once (:class:`Layout`: L/B
    default to its genotype's), recorded as ``name`` (default ``path``: the
    config as the user gave it), ``threads`` pins torch's CPU threads while
    measuring (restored after).

    Args:
        path (str): the config file, already resolved by the caller
            (:func:`~mmseg_autodeeplab.utils.configs.resolve_config`).
    """
    layout = Layout(load_config(path), size, num_layers, num_blocks)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        data = build_table(layout, kind, device, repeats, warmup, seed, log)
        data['config'] = name or path
    finally:
        torch.set_num_threads(before)
    return data


__all__ = ['Layout', 'make_table', 'build_table', 'time_modules']
