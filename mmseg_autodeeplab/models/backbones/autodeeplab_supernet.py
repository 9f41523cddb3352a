"""The Auto-DeepLab search supernet (cell-level α, network-level β).

Shape vocabulary (input ``(N, 3, H, W)``):

* level ``j`` has downsample rate ``s = 4 * 2**j`` and size ``ceil`` of the
  previous level's (``h_0 = ceil(ceil(H/2)/2)``); a node there outputs
  ``B * F * 2**j`` channels (``B*F*s/4`` in the paper's notation);
* α: ``(E, P)``, ``E = 2 + 3 + ... + (B + 1)`` edges, SHARED by every cell;
* β: ``(L, levels, 3)`` raw logits (layout in :mod:`...search_space.decode`).
"""
import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...search_space import (PRIMITIVES, ZERO_OP, SearchSpace, build_op,
                             check_op_names, level_sizes, max_level,
                             normalize_betas, num_edges)
from ...search_space.primitives import ReLUConvBN, build_norm
from ...utils.checks import is_integer
from ..utils import fused_edges, fused_form, relu_conv_norm
from ..utils.fused_edges import edge_scales, preprocess
from ..utils.stacked_bn import RunningStatUpdates

#: the two implementations of the same supernet (see :class:`SearchCell`)
IMPLS = ('per_edge', 'fused')
#: BN eps / momentum of TF's DeepLab backbones (decay 0.9997); PyTorch's
#: defaults are 1e-5 / 0.1
TF_BN = dict(eps=1e-3, momentum=3e-4)


def check_supernet_args(num_layers=12, num_blocks=5, filter_multiplier=8,
                        primitives=PRIMITIVES, num_levels=4):
    """Raise a one-line ``ValueError`` for a search space the supernet lacks
    (also called by ``tools/search.py`` before the work_dir exists)."""
    for value, name in ((num_layers, 'num_layers'),
                        (num_blocks, 'num_blocks'),
                        (filter_multiplier, 'filter_multiplier'),
                        (num_levels, 'num_levels')):
        if not is_integer(value, 1):
            raise ValueError(f'AutoDeepLabSupernet: {name} must be a '
                             f'positive integer, got {value!r}')
    if num_layers < num_levels - 1:
        raise ValueError(
            f'AutoDeepLabSupernet: num_layers={num_layers} is too small for '
            f'the last layer to reach all {num_levels} levels; expected at '
            f'least {num_levels - 1}')
    check_op_names(primitives, 'AutoDeepLabSupernet.primitives')
    if not [p for p in primitives if p != ZERO_OP]:
        raise ValueError('AutoDeepLabSupernet.primitives: needs at least '
                         'one operator other than the zero operator')


class MixedOp(nn.Module):
    """A softmax(α)-weighted sum of every non-zero operator on one edge
    (the zero operator adds nothing, so it is never computed).

    ``drop_prob``/``dropped`` (set by
    :meth:`AutoDeepLabSupernet.set_op_dropout`): in training mode the
    outputs of the ``dropped`` operators go through dropout (P-DARTS's
    remedy for parameter-free operators winning by default).
    """

    def __init__(self, channels, primitives, norm_cfg):
        super().__init__()
        self.index = [k for k, p in enumerate(primitives) if p != ZERO_OP]
        self.ops = nn.ModuleList(
            build_op(primitives[k], channels, 1, norm_cfg) for k in self.index)
        self.fused = [fused_form(op) for op in self.ops]
        self.drop_prob = 0.0
        self.dropped = [False] * len(self.index)

    def forward(self, x, weights):  # weights: the (P,) softmax(α) row
        out = None
        for k, op, drop in zip(self.index, self.ops, self.dropped):
            y = op(x)
            if drop and self.drop_prob > 0 and self.training:
                y = F.dropout(y, self.drop_prob, True)
            y = weights[k] * y
            out = y if out is None else out + y
        return out


