"""The one-shot Auto-DeepLab network: every sub-network IS an
:class:`AutoDeepLabNet`, run at its own cost.

One set of weights per search space, shared where shapes match: the stem;
per (layer, level) one operator per (block, branch or input, primitive)
and one 1×1 projection per source of ``H(l-1)``/``H(l-2)``.
``activate(genotype)`` assembles the genotype's :class:`AutoDeepLabNet`
from those very modules (its own cell and forward; no copy, no masking):
a step runs, and its optimizer and BN statistics touch, only that network.
A stride-2 use of an operator shares every weight with its stride-1 use
through a view (:func:`strided`); only the skip's stride-2 1×1 conv has
its own weights.
"""
import copy
import inspect

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...search_space import (PRIMITIVES, ZERO_OP, GenotypeError, SearchSpace,
                             build_op, max_level)
from .autodeeplab_net import AutoDeepLabNet, CellLayers, load_genotype


#: the :class:`AutoDeepLabNet` arguments a one-shot takes (its sub-networks'
#: settings)
NET_KEYS = ('filter_multiplier', 'in_channels', 'stem_channels', 'norm_cfg',
            'out_indices', 'drop_path_prob', 'with_cp')


def strided(module):
    """``module`` at stride 2: a view sharing every parameter, buffer and
    sub-layer, with a shallow copy of its first strided layer (a conv or a
    pool: stride is a plain attribute; the copy shares the parameter dict)."""
    twin = copy.copy(module)
    if hasattr(module, 'stride'):
        twin.stride = (2, 2) if isinstance(module.stride, tuple) else 2
        return twin
    twin.__dict__['_modules'] = dict(module._modules)
    name = next(n for n, m in module.named_children()
                if any(hasattr(s, 'stride') for s in m.modules()))
    twin._modules[name] = strided(module._modules[name])
    return twin


def _sources(layer, num_levels, offset):
    """Sources of the input ``offset`` layers back of a cell at ``layer``:
    the stem's conv1 (``'stem1'``), its output (``'stem'``) or levels."""
    back = layer - offset
    return ['stem1'] if back < -1 else ['stem'] if back == -1 else [
        str(j) for j in range(max_level(back, num_levels) + 1)]


class OneShotCell(nn.Module):
    """The shared layers of one cell position (``layer``, ``level``).

    ``ops['{block}_{slot}_{primitive}']`` (stride-1 form; the skip's
    stride-2 1×1 conv as ``..._skip_connect_s2``; ``slot`` the input, or
    the branch with ``op_sharing='branch'``), ``preprocess1[source]`` and
    ``preprocess0[source]`` per source of ``H(l-1)`` and ``H(l-2)``.
    """

    def __init__(self, layer, level, num_blocks, primitives, channels,
                 widths, num_levels, norm_cfg, op_sharing='branch'):
        super().__init__()
        self.by_branch = op_sharing == 'branch'
        self.ops = nn.ModuleDict()
        for b in range(num_blocks):
            for slot in range(2 if self.by_branch else b + 2):
                for name in primitives:
                    if name != ZERO_OP:
                        self.ops[f'{b}_{slot}_{name}'] = build_op(
                            name, channels, 1, norm_cfg)
                # a branch may read H(l-2)/H(l-1) (stride 2) from any slot
                if (self.by_branch or slot < 2) and level > 0 and \
                        'skip_connect' in primitives:
                    self.ops[f'{b}_{slot}_skip_connect_s2'] = build_op(
                        'skip_connect', channels, 2, norm_cfg)
        # only the sources a valid path can bring here (at most one level
        # away for H(l-1), two for H(l-2))
        self.preprocess1, self.preprocess0 = (nn.ModuleDict({
            src: CellLayers(norm_cfg).preprocess(which, widths[src],
                                                 channels)
            for src in _sources(layer, num_levels, offset)
            if src.startswith('stem') or abs(int(src) - level) <= offset})
            for which, offset in ((1, 1), (0, 2)))
        self._strided = {}  # views, not weights: kept out of the state

    def bind(self, prev, prev_prev):
        return _BoundCell(self, prev, prev_prev)


