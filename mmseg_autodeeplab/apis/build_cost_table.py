"""``tools/build_cost_table.py``: the multiply-adds lookup table of a
retrain config, for a budgeted search (``train_cfg.arch_cost``).

The table (:mod:`mmseg_autodeeplab.arch_cost`) holds, for a search space of
``L`` layers and ``B`` blocks, the cost of every (edge, operator) choice at
every trellis node of the STATIC network (``AutoDeepLabNet`` + the config's
decode head) at the retrain input size, counted as ``tools/benchmark.py``
counts (mmengine's counter, eval mode, image -> logits). Stem and head are
counted by the counter itself on the built modules; the cells' costs come
from shapes (the tests pin them to the counter). ``--verify N`` then builds
N random genotypes, counts each whole network and records the table's
prediction against the count (Spearman, largest difference).
"""
import argparse
import datetime
import platform

import numpy as np
import torch

from ..analysis import (OneLineParser, SegmentorLogits, build_segmentor,
                        config_path, count_macs, hw_type, int_at_least,
                        load_config)
from ..arch_cost import FORMAT, VERSION, CostTable, cell_costs, spearman
from ..search_space import SearchSpace
from ..utils import atomic_write_json, exit_with_error


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


def count_network(cfg, genotype, size):
    """mmengine's multiply-adds of the built static network (logits)."""
    model = SegmentorLogits(build_segmentor(static_cfg(cfg, genotype))).eval()
    return count_macs(model, torch.zeros(1, 3, *size))


def _bn_factor(module):
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            return 2 if m.affine else 1
    raise ValueError('model.backbone.norm_cfg: the cost table expects BN')


