"""Batch norm over several independent batches stacked along dim 0.

The fused supernet runs a node's cell ONCE on its (up to 3) inputs stacked
along the batch axis: ``x`` is ``(G * N, C, H, W)``, group ``g`` in rows
``g*N:(g+1)*N``, each normalised with its own statistics and giving the
running statistics one update, in order (``repeats`` for a branch computed
once for all groups, as H(l-2)'s). The grouping is an argument, not state.

A forward of the supernet normalises ~1,700 stacked batches; updating each
one's running statistics on the spot costs ~14 tiny ops apiece. Handed a
:class:`RunningStatUpdates` instead of ``update=True``, the updates wait
until its :meth:`~RunningStatUpdates.apply`, which does all of them in a
few multi-tensor (``torch._foreach_*``) ops: the same arithmetic on every
element, in the same order.
"""
import torch

_aten = torch.ops.aten


class _GroupNormalize(torch.autograd.Function):
    """Per-group batch norm, then an optional per-channel scale.

    ATen's fused batch-norm kernels run on each group's rows. Only ``xhat``
    and the per-group inverse std are saved (not the input): the backward
    hands ``xhat`` to the kernel as an input with mean 0 and inverse std 1
    and folds the true inverse std into its weight, so the scale's (α's)
    gradient ``sum(dy * xhat)`` comes out of the same pass.

    Under autocast ``x`` is half / bfloat16: ``xhat`` and ``y`` keep its
    dtype (as cuDNN's BN does), the statistics and the scale's gradient
    are float32 (the kernels' mixed-precision mode accumulates in float32).
    """

    @staticmethod
    def forward(ctx, x, scale, groups, eps):
        x = x.contiguous()
        n, c = x.shape[0] // groups, x.shape[1]
        xhat = torch.empty_like(x)
        # one allocation for both statistics
        mean, rstd = x.new_empty(2, groups, c, dtype=_stat_dtype(x))
        # a float32 weight of ones selects the kernels' mixed mode
        one = _constant(1, mean[0]) if mean.dtype != x.dtype else None
        for g in range(groups):
            rows = slice(g * n, (g + 1) * n)
            _aten.native_batch_norm.out(
                x[rows], one, None, None, None, True, 0.0, eps,
                out=xhat[rows], save_mean=mean[g], save_invstd=rstd[g])
        ctx.save_for_backward(xhat, rstd, scale)
        ctx.groups = groups
        ctx.mark_non_differentiable(mean, rstd)
        # no zero gradients made for the statistics, which nothing
        # differentiates
        ctx.set_materialize_grads(False)
        y = xhat if scale is None else xhat * scale.to(x.dtype).view(
            1, -1, 1, 1)
        return y, mean, rstd

    @staticmethod
    def backward(ctx, dy, _dmean, _drstd):
        xhat, rstd, scale = ctx.saved_tensors
        groups, c = ctx.groups, xhat.shape[1]
        n = xhat.shape[0] // groups
        need_scale = ctx.needs_input_grad[1]
        dy = dy.to(xhat.dtype).contiguous()
        zero, one = _constant(0, rstd[0]), _constant(1, rstd[0])
        dx = torch.empty_like(xhat)
        # the .out variant needs all three outputs (computed anyway): one
        # row per group for the scale's gradient, the last row unused
        parts = rstd.new_empty(groups + 1, c)
        # the kernel: w * invstd * (dy - mean(dy) - xhat * mean(dy *
        # xhat)); input xhat, mean 0, invstd 1 and w = scale * rstd_g give
        # the true dx, and its weight gradient is sum(dy * xhat)
        w = rstd if scale is None else scale.detach().to(rstd.dtype) * rstd
        for g in range(groups):
            rows = slice(g * n, (g + 1) * n)
            _aten.native_batch_norm_backward.out(
                dy[rows], xhat[rows], w[g], None, None, zero, one, True,
                0.0, [True, True, True], out0=dx[rows], out1=parts[g],
                out2=parts[groups])
        dscale = None
        if need_scale:
            dscale = (parts[0] if groups == 1 else parts[:groups].sum(0)
                      ).to(scale.dtype)
        return dx, dscale, None, None


