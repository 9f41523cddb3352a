"""A pooling operator's output weighted by each edge's α, keeping only ``x``.

In the fused supernet one pooling of a state serves every edge leaving it,
and each edge's output is that pooling times its α weight. Under autograd
the product keeps the pooled tensor (for α's gradient) and max pooling
keeps its int64 indices as well: four activation-sized float32 tensors'
worth per state for the two pools, against the state itself, which later
consumers keep anyway. Pooling is among the cheapest operators to run
again, so here only ``x`` is kept and the backward re-runs the pooling
(with indices for max pooling). The values and gradients are autograd's.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

_aten = torch.ops.aten


def _pool(x, pool, indices=False):
    """``pool(x)``; with ``indices`` (max pooling) also its argmax."""
    if isinstance(pool, nn.MaxPool2d):
        args = (pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                pool.ceil_mode)
        if indices:
            return _aten.max_pool2d_with_indices(x, *args)
        return F.max_pool2d(x, *args)
    return F.avg_pool2d(x, pool.kernel_size, pool.stride, pool.padding,
                        pool.ceil_mode, pool.count_include_pad,
                        pool.divisor_override)


def _pool_backward(dy, x, pool):
    if isinstance(pool, nn.MaxPool2d):
        _, idx = _pool(x, pool, indices=True)
        return _aten.max_pool2d_with_indices_backward(
            dy, x, pool.kernel_size, pool.stride, pool.padding,
            pool.dilation, pool.ceil_mode, idx)
    return _aten.avg_pool2d_backward(
        dy, x, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode,
        pool.count_include_pad, pool.divisor_override)


class _WeightedPool(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, pool):
        ctx.save_for_backward(x, weight)
        ctx.pool = pool
        return _pool(x, pool).unsqueeze(1) * weight.view(1, -1, 1, 1, 1)

    @staticmethod
    def backward(ctx, dout):
        x, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        # the same reductions as autograd's backward of the broadcast product
        dx = dw = None
        if need_w:
            y = _pool(x, ctx.pool).unsqueeze(1)
            dw = (dout * y).sum_to_size(1, weight.numel(), 1, 1, 1).view(-1)
            del y
        if need_x:
            dy = (dout * weight.view(1, -1, 1, 1, 1)).sum_to_size(
                dout.shape[0], 1, *dout.shape[2:]).squeeze(1)
            dx = _pool_backward(dy, x, ctx.pool)
        return dx, dw, None


def weighted_pool(x, pool, weight):
    """``pool(x)`` weighted by each of n edges, keeping only ``x``.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        pool (nn.MaxPool2d | nn.AvgPool2d): the operator (its settings).
        weight (Tensor): ``(n,)``, each edge's weight, in ``x``'s dtype.

    Returns:
        Tensor: ``(N, n, C, H', W')``, ``pool(x)[:, None] * weight[e]``.
    """
    return _WeightedPool.apply(x, weight, pool)
