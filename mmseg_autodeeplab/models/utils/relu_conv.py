"""ReLU then a bias-free conv, keeping the ReLU's INPUT for backward.

Autograd keeps ``relu(x)`` (the conv's input) beside whatever already holds
``x``. In the supernet ``x`` is a node state that several consumers (the
next layer's three resampling edges, the cells' preprocessing) each
rectify and keep again. Here the backward re-applies the ReLU to the kept
``x`` (one elementwise pass, no conv recomputed) and masks the input
gradient as ReLU's backward does: the same values as ``conv(relu(x))``
under autograd, one tensor fewer kept per consumer.
"""
import torch
import torch.nn.functional as F

_aten = torch.ops.aten


class _ReLUConv(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, stride, padding, dilation, groups):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, groups)
        return F.conv2d(F.relu(x), weight, None, stride, padding, dilation,
                        groups)

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        need_x, need_w = ctx.needs_input_grad[:2]
        # under autocast the conv ran in dy's dtype on cast inputs; the
        # gradients are cast back as autograd's cast nodes would
        dx, dw, _ = _aten.convolution_backward(
            dy, F.relu(x).to(dy.dtype), weight.to(dy.dtype), None, stride,
            padding, dilation, False, [0, 0], groups,
            [need_x, need_w, False])
        if dx is not None:
            dx = dx.to(x.dtype).masked_fill_(x <= 0, 0)  # ReLU's backward
        if dw is not None:
            dw = dw.to(weight.dtype)
        return dx, dw, None, None, None, None


def relu_conv(x, conv):
    """``conv(relu(x))`` for a bias-free ``nn.Conv2d`` with zero padding
    mode, ``x`` ``(N, C_in, H, W)`` -> ``(N, C_out, H', W')``."""
    if conv.bias is not None or conv.padding_mode != 'zeros' or \
            isinstance(conv.padding, str) or not torch.is_grad_enabled():
        return conv(F.relu(x))
    # nn.Conv2d keeps stride, padding (unless a string) and dilation as
    # pairs
    return _ReLUConv.apply(x, conv.weight, list(conv.stride),
                           list(conv.padding), list(conv.dilation),
                           conv.groups)


def relu_conv_norm(x, module):
    """A ``ReLUConvBN`` (ReLU, conv, norm) applied through
    :func:`relu_conv`: ``module[2](relu_conv(x, module[1]))``."""
    return module[2](relu_conv(x, module[1]))