_CONSTANTS = {}


def _constant(value, like):
    """A cached read-only tensor of ``value``s shaped and typed as ``like``
    (1-D): the kernels' fixed weights / statistics, not re-made per call."""
    key = (value, like.shape, like.dtype, like.device)
    t = _CONSTANTS.get(key)
    if t is None:
        # a normal tensor even if first asked for under inference_mode
        with torch.inference_mode(False):
            t = _CONSTANTS[key] = torch.full_like(like, value)
    return t


def _stat_dtype(x):
    # the kernels' mixed mode: half/bfloat16 input, float32 statistics
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) \
        else x.dtype


def stacked_batch_norm(x, bns, groups, repeats=1, scale=None, update=True):
    """Training-mode BN of ``groups`` batches stacked along dim 0, each alone.

    Args:
        x (Tensor): ``(groups * N, n * C, H, W)``; BN ``e`` of the n
            ``bns`` (``affine=False``) owns channels ``e*C:(e+1)*C``.
        repeats (int): identical running-statistics updates per group.
        scale (Tensor, optional): ``(n * C,)`` factor on the output.
        update (bool | RunningStatUpdates): update the running statistics
            now (True), later (collected for
            :meth:`RunningStatUpdates.apply`) or not (False, while gradient
            checkpointing recomputes a forward).
    """
    y, mean, rstd = _GroupNormalize.apply(x, scale, groups, bns[0].eps)
    if update is not False and bns[0].track_running_stats:
        count = x.numel() // (x.shape[1] * groups)
        if isinstance(update, RunningStatUpdates):
            update.add(bns, mean, rstd, count, repeats)
        else:
            with torch.no_grad():
                update_running_stats(bns, mean,
                                     rstd.pow(-2).sub_(bns[0].eps), count,
                                     repeats)
    return y


class RunningStatUpdates:
    """Running-statistics updates of many :func:`stacked_batch_norm` calls
    (one forward), applied together by :meth:`apply`.

    Each BN (or set of fused BNs) gets exactly the updates, in the order,
    that ``update=True`` would give it; only the interleaving between
    different BNs changes, which nothing reads during a training forward.
    """

    def __init__(self):
        self._items = []  # (bns, mean, rstd, count, repeats)
        self._targets = set()

    def add(self, bns, mean, rstd, count, repeats):
        """Queue the updates of one call (its batch ``mean`` and inverse
        std ``rstd``, ``(groups, n * C)``)."""
        if bns[0].momentum is None:  # cumulative average: rare, in place
            with torch.no_grad():
                update_running_stats(bns, mean,
                                     rstd.pow(-2).sub_(bns[0].eps), count,
                                     repeats)
            return
        if id(bns[0]) in self._targets:  # updated twice: keep the order
            self.apply()
        self._targets.add(id(bns[0]))
        self._items.append((bns, mean, rstd, count, repeats))

    @torch.no_grad()
    def apply(self):
        """Apply and forget every queued update."""
        items, self._items, self._targets = self._items, [], set()
        by_momentum = {}
        for item in items:
            by_momentum.setdefault(item[0][0].momentum, []).append(item)
        for m, group in by_momentum.items():
            _apply_updates(group, m)