def build_table(cfg, size, num_layers, num_blocks, num_levels=4, seed=0):
    """The cost table (a JSON-ready dict) of retrain config ``cfg``.

    Args:
        cfg (Config): a retrain config with an ``AutoDeepLabNet`` backbone.
        size (tuple[int]): input ``(H, W)``.
        num_layers, num_blocks (int): the searched space's L and B.
        num_levels (int): levels of the space.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS

    from .search_vs_random import sample_genotype
    bb = cfg.model.backbone
    if bb.get('type') not in ('AutoDeepLabNet', 'mmseg.AutoDeepLabNet'):
        raise ValueError('model.backbone.type: the cost table is for '
                         'AutoDeepLabNet retrain configs, got '
                         f'{bb.get("type")}')
    if cfg.model.get('neck'):
        raise ValueError('model.neck: not supported by the cost table')
    space = SearchSpace(num_layers=num_layers, num_blocks=num_blocks,
                        strides=tuple(4 * 2**j for j in range(num_levels)))
    rng = np.random.default_rng(seed)
    seg = build_segmentor(static_cfg(cfg, sample_genotype(rng, space))).eval()
    net = seg.backbone
    bn = _bn_factor(net)
    h, w = size
    stem_size = ((h - 1) // 2 + 1, (w - 1) // 2 + 1)
    sizes = [((stem_size[0] - 1) // 2 + 1, (stem_size[1] - 1) // 2 + 1)]
    for _ in range(num_levels - 1):
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    low, high = _head_cells(bb, num_layers)
    f = bb.filter_multiplier
    stem_channels = tuple(bb.get('stem_channels', (64, 64, 128)))
    cells, edges = cell_costs(sizes, stem_size, stem_channels, f, num_layers,
                              num_blocks, space.primitives, max(low, high),
                              bn)
    stem = count_macs(net.stem, torch.zeros(1, 3, h, w))
    head = [[0] * num_levels for _ in range(num_levels)]
    for a in range(min(low + 1, num_levels - 1) + 1):
        for b in range(min(high + 1, num_levels - 1) + 1):
            if abs(a - b) > abs(high - low):
                continue
            head_cfg = cfg.model.decode_head.copy()
            head_cfg.c1_in_channels = num_blocks * f * 2**a
            head_cfg.in_channels = num_blocks * f * 2**b
            module = revert_sync_batchnorm(MODELS.build(head_cfg)).eval()
            x = tuple(torch.zeros(1, num_blocks * f * 2**j, *sizes[j])
                      for j in (a, b))
            head[a][b] = count_macs(module, x)
    return dict(
        format=FORMAT, version=VERSION, kind='macs',
        unit='multiply-adds (mmengine counter, eval mode, image -> logits)',
        input_size=[h, w],
        device=f'cpu ({platform.processor() or platform.machine()}); '
        'multiply-adds do not depend on the device',
        versions=dict(torch=torch.__version__),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        filter_multiplier=f, stem_channels=list(stem_channels),
        num_classes=cfg.model.decode_head.get('num_classes'),
        num_layers=num_layers, num_blocks=num_blocks, num_levels=num_levels,
        primitives=list(space.primitives), head_cells=[low, high],
        stem=stem, cells=cells, edges=edges, head=head)


def verify(cfg, table, size, num, seed=1):
    """Predicted vs counted cost of ``num`` random genotypes.

    Returns:
        dict: ``predicted``, ``counted`` (lists), ``spearman``,
        ``max_abs_diff``, ``seed``.
    """
    from .search_vs_random import sample_genotype
    space = SearchSpace(num_layers=table.num_layers,
                        num_blocks=table.num_blocks,
                        strides=tuple(4 * 2**j
                                      for j in range(table.num_levels)))
    rng = np.random.default_rng(seed)
    predicted, counted = [], []
    for _ in range(num):
        g = sample_genotype(rng, space)
        predicted.append(int(round(table.predicted(g))))
        counted.append(count_network(cfg, g, size))
    diff = max(abs(p - c) for p, c in zip(predicted, counted))
    return dict(seed=seed, predicted=predicted, counted=counted,
                spearman=spearman(predicted, counted) if num > 1 else None,
                max_abs_diff=diff)


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split('\n\n')[0],
                           formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config', help='retrain config (AutoDeepLabNet)')
    parser.add_argument('--size', type=hw_type(8), default=(1024, 2048),
                        help='input HxW of the retrained network '
                        '(default 1024x2048, as tools/benchmark.py)')
    parser.add_argument('--num-layers', type=int_at_least(1),
                        help="L of the search (default: the config's "
                        'genotype)')
    parser.add_argument('--num-blocks', type=int_at_least(1),
                        help="B of the search (default: the config's "
                        'genotype)')
    parser.add_argument('--verify', type=int_at_least(0), default=0,
                        metavar='N', help='count N random genotypes and '
                        'record prediction vs count in the table')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='output JSON')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(config_path(args.config))
        layers, blocks = args.num_layers, args.num_blocks
        if layers is None or blocks is None:
            from ..models.backbones.autodeeplab_net import load_genotype
            space = load_genotype(cfg.model.backbone.genotype).search_space
            layers = layers or space.num_layers
            blocks = blocks or space.num_blocks
        data = build_table(cfg, args.size, layers, blocks, seed=args.seed)
        data['config'] = args.config
        if args.verify:
            data['verification'] = verify(cfg, CostTable(data), args.size,
                                          args.verify, seed=args.seed + 1)
    except (ValueError, FileNotFoundError) as e:
        exit_with_error(' '.join(str(e).split()))
    atomic_write_json(args.out, data)
    gm = data['stem'] / 1e9
    print(f'cost table ({layers} layers, {blocks} blocks, '
          f'{args.size[0]}x{args.size[1]}) written to {args.out}; stem '
          f'{gm:.3f} GMACs')
    v = data.get('verification')
    if v:
        print(f'verify: {args.verify} random genotypes, Spearman(predicted, '
              f'counted) = {v["spearman"]}, largest |predicted - counted| '
              f'= {v["max_abs_diff"]} MACs (counted '
              f'{min(v["counted"]) / 1e9:.3f}-{max(v["counted"]) / 1e9:.3f} '
              'GMACs)')
    return 0
