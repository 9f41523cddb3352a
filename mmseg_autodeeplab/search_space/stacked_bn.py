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
``repeats`` identical updates the separate evaluation would have made, via
the closed form ``m_eff = 1 - (1 - m) ** repeats``.
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

    def forward(self, x):
        if not self.training or not self.track_running_stats:
            return super().forward(x)
        if self.groups == 1:
            # identical inputs repeated: one normalisation, `repeats` updates
            momentum = 1.0 - (1.0 - self.momentum)**self.repeats
            self.num_batches_tracked.add_(self.repeats)
            return F.batch_norm(x, self.running_mean, self.running_var,
                                self.weight, self.bias, True, momentum,
                                self.eps)
        y, mean, var = _GroupNormalize.apply(x, self.groups, self.eps)
        with torch.no_grad():
            count = x.numel() // (x.shape[1] * self.groups)
            unbiased = var * (count / max(count - 1, 1))
            for g in range(self.groups):
                self.running_mean.mul_(1 - self.momentum).add_(
                    mean[g], alpha=self.momentum)
                self.running_var.mul_(1 - self.momentum).add_(
                    unbiased[g], alpha=self.momentum)
            self.num_batches_tracked.add_(self.groups)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(
                1, -1, 1, 1)
        return y


def set_stacking(module, groups, repeats=1):
    """Set ``groups``/``repeats`` on every StackedBatchNorm2d in ``module``."""
    for m in module.modules():
        if isinstance(m, StackedBatchNorm2d):
            m.groups = groups
            m.repeats = repeats