class _BoundCell(CellLayers):
    """:class:`CellLayers` answering with one :class:`OneShotCell`'s
    layers for given input sources."""

    def __init__(self, shared, prev, prev_prev):
        self.shared, self.sources = shared, (prev_prev, prev)

    def preprocess(self, which, in_channels, channels):
        return getattr(self.shared, f'preprocess{which}')[self.sources[which]]

    def op(self, block, branch, index, name, channels, stride):
        slot = branch if self.shared.by_branch else index
        key = f'{block}_{slot}_{name}'
        if stride == 1:
            return self.shared.ops[key]
        if name == 'skip_connect':
            return self.shared.ops[key + '_s2']
        if key not in self.shared._strided:
            self.shared._strided[key] = strided(self.shared.ops[key])
        return self.shared._strided[key]


@MODELS.register_module()
class AutoDeepLabOneShot(BaseModule):
    """Weight-sharing one-shot network over a search space of
    :class:`AutoDeepLabNet`.

    Args:
        num_layers (int): L.
        num_blocks (int): B.
        primitives (Sequence[str]): the operators (α's column order);
            ``'none'`` is never built.
        op_sharing (str): ``'branch'``: one operator per (block, branch,
            primitive); ``'edge'``: per (block, input, primitive) (the
            two are compared in docs/oneshot.md).
        genotype (str | dict | Genotype, optional): activated at build.
        init_cfg (dict, optional): mmengine init config.
        **net_kwargs: the sub-networks' :class:`AutoDeepLabNet` settings
            (:data:`NET_KEYS`: ``filter_multiplier``, ``stem_channels``,
            ``norm_cfg``, ...), with its defaults.

    Returns (forward, after :meth:`activate`):
        tuple[Tensor]: what the active genotype's :class:`AutoDeepLabNet`
        returns.

    Example:
        >>> net = AutoDeepLabOneShot(num_layers=12, num_blocks=5,
        ...                          filter_multiplier=4)
        >>> net.activate('configs/genotypes/autodeeplab_paper.json')
        >>> [tuple(o.shape) for o in net(torch.rand(1, 3, 97, 97))]
        [(1, 20, 25, 25), (1, 40, 13, 13)]
    """

    def __init__(self, num_layers=12, num_blocks=5, primitives=PRIMITIVES,
                 op_sharing='branch', genotype=None, init_cfg=None,
                 **net_kwargs):
        super().__init__(init_cfg=init_cfg)
        try:
            self.space = SearchSpace(num_layers, num_blocks,
                                     tuple(primitives))
        except GenotypeError as e:
            raise ValueError(f'AutoDeepLabOneShot: {e}') from None
        if op_sharing not in ('edge', 'branch'):
            raise ValueError(f'AutoDeepLabOneShot: op_sharing={op_sharing!r};'
                             " expected 'edge' or 'branch'")
        # the static network's own defaults: its sub-networks are built so
        params = inspect.signature(AutoDeepLabNet).parameters
        unknown = sorted(set(net_kwargs) - set(NET_KEYS))
        if unknown:
            raise TypeError(f'AutoDeepLabOneShot: unexpected argument '
                            f'{unknown[0]!r}')
        self.net_kwargs = {k: net_kwargs.get(k, params[k].default)
                           for k in NET_KEYS}
        filter_multiplier, in_channels, stem_channels, norm_cfg = (
            self.net_kwargs[k] for k in NET_KEYS[:4])
        levels = self.space.num_levels
        # build (and validate) the stem through the static network's code
        self.stem = CellLayers(norm_cfg).stem(in_channels, stem_channels)
        widths = dict(stem1=stem_channels[1], stem=stem_channels[2], **{
            str(j): num_blocks * filter_multiplier * 2**j
            for j in range(levels)})
        self.cells = nn.ModuleList(nn.ModuleDict({
            str(level): OneShotCell(layer, level, num_blocks,
                                    self.space.primitives,
                                    filter_multiplier * 2**level, widths,
                                    levels, norm_cfg, op_sharing)
            for level in range(max_level(layer, levels) + 1)})
            for layer in range(num_layers))
        self.drop_path_progress = 1.
        self._active = None  # the active AutoDeepLabNet (see activate)
        if genotype is not None:
            self.activate(genotype)

    def check_genotype(self, genotype):
        """The genotype as a :class:`Genotype`; one-line
        :class:`GenotypeError` if it lies outside this one-shot's space."""
        g = load_genotype(genotype)
        space, mine = g.search_space, self.space
        for key in ('num_layers', 'num_blocks', 'strides'):
            if getattr(space, key) != getattr(mine, key):
                raise GenotypeError(
                    f'genotype outside the one-shot space: {key} '
                    f'{getattr(space, key)} (one-shot: {getattr(mine, key)})')
        ops = sorted({op for block in g.cell.blocks for _, op in block
                      if op not in mine.primitives})
        if ops:
            raise GenotypeError(
                f'genotype outside the one-shot space: operator(s) {ops} '
                f'not in its primitives {list(mine.primitives)}')
        return g

    def build_subnet(self, genotype):
        """The genotype's :class:`AutoDeepLabNet` made of THIS network's
        layers (shared tensors: training it trains the one-shot)."""
        g = self.check_genotype(genotype)
        net = AutoDeepLabNet(g, layers=_SharedLayers(self), **self.net_kwargs)
        net.set_drop_path_progress(self.drop_path_progress)
        return net.train(self.training)

    def activate(self, genotype):
        """Make ``genotype`` the network :meth:`forward` runs."""
        # a plain attribute, not a child: its layers are already ours
        self.__dict__['_active'] = self.build_subnet(genotype)

    @property
    def genotype(self):
        """The active :class:`Genotype` (None before :meth:`activate`)."""
        return None if self._active is None else self._active.genotype

    def subnet(self, genotype=None):
        """An independent :class:`AutoDeepLabNet` of ``genotype`` (default:
        the active one) holding copies of the inherited weights."""
        shared = self.build_subnet(genotype or self.genotype)
        net = AutoDeepLabNet(shared.genotype, **self.net_kwargs)
        net.load_state_dict(shared.state_dict(), strict=True)
        return net.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        if self._active is not None:
            self._active.train(mode)
        return self

    def set_drop_path_progress(self, progress):
        self.drop_path_progress = min(max(float(progress), 0.), 1.)
        if self._active is not None:
            self._active.set_drop_path_progress(progress)

    def forward(self, x):
        if self._active is None:
            raise RuntimeError('AutoDeepLabOneShot: no active sub-network; '
                               'call activate(genotype) first')
        return self._active(x)


