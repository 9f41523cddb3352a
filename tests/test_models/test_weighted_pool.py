"""weighted_pool: pool(x) times each edge's weight, keeping only x."""
import pytest
import torch
import torch.nn as nn

from mmseg_autodeeplab.models.utils.weighted_pool import weighted_pool

POOLS = {
    'max': nn.MaxPool2d(3, 1, 1),
    'avg': nn.AvgPool2d(3, 1, 1, count_include_pad=False),
    # settings the search space does not use: the arguments reach aten
    'max_strided_ceil': nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
    'avg_default_stride': nn.AvgPool2d(2, count_include_pad=True),
}


def _reference(x, pool, weight):
    return pool(x).unsqueeze(1) * weight.view(1, -1, 1, 1, 1)


@pytest.mark.parametrize('name', sorted(POOLS))
def test_values_and_gradients_equal_autograd(name):
    torch.manual_seed(0)
    pool = POOLS[name]
    x = torch.randn(3, 4, 9, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y, y_ref = weighted_pool(x, pool, w), _reference(x, pool, w)
    assert y.shape == y_ref.shape
    assert torch.equal(y, y_ref)
    dy = torch.randn_like(y)
    for g, g_ref in zip(torch.autograd.grad(y, (x, w), dy),
                        torch.autograd.grad(y_ref, (x, w), dy)):
        torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('needs', [(True, False), (False, True)])
def test_one_input_needing_a_gradient(needs):
    torch.manual_seed(0)
    pool = POOLS['max']
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=needs[0])
    w = torch.randn(2, dtype=torch.float64, requires_grad=needs[1])
    wanted = x if needs[0] else w
    dy = torch.randn(2, 2, 3, 6, 6, dtype=torch.float64)
    g, = torch.autograd.grad(weighted_pool(x, pool, w), wanted, dy)
    g_ref, = torch.autograd.grad(_reference(x, pool, w), wanted, dy)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('name', ['max', 'avg'])
def test_keeps_only_the_input(name, saved_tensors):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(4, requires_grad=True)
    kept = saved_tensors(lambda: weighted_pool(x, POOLS[name], w))
    assert len(kept) == 2 and kept[0] is x and kept[1] is w
    # the plain product keeps the pooled tensor (and max pooling its
    # indices): what this saves
    plain = saved_tensors(lambda: _reference(x, POOLS[name], w))
    assert sum(t.numel() for t in plain if t.dim() == 4) >= x.numel()


def test_bfloat16_matches_autograd_bitwise():
    torch.manual_seed(0)
    pool = POOLS['avg']
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    w = torch.randn(3, requires_grad=True)
    xb, wb = x.bfloat16(), w.bfloat16()
    y, y_ref = weighted_pool(xb, pool, wb), _reference(xb, pool, wb)
    assert y.dtype == y_ref.dtype == torch.bfloat16
    assert torch.equal(y, y_ref)
    dy = torch.randn_like(y)
    for g, g_ref in zip(torch.autograd.grad(y, (x, w), dy),
                        torch.autograd.grad(y_ref, (x, w), dy)):
        assert torch.equal(g, g_ref)
