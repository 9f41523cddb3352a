"""sep_stage: [ReLU] -> depthwise -> pointwise keeping only the input."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_autodeeplab.models.utils.sep_stage import sep_stage


def _reference(x, dw, pw, repeat, relu, padding, dilation, groups):
    a = x.repeat(1, repeat, 1, 1)
    if relu:
        a = F.relu(a)
    d = F.conv2d(a, dw, None, 1, padding, dilation, a.shape[1])
    return F.conv2d(d, pw, None, 1, 0, 1, groups)


def _weights(c, repeat, groups, k, dtype=torch.float64):
    dw = torch.randn(repeat * c, 1, k, k, dtype=dtype, requires_grad=True)
    pw = torch.randn(repeat * c, repeat * c // groups, 1, 1, dtype=dtype,
                     requires_grad=True)
    return dw, pw


@pytest.mark.parametrize('repeat,relu,k,dilation,groups,layout', [
    (1, True, 3, 1, 1, torch.contiguous_format),
    (3, False, 3, 1, 3, torch.channels_last),
    (2, True, 5, 1, 2, torch.channels_last),
    (1, False, 3, 2, 1, torch.channels_last)])
def test_values_and_gradients_equal_autograd(repeat, relu, k, dilation,
                                             groups, layout):
    torch.manual_seed(0)
    c = 4
    dw, pw = _weights(c, repeat, groups, k)
    padding = (dilation * (k - 1) // 2, ) * 2
    x = torch.randn(2, c, 9, 7, dtype=torch.float64, requires_grad=True)
    y = sep_stage(x, dw, pw, repeat, relu, padding, (dilation, ) * 2,
                  groups, layout)
    y_ref = _reference(x, dw, pw, repeat, relu, padding, (dilation, ) * 2,
                       groups)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, dw, pw), dy)
    grads_ref = torch.autograd.grad(y_ref, (x, dw, pw), dy)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-11)
    if relu:
        assert (grads[0][x <= 0] == 0).all()


def test_keeps_only_the_input_of_activation_size(saved_tensors):
    torch.manual_seed(0)
    dw, pw = _weights(3, 2, 2, 3, torch.float32)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    kept = saved_tensors(lambda: sep_stage(
        x, dw, pw, 2, True, (1, 1), (1, 1), 2, torch.channels_last))
    activations = [t for t in kept if t.dim() == 4 and t.shape[-1] == 8]
    assert len(activations) == 1 and activations[0] is x


def test_bfloat16_autocast_matches_autograd():
    torch.manual_seed(0)
    dw, pw = _weights(4, 2, 2, 3, torch.float32)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = sep_stage(x, dw, pw, 2, True, (1, 1), (1, 1), 2)
        y_ref = _reference(x, dw, pw, 2, True, (1, 1), (1, 1), 2)
    assert y.dtype == y_ref.dtype == torch.bfloat16
    assert torch.equal(y, y_ref)
    dy = torch.randn_like(y)
    g = torch.autograd.grad(y, (x, dw, pw), dy)
    g_ref = torch.autograd.grad(y_ref, (x, dw, pw), dy)
    for a, b in zip(g, g_ref):
        assert a.dtype == b.dtype == torch.float32
        assert torch.equal(a, b)


def test_no_grad_gives_the_same_values():
    torch.manual_seed(0)
    dw, pw = _weights(4, 3, 3, 3, torch.float32)
    x = torch.randn(2, 4, 6, 6)
    y = sep_stage(x, dw, pw, 3, False, (1, 1), (1, 1), 3, torch.channels_last)
    with torch.no_grad():
        y0 = sep_stage(x, dw, pw, 3, False, (1, 1), (1, 1), 3,
                       torch.channels_last)
    assert torch.equal(y, y0)