class _SharedLayers(CellLayers):
    """:class:`CellLayers` of a one-shot network: its stem and cells."""

    def __init__(self, oneshot):
        self.oneshot = oneshot

    def stem(self, in_channels, stem_channels):
        return self.oneshot.stem

    def cell(self, layer, level, prev, prev_prev):
        return self.oneshot.cells[layer][str(level)].bind(prev, prev_prev)


def activate_subnet(model, genotype):
    """Activate ``genotype`` in a segmentor (``model.backbone``, an
    :class:`AutoDeepLabOneShot`, and a head with ``activate(levels)``)."""
    backbone = model.backbone
    backbone.activate(genotype)
    if hasattr(model.decode_head, 'activate'):
        path, net = backbone.genotype.path, backbone._active
        model.decode_head.activate(tuple(path[i] for i in net.out_indices))


def subnet_state_dict(model):
    """The active sub-network's state as the decoded config's segmentor
    holds it (``backbone.*`` of :class:`AutoDeepLabNet`, the head's
    :class:`AutoDeepLabV3PlusHead` keys): what its ``load_from`` loads."""
    state = {}
    for name, child in model.named_children():
        part = child.subnet().state_dict() if name == 'backbone' else \
            getattr(child, 'subnet_state_dict', child.state_dict)()
        state.update({f'{name}.{k}': v for k, v in part.items()})
    return state
