"""The Auto-DeepLab search supernet (cell-level α, network-level β).

Shape vocabulary (input ``(N, 3, H, W)``):

* level ``j`` in 0..3 has downsample rate ``s = 4 * 2**j``; its spatial size
  is ``ceil`` of the previous level's (``h_0 = ceil(ceil(H/2)/2)``);
* a node at level ``j`` outputs ``B * F * 2**j`` channels (``B`` blocks of
  ``F * 2**j`` channels each; ``B*F*s/4`` in the paper's notation);
* α: ``(E, P)`` with ``E = 2 + 3 + ... + (B + 1)`` (20 for B = 5) edges and ``P``
  operators (8), SHARED by every cell;
* β: ``(L, 4, 3)`` raw logits; ``beta[l, s, d]`` weights the move from level
  ``s`` at layer ``l - 1`` (layer -1 is the stem) to level ``s + d - 1``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...search_space import (PRIMITIVES, ZERO_OP, build_op, check_op_names,
                             max_level, normalize_betas, num_edges)
from ...search_space.primitives import ReLUConvBN
from ...search_space.stacked_bn import StackedBatchNorm2d
from .fused_edges import fused_edges, fused_kind


def _positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f'AutoDeepLabSupernet: {name} must be a positive '
                         f'integer, got {value!r}')


def level_sizes(height, width, num_levels):
    """Spatial size of each level given the level-0 (stem output) size."""
    sizes = [(height, width)]
    for _ in range(num_levels - 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class MixedOp(nn.Module):
    """A softmax(α)-weighted sum of every non-zero operator on one edge.

    The zero operator contributes nothing, so it is never computed.
    """

    def __init__(self, channels, primitives, norm_cfg):
        super().__init__()
        self.index = [k for k, p in enumerate(primitives) if p != ZERO_OP]
        self.ops = nn.ModuleList(
            build_op(primitives[k], channels, 1, norm_cfg) for k in self.index)
        self.kinds = [fused_kind(op) for op in self.ops]

    def forward(self, x, weights):
        """x: (N, C, h, w); weights: (P,) softmaxed α row."""
        out = None
        for k, op in zip(self.index, self.ops):
            y = weights[k] * op(x)
            out = y if out is None else out + y
        return out


def _beta_weighted_concat(blocks, betas):
    """β-weighted sum over the k inputs, blocks concatenated on channels.

    Args:
        blocks (list[Tensor]): B block outputs, ``(k, N, C, h, w)`` each.
        betas (Tensor): ``(k,)``.

    Returns:
        Tensor: ``(N, B*C, h, w)``.

    Weighting each block before concatenating saves no work but keeps the
    autograd graph from holding a concatenated ``(k, N, B*C, h, w)`` copy:
    each product saves a block, which later edges save anyway.
    """
    w = betas.view(-1, 1, 1, 1, 1)
    return torch.cat([(w * block).sum(0) for block in blocks], dim=1)


class SearchCell(nn.Module):
    """One cell of the supernet: B blocks over 2 + 3 + ... + (B + 1) mixed edges.

    The cell of node ``(l, j)`` is applied to each of its ``k`` (1-3)
    incoming H(l-1) inputs with the same H(l-2). With ``stack_inputs`` the k
    applications run as ONE pass over the inputs stacked along the batch
    axis; :class:`StackedBatchNorm2d` keeps each input's batch statistics
    separate, and branches fed by H(l-2) (identical for all k) run once, so
    the result equals k separate applications.

    Args:
        channels (int): per-block channels ``C = F * 2**level``.
        prev_channels (int): channels of H(l-1) after edge resampling.
        prev_prev_channels (int): channels of H(l-2).
        stack_inputs (bool): the stacked evaluation (default) or the plain
            per-input loop (reference implementation).
        fuse_edges (bool): with ``stack_inputs``, evaluate all edges that
            read the same state together (see :mod:`.fused_edges`).
    """

    def __init__(self, channels, prev_channels, prev_prev_channels,
                 num_blocks, primitives, norm_cfg, stack_inputs=True,
                 fuse_edges=True):
        super().__init__()
        self.num_blocks = num_blocks
        self.stack_inputs = stack_inputs
        self.fuse_edges = fuse_edges and stack_inputs
        self.preprocess0 = ReLUConvBN(prev_prev_channels, channels, 1,
                                      norm_cfg=norm_cfg)
        self.preprocess1 = ReLUConvBN(prev_channels, channels, 1,
                                      norm_cfg=norm_cfg)
        self.edges = nn.ModuleList(
            MixedOp(channels, primitives, norm_cfg)
            for _ in range(num_edges(num_blocks)))
        # edges whose input is H(l-2) (index 0 of every block's inputs)
        pp_edges, offset = set(), 0
        for b in range(num_blocks):
            pp_edges.add(offset)
            offset += b + 2
        # Every StackedBatchNorm2d of the cell with whether its input is
        # shared by all stacked inputs (H(l-2) branches: one group, k
        # repeats) or stacked (k groups); collected once, since the stacking
        # is set on every forward.
        shared = [self.preprocess0] + [
            e for i, e in enumerate(self.edges) if i in pp_edges]
        stacked = [self.preprocess1] + [
            e for i, e in enumerate(self.edges) if i not in pp_edges]
        self._stacked_bns = [
            (m, is_shared) for group, is_shared in ((shared, True),
                                                    (stacked, False))
            for module in group for m in module.modules()
            if isinstance(m, StackedBatchNorm2d)]

    def _set_stacking(self, groups):
        for bn, is_shared in self._stacked_bns:
            # plain attributes: skip nn.Module.__setattr__'s type checks
            # (thousands of BNs, every forward)
            bn.__dict__['groups'], bn.__dict__['repeats'] = (
                1, groups) if is_shared else (groups, 1)

    def set_frozen(self, frozen):
        """Freeze BN running statistics (gradient-checkpoint recompute)."""
        for bn, _ in self._stacked_bns:
            bn.frozen = frozen

    def _single(self, prev_prev, prev, weights):
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

    def forward(self, prev_prev, prevs, weights, betas):
        """Cell output for each input, β-weighted and summed.

        Args:
            prev_prev (Tensor): H(l-2) at this node's size, ``(N, C'', h, w)``.
            prevs (list[Tensor]): the k resampled H(l-1), ``(N, C', h, w)``.
            weights (Tensor): softmax(α), ``(E, P)``.
            betas (Tensor): the k β weights of the incoming edges, ``(k,)``.

        Returns:
            Tensor: ``(N, B*C, h, w)``.
        """
        k = len(prevs)
        if self.fuse_edges:
            return self._fused(prev_prev, prevs, weights, betas)
        if not self.stack_inputs or k == 1:
            self._set_stacking(1)
            out = None
            for i, prev in enumerate(prevs):
                y = betas[i] * self._single(prev_prev, prev, weights)
                out = y if out is None else out + y
            return out
        self._set_stacking(k)
        n = prev_prev.shape[0]
        s0 = self.preprocess0(prev_prev)
        s1 = self.preprocess1(torch.cat(prevs, dim=0))
        states = [s0, s1]
        blocks, offset = [], 0
        for _ in range(self.num_blocks):
            out = None
            for i, h in enumerate(states):
                y = self.edges[offset + i](h, weights[offset + i])
                y = y.view(-1 if i else 1, n, *y.shape[1:])
                out = y if out is None else out + y
            offset += len(states)
            blocks.append(out)
            states.append(out.view(k * n, *out.shape[2:]))
        return _beta_weighted_concat(blocks, betas)

    def _fused(self, prev_prev, prevs, weights, betas):
        """Stacked inputs AND all edges leaving a state evaluated at once.

        State ``i`` (0: H(l-2), 1: H(l-1), i >= 2: block ``i - 2``) feeds
        blocks ``max(i - 1, 0) .. B - 1``; a block is complete once every
        state before it has been consumed.
        """
        k, n = len(prevs), prev_prev.shape[0]
        self._set_stacking(k)  # preprocess BNs: stacked / repeated
        states = [self.preprocess0(prev_prev),
                  self.preprocess1(torch.cat(prevs, dim=0)
                                   if k > 1 else prevs[0])]
        offsets = [sum(b + 2 for b in range(i)) for i in range(
            self.num_blocks)]
        partial = [None] * self.num_blocks

        def consume(i):
            targets = range(max(i - 1, 0), self.num_blocks)
            ids = [offsets[b] + i for b in targets]
            groups, repeats = (1, k) if i == 0 else (k, 1)
            out = fused_edges(states[i], [self.edges[e] for e in ids],
                              weights[ids], groups, repeats)
            for t, b in enumerate(targets):
                y = out[:, t].reshape(groups, n, *out.shape[2:])
                partial[b] = y if partial[b] is None else partial[b] + y

        consume(0)
        consume(1)
        blocks = []
        for b in range(self.num_blocks):
            block = partial[b]  # (k, N, C, h, w)
            blocks.append(block)
            states.append(block.reshape(k * n, *block.shape[2:]))
            if b + 1 < self.num_blocks:
                consume(b + 2)
        return _beta_weighted_concat(blocks, betas)


@MODELS.register_module()
class AutoDeepLabSupernet(BaseModule):
    """Auto-DeepLab search space as one differentiable supernet.

    Every reachable trellis node ``(layer l, level j)`` owns one
    :class:`SearchCell`; the node's state is the β-weighted sum of that cell
    applied to each neighbouring level of layer ``l - 1`` (resampled to level
    ``j`` on its edge: stride-2 conv going coarser, bilinear + 1×1 conv going
    finer), with the same-level state of layer ``l - 2`` as second input.

    Args:
        num_layers (int): L, cells after the stem. Default 12.
        num_blocks (int): B, blocks per cell. Default 5.
        filter_multiplier (int): F. Default 8.
        primitives (Sequence[str]): operator names (α's columns).
        in_channels (int): image channels.
        num_levels (int): resolutions /4 ... /(4 * 2**(num_levels - 1)).
        norm_cfg (dict): norm of the stem and edge resamplers.
        op_norm_cfg (dict): norm inside cells (affine=False, as in DARTS);
            ``StackedBN`` is needed for ``stack_inputs``.
        arch_init_std (float): α and β start as ``std * N(0, 1)``.
        stack_inputs (bool): evaluate each node's cell once over its stacked
            incoming inputs (same mathematics, fewer kernels; see
            :class:`SearchCell`).
        fuse_edges (bool): also evaluate all edges reading the same cell
            state at once (same mathematics; needs ``stack_inputs``).
        with_cp (bool): gradient checkpointing per node: exact (the
            recomputation in backward leaves BN running statistics alone);
            trades compute for memory.

    Returns (forward):
        tuple[Tensor]: last-layer states of levels 0..num_levels-1,
        ``(N, B*F*2**j, h_j, w_j)``.

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
                 op_norm_cfg=dict(type='StackedBN', affine=False),
                 arch_init_std=1e-3,
                 stack_inputs=True,
                 fuse_edges=True,
                 with_cp=False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        for value, name in ((num_layers, 'num_layers'),
                            (num_blocks, 'num_blocks'),
                            (filter_multiplier, 'filter_multiplier'),
                            (num_levels, 'num_levels')):
            _positive_int(value, name)
        if num_layers < num_levels - 1:
            raise ValueError(
                f'AutoDeepLabSupernet: num_layers={num_layers} is too small '
                f'for the last layer to reach all {num_levels} levels; '
                f'expected at least {num_levels - 1}')
        primitives = tuple(primitives)
        check_op_names(primitives, 'AutoDeepLabSupernet.primitives')
        if not [p for p in primitives if p != ZERO_OP]:
            raise ValueError('AutoDeepLabSupernet.primitives: needs at least '
                             'one operator other than the zero operator')
        self.num_layers = num_layers
        self.num_blocks = num_blocks
        self.filter_multiplier = filter_multiplier
        self.primitives = primitives
        self.num_levels = num_levels
        self.with_cp = with_cp
        if stack_inputs and op_norm_cfg.get('type') != 'StackedBN':
            raise ValueError(
                'AutoDeepLabSupernet: stack_inputs=True needs op_norm_cfg '
                f"type 'StackedBN' (got {op_norm_cfg.get('type')!r}); set "
                'stack_inputs=False to use another norm')

        base = num_blocks * filter_multiplier  # node channels at level 0
        self.level_channels = [base * 2**j for j in range(num_levels)]
        half = max(base // 2, 1)
        # Stem to /4: three 3x3 convs, strides 2/1/2, widths scaled like the
        # cells (B*F*s/4 at s = 2, 2, 4).
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, half, 3, 2, 1, bias=False),
            _norm(norm_cfg, half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, 1, 1, bias=False),
            _norm(norm_cfg, half), nn.ReLU(inplace=True),
            nn.Conv2d(half, base, 3, 2, 1, bias=False),
            _norm(norm_cfg, base), nn.ReLU(inplace=True))

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
                    op_norm_cfg, stack_inputs, fuse_edges)
                src_top = max_level(layer - 1, num_levels) if layer else 0
                if level >= 1 and level - 1 <= src_top:
                    self.down_edges[key] = ReLUConvBN(
                        self.level_channels[level - 1], ch, 3, stride=2,
                        norm_cfg=norm_cfg)
                if level + 1 <= src_top:
                    self.up_edges[key] = ReLUConvBN(
                        self.level_channels[level + 1], ch, 1,
                        norm_cfg=norm_cfg)

        num_ops = len(primitives)
        self.alphas = nn.Parameter(
            arch_init_std * torch.randn(num_edges(num_blocks), num_ops))
        self.betas = nn.Parameter(
            arch_init_std * torch.randn(num_layers, num_levels, 3))

    # -- architecture parameters -------------------------------------------
    def arch_parameters(self):
        """α and β, the parameters the architecture optimizer owns."""
        return [self.alphas, self.betas]

    def named_arch_parameters(self):
        return [('alphas', self.alphas), ('betas', self.betas)]

    def normalized_betas(self):
        """β as outgoing-edge probabilities, ``(L, levels, 3)``."""
        return normalize_betas(self.betas)

    # -- forward ----------------------------------------------------------
    def _run_cell(self, key, prev_prev, prevs, weights, betas):
        cell = self.cells[key]
        if self.with_cp and self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint
            calls = [0]

            def run(*args):
                # the recomputation in backward must not update BN running
                # statistics a second time
                cell.set_frozen(calls[0] > 0)
                calls[0] += 1
                try:
                    return cell(*args)
                finally:
                    cell.set_frozen(False)

            return checkpoint(run, prev_prev, prevs, weights, betas,
                              use_reentrant=False)
        return cell(prev_prev, prevs, weights, betas)

    def forward(self, x):
        """x: ``(N, 3, H, W)`` -> tuple of last-layer level states."""
        stem = self.stem(x)
        sizes = level_sizes(stem.shape[2], stem.shape[3], self.num_levels)
        alpha_w = F.softmax(self.alphas, dim=-1)
        beta_w = normalize_betas(self.betas)
        prev_prev, prev = [stem], [stem]  # layer -2 and -1: the stem
        for layer in range(self.num_layers):
            current = []
            for level in range(max_level(layer, self.num_levels) + 1):
                key = f'{layer}_{level}'
                size = sizes[level]
                pp = prev_prev[min(level, len(prev_prev) - 1)]
                if pp.shape[2:] != size:
                    pp = F.interpolate(pp, size=size, mode='bilinear',
                                       align_corners=False)
                inputs, weights = [], []
                for src in (level - 1, level, level + 1):
                    if not 0 <= src < len(prev):
                        continue
                    h = prev[src]
                    if src < level:
                        h = self.down_edges[key](h)
                    elif src > level:
                        h = self.up_edges[key](F.interpolate(
                            h, size=size, mode='bilinear',
                            align_corners=False))
                    inputs.append(h)
                    weights.append(beta_w[layer, src, level - src + 1])
                current.append(self._run_cell(key, pp, inputs, alpha_w,
                                              torch.stack(weights)))
            prev_prev, prev = prev, current
        return tuple(prev)


def _norm(norm_cfg, channels):
    from mmcv.cnn import build_norm_layer
    return build_norm_layer(norm_cfg, channels)[1]
