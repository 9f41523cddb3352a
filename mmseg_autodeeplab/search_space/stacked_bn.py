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


class _GroupNormalize(torch.autograd.Function):
    """Per-group standardisation (no affine) with a memory-lean backward.

    Only the output and the per-group inverse std are saved: for an
    affine-free BN the output IS the normalised input.
    """

    @staticmethod
    def forward(ctx, x, groups, eps):
        xv = x.view(groups, x.shape[0] // groups, x.shape[1], -1)
        var, mean = torch.var_mean(xv, dim=(1, 3), unbiased=False,
                                   keepdim=True)
        rstd = torch.rsqrt(var + eps)
        y = (xv - mean).mul_(rstd)
        ctx.save_for_backward(y, rstd)
        ctx.groups = groups
        return y.view_as(x), mean.view(groups, -1), var.view(groups, -1)

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        y, rstd = ctx.saved_tensors
        dyv = dy.reshape(y.shape)
        mean_dy = dyv.mean(dim=(1, 3), keepdim=True)
        mean_dy_y = (dyv * y).mean(dim=(1, 3), keepdim=True)
        dx = (dyv - mean_dy - y * mean_dy_y).mul_(rstd)
        return dx.view_as(dy), None, None


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

    def _update_running(self, mean, var, count):
        """One running-statistics update, as ``nn.BatchNorm2d`` does it."""
        if self.frozen:
            return
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average
            m = 1.0 / float(self.num_batches_tracked)
        else:
            m = self.momentum
        unbiased = var * (count / max(count - 1, 1))
        self.running_mean.mul_(1 - m).add_(mean, alpha=m)
        self.running_var.mul_(1 - m).add_(unbiased, alpha=m)

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
        if self.groups == 1:
            # identical inputs repeated: one normalisation, `repeats`
            # identical running-statistics updates
            y, mean, var = _GroupNormalize.apply(x, 1, self.eps)
            means, variances = mean.expand(self.repeats, -1), var.expand(
                self.repeats, -1)
        else:
            y, means, variances = _GroupNormalize.apply(x, self.groups,
                                                        self.eps)
        if self.training and self.track_running_stats:
            count = x.numel() // (x.shape[1] * self.groups)
            with torch.no_grad():
                for mean, var in zip(means, variances):
                    self._update_running(mean, var, count)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(
                1, -1, 1, 1)
        return y
