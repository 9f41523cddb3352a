"""Unit tests of the cell operators (spec section 1).

Every test that applies to "each operator" is parametrised over the ``OPS``
table itself, so an operator added to the table is tested automatically.
"""
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import mmseg_autodeeplab  # noqa: E402,F401  (applies the compat fixes)
from mmseg_autodeeplab.search_space import (OPS, PRIMITIVES, ZERO_OP,  # noqa
                                            build_op, check_op_names)

AFFINE_BN = dict(type='BN')
SEARCH_BN = dict(type='BN', affine=False)

ALL_OPS = list(OPS)
# operators with learnable weights at stride 1 (skip is the identity there)
PARAMETRIC = {'sep_conv_3x3', 'sep_conv_5x5', 'atrous_conv_3x3',
              'atrous_conv_5x5'}
pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


def _x(n=2, c=8, h=7, w=9, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    return x.requires_grad_(requires_grad)


def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


# -- the table ---------------------------------------------------------------

def test_table_is_the_papers_eight_operators_in_alpha_order():
    assert tuple(OPS) == PRIMITIVES
    assert len(PRIMITIVES) == 8
    assert set(PRIMITIVES) == {
        'none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect',
        'sep_conv_3x3', 'sep_conv_5x5', 'atrous_conv_3x3', 'atrous_conv_5x5'
    }
    assert ZERO_OP == 'none' and ZERO_OP in PRIMITIVES
    # package-level export is the same object the decoders use
    assert mmseg_autodeeplab.PRIMITIVES == PRIMITIVES


# -- shapes ------------------------------------------------------------------

@pytest.mark.parametrize('name', ALL_OPS)
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('hw', [(7, 9), (6, 5), (1, 1)])
def test_output_shape_odd_and_even_inputs(name, stride, hw):
    h, w = hw
    op = build_op(name, 8, stride, SEARCH_BN).eval()
    out = op(_x(h=h, w=w))
    expect = (h, w) if stride == 1 else (-(-h // 2), -(-w // 2))
    assert tuple(out.shape) == (2, 8) + expect, name


@pytest.mark.parametrize('name', ALL_OPS)
def test_stride2_7x9_gives_4x5_and_keeps_channels(name):
    # the factory signature is OPS[name](channels, stride, norm_cfg)
    op = OPS[name](5, 2, SEARCH_BN).eval()
    out = op(_x(c=5))
    assert tuple(out.shape) == (2, 5, 4, 5)
    assert out.dtype == torch.float32


# -- gradients ---------------------------------------------------------------

@pytest.mark.parametrize('name', ALL_OPS)
@pytest.mark.parametrize('stride', [1, 2])
def test_gradients_reach_input_and_every_parameter(name, stride):
    torch.manual_seed(0)
    op = build_op(name, 8, stride, AFFINE_BN).train()
    x = _x(requires_grad=True)
    out = op(x)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if name == ZERO_OP:
        # the zero op carries no signal at all
        assert torch.count_nonzero(x.grad) == 0
    else:
        assert torch.count_nonzero(x.grad) > 0, name
    params = list(op.named_parameters())
    if name in PARAMETRIC or (name == 'skip_connect' and stride == 2):
        assert params, f'{name} stride {stride} should be parametric'
    else:
        assert params == [], f'{name} should have no parameters'
    for pname, p in params:
        assert p.grad is not None, f'{name}.{pname} got no gradient'
        assert torch.count_nonzero(p.grad) > 0, f'{name}.{pname} zero grad'


# -- operator semantics ------------------------------------------------------

@pytest.mark.parametrize('stride', [1, 2])
def test_none_outputs_zeros(stride):
    op = build_op('none', 8, stride, SEARCH_BN)
    x = _x() * 1e6 + 3.0
    out = op(x)
    assert tuple(out.shape[2:]) == ((7, 9) if stride == 1 else (4, 5))
    assert torch.equal(out, torch.zeros_like(out))


def test_skip_connect_stride1_is_identity():
    op = build_op('skip_connect', 8, 1, AFFINE_BN)
    x = _x()
    assert torch.equal(op(x), x)


def test_skip_connect_stride2_is_relu_1x1conv_bn_on_every_other_pixel():
    op = build_op('skip_connect', 8, 2, AFFINE_BN).eval()
    convs = _convs(op)
    assert len(convs) == 1
    conv = convs[0]
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
    x = _x()
    bn = [m for m in op.modules() if isinstance(m, nn.BatchNorm2d)][0]
    ref = bn(nn.functional.conv2d(torch.relu(x)[:, :, ::2, ::2], conv.weight))
    torch.testing.assert_close(op(x), ref)


def test_max_pool_is_3x3_same_padding():
    op = build_op('max_pool_3x3', 1, 1, SEARCH_BN)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 0] = 1.0  # a corner impulse spreads to a 2x2 corner block
    out = op(x)[0, 0]
    expect = torch.zeros(5, 5)
    expect[:2, :2] = 1.0
    assert torch.equal(out, expect)


def test_avg_pool_excludes_padding_from_the_count():
    # count_include_pad=False: a constant image stays constant at borders
    op = build_op('avg_pool_3x3', 3, 1, SEARCH_BN)
    x = torch.full((1, 3, 5, 4), 2.5)
    torch.testing.assert_close(op(x), x)
    op2 = build_op('avg_pool_3x3', 3, 2, SEARCH_BN)
    out = op2(torch.full((1, 3, 7, 9), 2.5))
    torch.testing.assert_close(out, torch.full((1, 3, 4, 5), 2.5))


@pytest.mark.parametrize(
    'name', ['none', 'max_pool_3x3', 'avg_pool_3x3', 'atrous_conv_3x3',
             'atrous_conv_5x5'])
def test_stride2_output_is_the_stride1_output_subsampled(name):
    # "same" padding: output pixel (i, j) of the stride-2 op sits on input
    # pixel (2i, 2j), also for odd sizes (no half-pixel shifts)
    torch.manual_seed(1)
    op1 = build_op(name, 8, 1, AFFINE_BN).eval()
    op2 = build_op(name, 8, 2, AFFINE_BN).eval()
    op2.load_state_dict(op1.state_dict())
    x = _x(h=9, w=7)
    with torch.no_grad():
        torch.testing.assert_close(op2(x), op1(x)[:, :, ::2, ::2])


C = 8  # channels of the conv structure tests


def _conv_op(name, stride):
    """The operator ``name`` (C channels, search BN) and its convs."""
    op = build_op(name, C, stride, SEARCH_BN)
    return op, _convs(op)


@pytest.mark.parametrize('k', [3, 5])
@pytest.mark.parametrize('stride', [1, 2])
def test_sep_conv_structure(k, stride):
    op, convs = _conv_op(f'sep_conv_{k}x{k}', stride)
    assert len(convs) == 4
    depthwise = [m for m in convs if m.groups == C]
    pointwise = [m for m in convs if m.groups == 1]
    assert len(depthwise) == 2 and len(pointwise) == 2
    for m in depthwise:
        assert m.kernel_size == (k, k)
        assert tuple(m.weight.shape) == (C, 1, k, k)
        assert m.dilation == (1, 1)
    for m in pointwise:
        assert m.kernel_size == (1, 1)
        assert tuple(m.weight.shape) == (C, C, 1, 1)
    # two repeats of [ReLU, depthwise, pointwise, BN], in that order
    kinds = []
    for m in op.modules():
        if isinstance(m, nn.ReLU):
            kinds.append('relu')
        elif isinstance(m, nn.Conv2d):
            kinds.append('dw' if m.groups == C else 'pw')
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            kinds.append('bn')
    assert kinds == ['relu', 'dw', 'pw', 'bn'] * 2
    # only the first depthwise conv strides
    assert [m.stride for m in convs] == [(stride, stride)] + [(1, 1)] * 3


@pytest.mark.parametrize('k', [3, 5])
@pytest.mark.parametrize('stride', [1, 2])
def test_atrous_is_one_full_dilated_conv(k, stride):
    op, convs = _conv_op(f'atrous_conv_{k}x{k}', stride)
    assert len(convs) == 1, 'atrous must be ONE conv, not separable'
    conv = convs[0]
    assert tuple(conv.weight.shape) == (C, C, k, k)
    assert conv.groups == 1
    assert conv.dilation == (2, 2)
    assert conv.stride == (stride, stride)
    assert conv.padding == (k - 1, k - 1)  # dilation * (k - 1) / 2
    kinds = [type(m).__name__ for m in op.children()]
    assert kinds[0] == 'ReLU' and kinds[1] == 'Conv2d'
    assert isinstance(list(op.children())[2], nn.modules.batchnorm._BatchNorm)


# parameter counts for C = 8, by hand:
#   sep k×k  = 2 × (8·k·k depthwise + 8·8 pointwise [+ 2·8 BN γ/β])
#   atrous k = 8·8·k·k [+ 2·8 BN γ/β]
#   skip at stride 2 = 8·8 [+ 2·8]
HAND_COUNTS = {
    # name: (stride 1 affine-free, stride 1 affine, stride 2 affine)
    'none': (0, 0, 0),
    'max_pool_3x3': (0, 0, 0),
    'avg_pool_3x3': (0, 0, 0),
    'skip_connect': (0, 0, 80),
    'sep_conv_3x3': (272, 304, 304),
    'sep_conv_5x5': (528, 560, 560),
    'atrous_conv_3x3': (576, 592, 592),
    'atrous_conv_5x5': (1600, 1616, 1616),
}


@pytest.mark.parametrize('name', ALL_OPS)
def test_parameter_counts_c8(name):
    assert name in HAND_COUNTS, f'no hand count for new operator {name}'
    free, affine, strided = HAND_COUNTS[name]
    assert _n_params(build_op(name, 8, 1, SEARCH_BN)) == free
    assert _n_params(build_op(name, 8, 1, AFFINE_BN)) == affine
    assert _n_params(build_op(name, 8, 2, AFFINE_BN)) == strided


@pytest.mark.parametrize('name', ALL_OPS)
def test_search_norm_has_no_affine_parameters(name):
    op = build_op(name, 8, 2, SEARCH_BN)
    for m in op.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert not m.affine and m.weight is None


# -- name checking -----------------------------------------------------------

def test_check_op_names_accepts_all_known_names():
    assert check_op_names(PRIMITIVES) is None
    assert check_op_names([]) is None


def test_check_op_names_rejects_unknown_name_naming_it():
    with pytest.raises(ValueError) as e:
        check_op_names(['sep_conv_3x3', 'conv_7x7'], where='my.primitives')
    msg = str(e.value)
    assert "'conv_7x7'" in msg
    assert 'my.primitives' in msg
    assert 'sep_conv_3x3' in msg  # lists what is expected
    assert '\n' not in msg


def test_build_op_rejects_unknown_name():
    with pytest.raises(ValueError, match='dil_conv_3x3'):
        build_op('dil_conv_3x3', 8)
