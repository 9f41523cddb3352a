"""only_grad_for: the α/β step (forward and backward) with the weights
frozen."""
from contextlib import nullcontext

import pytest
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from mmseg_autodeeplab.engine.utils import only_grad_for
from mmseg_autodeeplab.models import AutoDeepLabSupernet


def test_flags_inside_and_restored_after():
    net = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 1))
    net[1].bias.requires_grad_(False)  # frozen by the user: stays frozen
    keep = [net[0].bias]
    before = [p.requires_grad for p in net.parameters()]
    with only_grad_for(net, keep):
        assert [p.requires_grad for p in net.parameters()] == [
            False, True, False, False]
    assert [p.requires_grad for p in net.parameters()] == before
    with pytest.raises(RuntimeError), only_grad_for(net, keep):
        raise RuntimeError('a failing forward')
    assert [p.requires_grad for p in net.parameters()] == before


@pytest.mark.parametrize('with_cp', [False, True])
def test_arch_gradients_unchanged(with_cp, one_thread):
    """The fused kernels (autograd Functions) then compute no weight
    gradient; α/β's are bitwise those of the unfrozen forward."""
    torch.manual_seed(0)
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2,
                              with_cp=with_cp)
    with torch.no_grad():
        net.alphas.normal_()
        net.betas.normal_()
    x = torch.rand(2, 3, 33, 33)
    params = net.arch_parameters()

    def arch_grads(frozen):
        state = {k: v.clone() for k, v in net.state_dict().items()}
        with only_grad_for(net, params) if frozen else nullcontext():
            out = net(x)
            with _ConvBackwardMasks() as masks:
                grads = torch.autograd.grad(
                    sum((o**2).mean() for o in out), params)
        net.load_state_dict(state)  # the same BN statistics for both
        return grads, masks

    (plain, masks_plain), (frozen, masks) = arch_grads(False), \
        arch_grads(True)
    for a, b in zip(plain, frozen):
        assert torch.equal(a, b)
    # unfrozen, the fused kernels compute conv weight gradients nobody
    # asked for; frozen, no conv backward does
    assert any(m[1] for m in masks_plain)
    assert masks and not any(m[1] for m in masks)


class _ConvBackwardMasks(TorchDispatchMode):
    """The output masks (input, weight, bias) of every conv backward."""

    def __enter__(self):
        self.masks = []
        super().__enter__()
        return self.masks

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(tuple(args[-1]))
        return func(*args, **kwargs)