def _apply_updates(items, m):
    """Every update of ``items`` (all BNs of momentum ``m``), step by step:
    step ``s`` updates each BN that has more than ``s`` steps."""
    # biased variances, then unbiased ones, as update_running_stats does
    var = torch._foreach_pow([rstd for _, _, rstd, _, _ in items], -2)
    torch._foreach_sub_(var, [bns[0].eps for bns, *_ in items])
    torch._foreach_mul_(var, [count / max(count - 1, 1)
                              for _, _, _, count, _ in items])
    plans = []  # (running mean, running var, counters, steps, mean, var)
    for (bns, mean, _, _, repeats), unbiased in zip(items, var):
        steps = [g for g in range(mean.shape[0]) for _ in range(repeats)]
        if len(bns) == 1:
            bn = bns[0]
            buffers = (bn.running_mean, bn.running_var,
                       [bn.num_batches_tracked])
        else:
            flat = shared_running_stats(bns) or share_running_stats(bns)
            buffers = (flat[0], flat[1], [flat[2]])
        plans.append((*buffers, steps, mean, unbiased))
    for s in range(max((len(p[3]) for p in plans), default=0)):
        now = [p for p in plans if len(p[3]) > s]
        for target, source in ((0, 4), (1, 5)):
            buffers = [p[target] for p in now]
            torch._foreach_mul_(buffers, 1 - m)
            torch._foreach_add_(buffers, [p[source][p[3][s]] for p in now],
                                alpha=m)
    counters = [c for p in plans for c in p[2]]
    torch._foreach_add_(counters, [len(p[3]) for p in plans])


def _update_one(bn, mean, unbiased_var):
    """One running-statistics update, as ``nn.BatchNorm2d`` does it."""
    bn.num_batches_tracked.add_(1)
    m = bn.momentum  # None: cumulative moving average
    if m is None:
        m = 1.0 / float(bn.num_batches_tracked)
    bn.running_mean.mul_(1 - m).add_(mean, alpha=m)
    bn.running_var.mul_(1 - m).add_(unbiased_var, alpha=m)


def update_running_stats(bns, means, variances, count, repeats=1):
    """``nn.BatchNorm2d``'s updates for stacked groups, in order, from the
    batch ``means`` and biased ``variances`` ``(groups, n * C)`` of
    ``count`` values per channel. The n ``bns`` (the fused edges of one
    state) are updated together on their concatenated channels: the same
    elementwise arithmetic."""
    first = bns[0]
    unbiased = variances * (count / max(count - 1, 1))
    steps = [g for g in range(means.shape[0]) for _ in range(repeats)]
    if first.momentum is None or len(bns) == 1:
        c = first.num_features
        for e, bn in enumerate(bns):
            cols = slice(e * c, (e + 1) * c)
            for g in steps:
                _update_one(bn, means[g, cols], unbiased[g, cols])
        return
    mean, var, tracked = shared_running_stats(bns) or share_running_stats(
        bns)
    m = first.momentum
    for g in steps:
        mean.mul_(1 - m).add_(means[g], alpha=m)
        var.mul_(1 - m).add_(unbiased[g], alpha=m)
    tracked.add_(len(steps))


_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def share_running_stats(bns):
    """Re-bind the running statistics of ``bns`` as views of flat tensors
    (returned: mean, var, counters), so updating the fused edges of one
    state is one in-place op, not n gathers and scatters. Buffers stay
    ordinary module state (``load_state_dict`` copies in place); ``.to``
    replaces them, and :func:`shared_running_stats` then says so."""
    flat = [torch.cat([bn._buffers[name].reshape(-1) for bn in bns])
            for name in _BUFFERS]
    c = bns[0].num_features
    for e, bn in enumerate(bns):
        bn._buffers['running_mean'] = flat[0][e * c:(e + 1) * c]
        bn._buffers['running_var'] = flat[1][e * c:(e + 1) * c]
        bn._buffers['num_batches_tracked'] = flat[2][e]
    bns[0].__dict__['_shared_stats'] = (tuple(bns), *flat)
    return tuple(flat)


def shared_running_stats(bns):
    """The flat tensors of :func:`share_running_stats` if ``bns``' buffers
    are still views of them, else None."""
    shared = bns[0].__dict__.get('_shared_stats')
    if shared is None or len(shared[0]) != len(bns):
        return None
    members, *flat = shared
    for bn, member in zip(bns, members):
        if bn is not member or any(bn._buffers[name]._base is not whole
                                   for name, whole in zip(_BUFFERS, flat)):
            return None
    return tuple(flat)
