"""relu_conv: conv(relu(x)) with the ReLU's input kept, not its output."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg_autodeeplab.models.utils import relu_conv


@pytest.mark.parametrize('kwargs', [
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=1),
    dict(kernel_size=3, padding=2, dilation=2),
    dict(kernel_size=3, padding=1, groups=2)])
def test_values_and_gradients_equal_autograd(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, bias=False, **kwargs).double()
    x = torch.randn(2, 4, 9, 7, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = relu_conv(x, conv), conv(F.relu(x_ref))
    assert torch.equal(y, y_ref)
    dy = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, conv.weight), dy)
    gx_ref, gw_ref = torch.autograd.grad(y_ref, (x_ref, conv.weight), dy)
    torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-13)
    torch.testing.assert_close(gw, gw_ref, rtol=0, atol=1e-13)
    assert (gx[x <= 0] == 0).all()


def test_keeps_the_input_not_its_relu(saved_tensors):
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    kept = saved_tensors(lambda: relu_conv(x, conv))
    activations = [t for t in kept if t.shape == x.shape]
    assert len(activations) == 1 and activations[0] is x


def test_bfloat16_autocast_gradients_match_autograd():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = relu_conv(x, conv)
        y_ref = conv(F.relu(x))
    assert y.dtype == y_ref.dtype == torch.bfloat16
    assert torch.equal(y, y_ref)
    dy = torch.randn_like(y)
    g = torch.autograd.grad(y, (x, conv.weight), dy)
    g_ref = torch.autograd.grad(y_ref, (x, conv.weight), dy)
    for a, b in zip(g, g_ref):
        assert a.dtype == b.dtype == torch.float32
        assert torch.equal(a, b)
