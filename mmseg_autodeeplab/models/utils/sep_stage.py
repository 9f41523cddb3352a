"""One stage of the fused separable convs: [ReLU], depthwise, pointwise.

Under autograd a stage keeps three tensors per edge: the depthwise conv's
input (the ReLU output, or the state repeated once per edge), the depthwise
output (the pointwise conv's input) and, in the BN after it, the
normalised output. The first two are cheap to rebuild from the stage's
input, which is kept anyway (the shared ReLU of the state, or the previous
BN's output, which that BN keeps): here only that input is kept, and the
backward re-runs the ReLU, the repeat and the depthwise conv (the smallest
conv of the stage: ``k*k`` multiply-adds per output value against the
pointwise conv's ``C``). The values and gradients are autograd's.
"""
import torch
import torch.nn.functional as F

_aten = torch.ops.aten


def _depthwise(x, dw, repeat, relu, padding, dilation, layout, dtype):
    """The depthwise conv's input and output, in ``dtype``."""
    if repeat > 1:  # edge-major: [edge 0's channels, edge 1's, ...]
        x = x.repeat(1, repeat, 1, 1)
    # oneDNN's depthwise conv on CPU is several times faster (backward
    # above all) in channels_last
    x = x.contiguous(memory_format=layout)
    if relu:
        x = F.relu(x)
    a = x.to(dtype)
    return a, F.conv2d(a, dw.to(dtype), None, 1, padding, dilation,
                       a.shape[1])


class _SepStage(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, dw, pw, repeat, relu, padding, dilation, groups,
                layout):
        ctx.save_for_backward(x, dw, pw)
        ctx.conf = (repeat, relu, padding, dilation, groups, layout)
        # under autocast the convs cast their inputs themselves
        _, d = _depthwise(x, dw, repeat, relu, padding, dilation, layout,
                          x.dtype)
        return F.conv2d(d, pw, None, 1, 0, 1, groups)

    @staticmethod
    def backward(ctx, dp):
        x, dw, pw = ctx.saved_tensors
        repeat, relu, padding, dilation, groups, layout = ctx.conf
        need_x, need_dw, need_pw = ctx.needs_input_grad[:3]
        # the forward's convs ran in dp's dtype (autocast) on cast inputs;
        # the gradients are cast back as autograd's cast nodes would
        dtype = dp.dtype
        dw_c = dw.to(dtype)  # cast once: _depthwise's cast is then a no-op
        a, d = _depthwise(x, dw_c, repeat, relu, padding, dilation, layout,
                          dtype)
        channels = a.shape[1]
        dd, dpw, _ = _aten.convolution_backward(
            dp, d, pw.to(dtype), None, [1, 1], [0, 0], [1, 1], False,
            [0, 0], groups, [True, need_pw, False])
        del d
        da, ddw, _ = _aten.convolution_backward(
            dd, a, dw_c, None, [1, 1], padding, dilation, False, [0, 0],
            channels, [need_x, need_dw, False])
        dx = None
        if need_x:
            # cast first: autograd sums the copies after the cast's backward
            dx = da.to(x.dtype)
            if repeat > 1:  # the repeat's backward: sum over the copies
                n, _, h, w = dx.shape
                dx = dx.view(n, repeat, channels // repeat, h, w).sum(1)
            if relu:  # ReLU's backward, from its kept input
                dx = dx.masked_fill_(x <= 0, 0)
        return (dx, None if ddw is None else ddw.to(dw.dtype),
                None if dpw is None else dpw.to(pw.dtype),
                None, None, None, None, None, None)


def sep_stage(x, dw, pw, repeat=1, relu=False, padding=(1, 1),
              dilation=(1, 1), groups=1, layout=torch.contiguous_format):
    """``pointwise(depthwise([relu](x repeated)))``, keeping only ``x``.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        dw (Tensor): depthwise weights ``(repeat * C, 1, k, k)``.
        pw (Tensor): pointwise weights ``(repeat * C, repeat * C / groups,
            1, 1)``; ``groups`` convs side by side (one per edge).
        repeat (int): copies of ``x`` along the channels (edge-major),
            one per edge reading it.
        relu (bool): apply a ReLU before the depthwise conv.
        padding, dilation (tuple[int, int]): the depthwise conv's.
        layout (torch.memory_format): of the depthwise conv's input.

    Returns:
        Tensor: ``(N, repeat * C, H', W')``.
    """
    return _SepStage.apply(x, dw, pw, repeat, relu, list(padding),
                           list(dilation), groups, layout)
