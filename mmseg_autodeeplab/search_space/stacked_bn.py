"""Batch norm over several independent batches stacked along dim 0.

The supernet evaluates a node's cell ONCE on its (up to 3) incoming inputs
stacked along the batch axis (fewer, larger kernels). Stacking must not
change the mathematics, so in training mode each stacked group is normalised
with its own batch statistics — exactly as if the cell ran on each input
separately — and the running statistics receive one update per group, in
order. Layout: ``x`` is ``(G * N, C, H, W)`` with group ``g`` in rows
``g*N:(g+1)*N``.

``repeats`` covers the other shared case: a branch whose input is the same
for every group (H(l-2)) is computed once; running statistics then get the
``repeats`` identical updates the separate evaluation would have made.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


_aten = torch.ops.aten


class _GroupNormalize(torch.autograd.Function):
    """Per-group standardisation (no affine) with a memory-lean backward.

    Forward and backward run ATen's fused batch-norm kernels on each group's
    contiguous rows (one pass each, instead of separate reductions and
    elementwise ops). Only the output and the per-group inverse std are
    saved: for an affine-free BN the output IS the normalised input, so the
    backward feeds it to the kernel as an input with mean 0 and inverse std 1
    and rescales by the true inverse std.

    Returns ``(y, mean, var)`` with ``mean``/``var`` ``(groups, C)`` (biased
    batch variance, as the running-statistics update expects).
    """

    @staticmethod
    def forward(ctx, x, groups, eps):
        x = x.contiguous()
        n = x.shape[0] // groups
        if groups == 1:
            y, mean, rstd = _aten.native_batch_norm(x, None, None, None, None,
                                                    True, 0.0, eps)
            mean, rstd = mean.unsqueeze(0), rstd.unsqueeze(0)
        else:
            y = torch.empty_like(x)
            mean = x.new_empty(groups, x.shape[1])
            rstd = torch.empty_like(mean)
            for g in range(groups):
                rows = slice(g * n, (g + 1) * n)
                _aten.native_batch_norm.out(
                    x[rows], None, None, None, None, True, 0.0, eps,
                    out=y[rows], save_mean=mean[g], save_invstd=rstd[g])
        ctx.save_for_backward(y, rstd)
        ctx.groups, ctx.eps = groups, eps
        return y, mean, rstd.pow(-2).sub_(eps)

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        y, rstd = ctx.saved_tensors
        groups, c = ctx.groups, y.shape[1]
        n = y.shape[0] // groups
        dy = dy.contiguous()
        zero, one = y.new_zeros(c), y.new_ones(c)
        dx = torch.empty_like(y) if groups > 1 else None
        for g in range(groups):
            rows = slice(g * n, (g + 1) * n)
            d = _aten.native_batch_norm_backward(
                dy[rows], y[rows], None, None, None, zero, one, True, ctx.eps,
                [True, False, False])[0].mul_(rstd[g].view(1, -1, 1, 1))
            if dx is None:
                dx = d
            else:
                dx[rows] = d
        return dx, None, None


def update_running_stats(bns, means, variances, count, repeats=1):
    """``nn.BatchNorm2d``'s running-statistics updates for stacked groups.

    Group ``g``'s statistics are applied ``repeats`` times, groups in order,
    as separate evaluations would have done. With several BNs (the fused
    edges of one state) their buffers are updated together on the
    concatenated channels: the same elementwise arithmetic, so the result is
    identical to updating each BN alone.

    Args:
        bns (list[StackedBatchNorm2d]): n BNs of C channels each.
        means (Tensor): batch means, ``(groups, n * C)``.
        variances (Tensor): biased batch variances, ``(groups, n * C)``.
        count (int): values per channel in one group (for the unbiased var).
        repeats (int): identical updates per group.
    """
    first = bns[0]
    if first.frozen or not (first.training and first.track_running_stats):
        return
    unbiased = variances * (count / max(count - 1, 1))
    steps = [g for g in range(means.shape[0]) for _ in range(repeats)]
    if first.momentum is None or len(bns) == 1:
        c = first.num_features
        for e, bn in enumerate(bns):
            cols = slice(e * c, (e + 1) * c)
            for g in steps:
                bn._update_running(means[g, cols], unbiased[g, cols])
        return
    running_mean = torch.cat([bn.running_mean for bn in bns])
    running_var = torch.cat([bn.running_var for bn in bns])
    m = first.momentum
    for g in steps:
        running_mean.mul_(1 - m).add_(means[g], alpha=m)
        running_var.mul_(1 - m).add_(unbiased[g], alpha=m)
    for bn, mean, var in zip(bns, running_mean.chunk(len(bns)),
                             running_var.chunk(len(bns))):
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.num_batches_tracked.add_(len(steps))


class StackedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that treats ``groups`` stacked batches separately.

    Set ``groups``/``repeats`` (attributes) before calling; with
    ``groups == repeats == 1`` it is exactly ``nn.BatchNorm2d``.
    Grouped normalisation is implemented for ``affine=False`` (the search's
    op BN); with affine parameters the grouped path applies them after.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=True):
        super().__init__(num_features, eps, momentum, affine,
                         track_running_stats)
        self.groups = 1
        self.repeats = 1
        # True while gradient checkpointing recomputes a forward: batch
        # statistics are used, running statistics are left alone (they were
        # updated by the original forward)
        self.frozen = False

    def _update_running(self, mean, unbiased_var):
        """One running-statistics update, as ``nn.BatchNorm2d`` does it."""
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average
            m = 1.0 / float(self.num_batches_tracked)
        else:
            m = self.momentum
        self.running_mean.mul_(1 - m).add_(mean, alpha=m)
        self.running_var.mul_(1 - m).add_(unbiased_var, alpha=m)

    def forward(self, x):
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats or (self.groups == 1 and self.repeats == 1):
            if self.frozen and self.training and self.track_running_stats:
                # same kernel (same saved tensors for checkpointing), but
                # the update lands in throw-away copies
                return F.batch_norm(x, self.running_mean.clone(),
                                    self.running_var.clone(), self.weight,
                                    self.bias, True, self.momentum or 0.0,
                                    self.eps)
            return super().forward(x)
        # identical inputs repeated (groups == 1): one normalisation,
        # `repeats` identical running-statistics updates
        y, means, variances = _GroupNormalize.apply(x, self.groups, self.eps)
        with torch.no_grad():
            update_running_stats([self], means, variances,
                                 x.numel() // (x.shape[1] * self.groups),
                                 self.repeats)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(
                1, -1, 1, 1)
        return y