class SearchCell(nn.Module):
    """One supernet cell: B blocks over 2 + 3 + ... + (B + 1) mixed edges.

    Node ``(l, j)``'s cell runs on each of its ``k`` (1-3) incoming H(l-1)
    inputs with the same H(l-2). Two implementations of the same
    mathematics, pinned to each other in float64 by
    ``tests/test_models/test_supernet_fast_paths.py``:

    * ``'per_edge'``, the reference: the cell applied to each input
      separately, every edge its own modules, plain BN;
    * ``'fused'``: the k inputs stacked along the batch axis and run ONCE
      (BN statistics kept per input), H(l-2)'s branches once for all k, and
      all edges leaving one state together (:func:`~..utils.fused_edges`).

    Args:
        channels (int): per-block channels ``C = F * 2**level``.
        prev_channels, prev_prev_channels (int): channels of the resampled
            H(l-1) and of H(l-2).
        num_blocks (int): B.
        primitives (Sequence[str]): operator names (α's columns).
        norm_cfg (dict): the op norm (``BN`` with ``affine=False``).
        impl (str): ``'fused'`` or ``'per_edge'``.
    """

    def __init__(self, channels, prev_channels, prev_prev_channels,
                 num_blocks, primitives, norm_cfg, impl='fused'):
        super().__init__()
        self.num_blocks, self.channels = num_blocks, channels
        self.impl = impl
        self.preprocess0 = ReLUConvBN(prev_prev_channels, channels, 1,
                                      norm_cfg=norm_cfg)
        self.preprocess1 = ReLUConvBN(prev_channels, channels, 1,
                                      norm_cfg=norm_cfg)
        self.edges = nn.ModuleList(
            MixedOp(channels, primitives, norm_cfg)
            for _ in range(num_edges(num_blocks)))

    def forward(self, prev_prev, prevs, weights, betas, update_stats=True):
        """Cell output ``(N, B*C, h, w)`` for each input, β-weighted, summed.

        Args:
            prev_prev (Tensor): H(l-2) at this node's size, ``(N, C'', h, w)``.
            prevs (list[Tensor]): the k resampled H(l-1), ``(N, C', h, w)``.
            weights (Tensor | list): softmax(α), ``(E, P)``, or (``'fused'``)
                its :meth:`edge_scales`, computed once per level.
            betas (Tensor): the k β weights of the incoming edges, ``(k,)``.
            update_stats (bool | RunningStatUpdates): False while gradient
                checkpointing recomputes; a ``RunningStatUpdates`` collects
                the running-statistics updates for later (``'fused'``
                only).
        """
        if self.impl == 'fused':
            return self._fused(prev_prev, prevs, weights, betas,
                               update_stats)
        out = None
        for beta, prev in zip(betas, prevs):
            y = beta * self._per_edge(prev_prev, prev, weights)
            out = y if out is None else out + y
        return out

    def _per_edge(self, prev_prev, prev, weights):
        states = [self.preprocess0(prev_prev), self.preprocess1(prev)]
        offset = 0
        for _ in range(self.num_blocks):
            out = None
            for k, h in enumerate(states):
                y = self.edges[offset + k](h, weights[offset + k])
                out = y if out is None else out + y
            offset += len(states)
            states.append(out)
        return torch.cat(states[2:], dim=1)

    def state_edges(self, i):
        """Indices (into α's rows) of the edges leaving state ``i`` (0:
        H(l-2), 1: H(l-1), i >= 2: block i - 2), in block order."""
        return [num_edges(b) + i
                for b in range(max(i - 1, 0), self.num_blocks)]

    def edge_scales(self, weights):
        """Per state ``i``, :func:`~..utils.fused_edges.edge_scales` of the
        edges leaving it (``weights``: softmax(α), ``(E, P)``): the same
        for every fused cell of this cell's channels."""
        return [edge_scales(self.edges[ids[0]], weights[ids], self.channels)
                for ids in map(self.state_edges, range(self.num_blocks + 1))]

    def _fused(self, prev_prev, prevs, weights, betas, update):
        # state i (0: H(l-2), 1: H(l-1), i >= 2: block i - 2) feeds blocks
        # max(i - 1, 0) .. B - 1; a block is complete once every state
        # before it is consumed. H(l-2) is one group repeated k times,
        # every other state k stacked groups.
        k, n = len(prevs), prev_prev.shape[0]
        states = [
            preprocess(prev_prev, self.preprocess0, 1, k, update),
            preprocess(torch.cat(prevs, dim=0), self.preprocess1, k, 1,
                       update)]
        partial = [None] * self.num_blocks
        if torch.is_tensor(weights):  # else the supernet's edge_scales
            weights = self.edge_scales(weights)

        def consume(i):
            targets = range(max(i - 1, 0), self.num_blocks)
            ids = self.state_edges(i)
            groups, repeats = (1, k) if i == 0 else (k, 1)
            out = fused_edges(states[i], [self.edges[e] for e in ids],
                              weights[i], groups, repeats, update)
            # unbind: one backward op (a stack) for all targets, not a
            # zero-filled copy of ``out`` per target
            for b, y in zip(targets, out.unbind(1)):
                y = y.reshape(groups, n, *out.shape[2:])
                partial[b] = y if partial[b] is None else partial[b] + y

        consume(0)
        consume(1)
        for b in range(self.num_blocks):
            block = partial[b]  # (k, N, C, h, w), complete now
            states.append(block.reshape(k * n, *block.shape[2:]))
            if b + 1 < self.num_blocks:
                consume(b + 2)
        # weighting each block before the concat keeps the autograd graph
        # from holding a (k, N, B*C, h, w) copy: each product saves a
        # block, which later edges save anyway
        w = betas.to(partial[0].dtype).view(-1, 1, 1, 1, 1)
        return torch.cat([(w * block).sum(0) for block in partial], dim=1)


