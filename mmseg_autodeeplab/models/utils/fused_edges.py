"""All edges leaving one cell state, evaluated together.

A state feeds every later block, so up to B edges share one input; edge by
edge each runs tiny convs (8 channels to 8 at F=8), far from a device's
GEMM rate. Same mathematics here: the conv ops' leading ReLU and the
parameter-free ops run once per state; the edges' conv weights, still
owned by the per-edge modules, are concatenated along the output channels
(one grouped conv instead of ``n``); BN is per channel, so normalising the
concatenation per group equals each edge's BN. ``groups`` / ``repeats``
are explicit arguments (see :mod:`.stacked_bn`).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...search_space.primitives import ReLUConvBN, SepConv
from .relu_conv import relu_conv
from .sep_stage import sep_stage
from .stacked_bn import shared_running_stats, stacked_batch_norm


def _fused_bn(x, bns, groups, repeats, scale=None, update=True):
    """BN of ``x`` ``(groups * N, n * C, h, w)`` over the concatenated
    channels of the n edges' ``bns``; ``scale`` ``(n * C,)`` holds each
    edge's α weight per channel, applied inside the BN kernels."""
    bn = bns[0]
    if not bn.training and bn.track_running_stats:
        shared = shared_running_stats(bns)
        mean, var = shared[:2] if shared else (
            torch.cat([b.running_mean for b in bns]),
            torch.cat([b.running_var for b in bns]))
        return F.batch_norm(x, mean, var, scale, None, False, 0.0, bn.eps)
    return stacked_batch_norm(x, bns, groups, repeats, scale, update)


def _cat_weight(convs):
    if len(convs) == 1:
        return convs[0].weight
    return torch.cat([c.weight for c in convs], dim=0)


def relu_conv_bn(relu_x, mods, groups, repeats, scale=None, update=True):
    """n stride-1 :class:`ReLUConvBN` ``mods`` on one input (after its
    ReLU, ``(groups * N, C, h, w)``) as one conv: ``(groups * N, n * C_out,
    h, w)``."""
    convs = [m[1] for m in mods]
    y = F.conv2d(relu_x, _cat_weight(convs), None, 1, convs[0].padding,
                 convs[0].dilation)
    return _fused_bn(y, [m[2] for m in mods], groups, repeats, scale, update)


def preprocess(x, module, groups, repeats, update=True):
    """A cell's input projection (a 1×1 :class:`ReLUConvBN`) of ``x``
    ``(groups * N, C, h, w)``, keeping ``x``, not its ReLU, for backward
    (:func:`.relu_conv`)."""
    return _fused_bn(relu_conv(x, module[1]), [module[2]], groups, repeats,
                     None, update)


def _separable(relu_x, mods, groups, repeats, scale, update):
    n = len(mods)
    # oneDNN's depthwise conv on CPU is several times faster (backward
    # above all) in channels_last; the BN converts back
    layout = torch.channels_last if relu_x.device.type == 'cpu' and n > 1 \
        else torch.contiguous_format
    x = relu_x
    for first in (0, 4):
        dw = [m[first + 1] for m in mods]
        pw = [m[first + 2] for m in mods]
        # each stage keeps only its input: the shared ReLU of the state,
        # then the first BN's output (which that BN keeps anyway)
        x = sep_stage(x, _cat_weight(dw), _cat_weight(pw),
                      1 if first else n, bool(first), dw[0].padding,
                      dw[0].dilation, n, layout)
        x = _fused_bn(x, [m[first + 3] for m in mods], groups, repeats,
                      scale if first else None, update)
    return x


def fused_form(module):
    """The fused form of a stride-1 cell operator: None for the
    parameter-free ones (run once per state), else the function that runs
    the edges' convs concatenated."""
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.Identity)):
        return None
    if isinstance(module, ReLUConvBN):
        return relu_conv_bn
    if isinstance(module, SepConv):
        return _separable
    raise TypeError(f'fused_edges: no fused form for {type(module).__name__}')


def edge_scales(edge, weights, channels):
    """The α factors of n edges laid out like ``edge`` (a ``MixedOp``), one
    per computed operator ``j``: ``(n * channels,)`` (edge-major, each edge's
    weight repeated over its channels) for an operator with convs, which
    the BN kernels apply, ``(n,)`` for a parameter-free one.

    α is shared by every cell, so the supernet computes these once per
    forward and level, not once per cell (a few ops instead of a select,
    a repeat and their backward per operator and cell).

    Args:
        weights (Tensor): the edges' softmax(α) rows ``(n, P)``.
    """
    at = weights[:, edge.index].t()  # (ops, n) without the zero op
    cols = at.unbind(0)
    reps = at.repeat_interleave(channels, dim=1).unbind(0)
    return [reps[j] if fn is not None else cols[j]
            for j, fn in enumerate(edge.fused)]


def fused_edges(x, edges, weights, groups, repeats, update=True):
    """Mixed-op outputs ``(groups * N, n, C, h, w)`` of the n ``edges``
    (same op list) reading ``x`` ``(groups * N, C, h, w)``; ``weights`` are
    their softmax(α) rows ``(n, P)`` or :func:`edge_scales` of them; for
    ``groups, repeats, update`` see :func:`stacked_batch_norm`."""
    n = len(edges)
    gn, c, h, w = x.shape
    first = edges[0]
    scales = edge_scales(first, weights, c) if torch.is_tensor(weights) \
        else weights
    out = None
    relu_x = None
    for j, fn in enumerate(first.fused):
        mods = [e.ops[j] for e in edges]
        if fn is not None:
            if relu_x is None:
                relu_x = F.relu(x)
            # α-weighted inside the BN kernels
            y = fn(relu_x, mods, groups, repeats, scales[j],
                   update).view(gn, n, c, h, w)
        else:  # parameter-free: the same output for every edge
            y = mods[0](x).unsqueeze(1)
            if first.dropped[j] and first.drop_prob > 0 and first.training:
                # an independent mask per edge, as edge by edge
                y = F.dropout(y.expand(gn, n, c, h, w), first.drop_prob,
                              True)
            # in the activations' dtype (autocast): a float32 α column
            # would promote the whole sum to float32
            y = y * scales[j].to(x.dtype).view(1, n, 1, 1, 1)
        out = y if out is None else out + y
    return out