@MODELS.register_module()
class AutoDeepLabSupernet(BaseModule):
    """Auto-DeepLab search space as one differentiable supernet.

    Every reachable trellis node ``(layer l, level j)`` owns one
    :class:`SearchCell`; the node's state is the β-weighted sum of that cell
    applied to each neighbouring level of layer ``l - 1`` (resampled to level
    ``j`` on its edge: stride-2 conv going coarser, bilinear + 1×1 conv going
    finer), with the same-level state of layer ``l - 2`` as second input.
    Where level ``j`` did not exist at layer ``l - 2`` (the paper leaves this
    open), the second input is the coarsest level that did (the stem for
    layers 0 and 1), bilinearly resized and projected by ``preprocess0``.

    Args:
        num_layers, num_blocks, filter_multiplier (int): L, B, F.
        primitives (Sequence[str]): operator names (α's columns).
        in_channels (int): image channels.
        num_levels (int): resolutions /4 ... /(4 * 2**(num_levels - 1)).
        norm_cfg (dict): norm of the stem and edge resamplers.
        op_norm_cfg (dict): norm inside cells: ``BN`` with ``affine=False``
            (as in DARTS; any mmcv norm with ``impl='per_edge'``).
        bn_convention (str): ``'pytorch'`` (the norm configs as given) or
            ``'tf'`` (:data:`TF_BN` in both, a paper-reproduction option).
        arch_init_std (float): α and β start as ``std * N(0, 1)``.
        impl (str): ``'fused'`` (default, fast) or ``'per_edge'`` (the
            readable reference); see :class:`SearchCell`.
        with_cp (bool | Sequence[int]): exact gradient checkpointing per
            node (``impl='fused'``): every node (True) or the nodes of the
            listed levels, e.g. ``(0, 1, 2)``: the node's cell keeps only
            its inputs and runs again in backward; trades compute for
            memory.

    Returns (forward):
        tuple[Tensor]: last-layer states ``(N, B*F*2**j, h_j, w_j)``.

    Example:
        >>> net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2)
        >>> [tuple(o.shape) for o in net(torch.rand(2, 3, 33, 33))]
        [(2, 10, 9, 9), (2, 20, 5, 5), (2, 40, 3, 3), (2, 80, 2, 2)]
    """

    def __init__(self,
                 num_layers=12,
                 num_blocks=5,
                 filter_multiplier=8,
                 primitives=PRIMITIVES,
                 in_channels=3,
                 num_levels=4,
                 norm_cfg=dict(type='BN'),
                 op_norm_cfg=dict(type='BN', affine=False),
                 bn_convention='pytorch',
                 arch_init_std=1e-3,
                 impl='fused',
                 with_cp=False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        primitives = tuple(primitives)
        with_cp = _cp_levels(with_cp, num_levels)
        check_supernet_args(num_layers, num_blocks, filter_multiplier,
                            primitives, num_levels)
        plain_bn = op_norm_cfg.get('type') == 'BN' and not op_norm_cfg.get(
            'affine', True)
        for bad, message in (
                (impl not in IMPLS,
                 f'impl must be one of {IMPLS}, got {impl!r}'),
                (impl == 'fused' and not plain_bn,
                 "impl='fused' needs op_norm_cfg dict(type='BN', "
                 f"affine=False), got {dict(op_norm_cfg)}; use "
                 "impl='per_edge' for another norm"),
                (with_cp and impl != 'fused', "with_cp needs impl='fused'"),
                (bn_convention not in ('pytorch', 'tf'),
                 f"bn_convention must be 'pytorch' or 'tf', got "
                 f'{bn_convention!r}')):
            if bad:
                raise ValueError(f'AutoDeepLabSupernet: {message}')
        if bn_convention == 'tf':
            norm_cfg = {**norm_cfg, **TF_BN}
            op_norm_cfg = {**op_norm_cfg, **TF_BN}
        self.num_layers, self.num_blocks = num_layers, num_blocks
        self.filter_multiplier, self.num_levels = filter_multiplier, num_levels
        self.primitives, self.impl, self.with_cp = primitives, impl, with_cp

        base = num_blocks * filter_multiplier  # node channels at level 0
        self.level_channels = [base * 2**j for j in range(num_levels)]
        half = max(base // 2, 1)
        # stem to /4: three 3x3 convs, strides 2/1/2, widths scaled like the
        # cells (B*F*s/4 at s = 2, 2, 4)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, half, 3, 2, 1, bias=False),
            build_norm(norm_cfg, half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, 1, 1, bias=False),
            build_norm(norm_cfg, half), nn.ReLU(inplace=True),
            nn.Conv2d(half, base, 3, 2, 1, bias=False),
            build_norm(norm_cfg, base), nn.ReLU(inplace=True))

        self.cells = nn.ModuleDict()
        self.down_edges = nn.ModuleDict()
        self.up_edges = nn.ModuleDict()
        for layer in range(num_layers):
            for level in range(max_level(layer, num_levels) + 1):
                key = f'{layer}_{level}'
                pp_level = min(level, max_level(layer - 2, num_levels)) \
                    if layer >= 2 else 0
                ch = self.level_channels[level]
                self.cells[key] = SearchCell(
                    filter_multiplier * 2**level, ch,
                    self.level_channels[pp_level], num_blocks, primitives,
                    op_norm_cfg, impl)
                src_top = max_level(layer - 1, num_levels) if layer else 0
                if level >= 1 and level - 1 <= src_top:
                    self.down_edges[key] = ReLUConvBN(
                        self.level_channels[level - 1], ch, 3, stride=2,
                        norm_cfg=norm_cfg)
                if level + 1 <= src_top:
                    self.up_edges[key] = ReLUConvBN(
                        self.level_channels[level + 1], ch, 1,
                        norm_cfg=norm_cfg)

        self.alphas = nn.Parameter(arch_init_std * torch.randn(
            num_edges(num_blocks), len(primitives)))
        self.betas = nn.Parameter(
            arch_init_std * torch.randn(num_layers, num_levels, 3))
        self._fixed_weights = None  # see fixed_arch

    @contextlib.contextmanager
    def fixed_arch(self, alpha_weights, beta_weights):
        """Within the body, forward uses these operator/transition weights
        (``(E, P)``, ``(L, levels, 3)``, e.g. one genotype's from
        :func:`~...search_space.decode.genotype_weights`) instead of
        softmax(α) and normalised β: the supernet's weights scoring one
        architecture."""
        self._fixed_weights = (alpha_weights, beta_weights)
        try:
            yield self
        finally:
            self._fixed_weights = None

    def set_op_dropout(self, prob, ops=('skip_connect',)):
        """Dropout of probability ``prob`` on the outputs of the operators
        named ``ops`` on every edge, in training mode (0 turns it off)."""
        check_op_names(ops, 'op dropout ops')
        if not 0 <= prob < 1:
            raise ValueError(f'op dropout: prob must be in [0, 1), got '
                             f'{prob!r}')
        for cell in self.cells.values():
            for edge in cell.edges:
                edge.drop_prob = float(prob)
                edge.dropped = [self.primitives[k] in ops
                                for k in edge.index]

    def arch_parameters(self):
        """α and β, the parameters the architecture optimizer owns."""
        return [self.alphas, self.betas]

    def search_space(self):
        """The :class:`SearchSpace` this supernet spans."""
        return SearchSpace(num_layers=self.num_layers,
                           num_blocks=self.num_blocks,
                           primitives=self.primitives,
                           strides=tuple(4 * 2**j
                                         for j in range(self.num_levels)))

    def normalized_betas(self):
        """β as outgoing-edge probabilities, ``(L, levels, 3)``."""
        return normalize_betas(self.betas)

    def _checkpointed(self, level):
        return self.training and torch.is_grad_enabled() and (
            self.with_cp is True or
            (self.with_cp is not False and level in self.with_cp))

    def _run_node(self, key, level, size, prev_prev, sources, alpha_w,
                  beta_w, stats):
        """Node ``key``'s state: its inputs resampled to ``size`` on their
        edges (``sources``: ``{src_level: state}``), then its cell, whose
        running-statistics updates go to ``stats``."""
        if prev_prev.shape[2:] != size:
            prev_prev = F.interpolate(prev_prev, size=size, mode='bilinear',
                                      align_corners=False)
        inputs = []
        for src, h in sources.items():
            # relu_conv_norm keeps the source state, held anyway, instead
            # of its ReLU
            if src < level:
                h = relu_conv_norm(h, self.down_edges[key])
            elif src > level:
                h = relu_conv_norm(F.interpolate(
                    h, size=size, mode='bilinear', align_corners=False),
                    self.up_edges[key])
            inputs.append(h)
        cell = self.cells[key]
        if not self._checkpointed(level):
            return cell(prev_prev, inputs, alpha_w, beta_w, stats)
        from torch.utils.checkpoint import checkpoint
        calls = [0]

        def run(*args):
            # the recomputation in backward must not update BN running
            # statistics a second time
            calls[0] += 1
            return cell(*args, update_stats=stats if calls[0] == 1
                        else False)

        return checkpoint(run, prev_prev, inputs, alpha_w, beta_w,
                          use_reentrant=False)

    def forward(self, x):
        """x: ``(N, 3, H, W)`` -> tuple of last-layer level states."""
        stem = self.stem(x)
        sizes = level_sizes(stem.shape[2], stem.shape[3], self.num_levels)
        if self._fixed_weights is not None:
            alpha_w, beta_w = (w.to(stem) for w in self._fixed_weights)
        else:
            alpha_w = F.softmax(self.alphas, dim=-1)
            beta_w = normalize_betas(self.betas)
        # the cells' ~1,700 running-statistics updates, applied together
        # (the per-edge reference's BN modules update themselves)
        stats = RunningStatUpdates() if self.impl == 'fused' else True
        if self.impl == 'fused':  # one set of α factors per level
            last = self.num_layers - 1  # the last layer has every level
            scales = [self.cells[f'{last}_{level}'].edge_scales(alpha_w)
                      for level in range(self.num_levels)]
        prev_prev, prev = [stem], [stem]  # layer -2 and -1: the stem
        for layer in range(self.num_layers):
            current = []
            for level in range(max_level(layer, self.num_levels) + 1):
                sources = {src: prev[src]
                           for src in (level - 1, level, level + 1)
                           if 0 <= src < len(prev)}
                betas = torch.stack([beta_w[layer, src, level - src + 1]
                                     for src in sources])
                current.append(self._run_node(
                    f'{layer}_{level}', level, sizes[level],
                    prev_prev[min(level, len(prev_prev) - 1)], sources,
                    alpha_w if self.impl != 'fused' else scales[level],
                    betas, stats))
            prev_prev, prev = prev, current
        if stats is not True:
            stats.apply()
        return tuple(prev)


def _cp_levels(with_cp, num_levels):
    """``with_cp`` as a bool or a tuple of level indices."""
    if isinstance(with_cp, bool):
        return with_cp
    levels = tuple(with_cp) if isinstance(with_cp, (list, tuple)) else None
    if levels is None or not all(
            is_integer(j, 0) and j < num_levels for j in levels):
        raise ValueError(
            f'AutoDeepLabSupernet: with_cp must be a bool or a list of '
            f'levels in 0..{num_levels - 1}, got {with_cp!r}')
    return tuple(sorted(set(levels))) or False
