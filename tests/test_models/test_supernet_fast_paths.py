"""The fused supernet computes exactly what the per-edge reference does.

Reference (``impl='per_edge'``): every cell applied separately to each
incoming input, every edge its own ops, plain ``nn.BatchNorm2d``. Fast path
(``impl='fused'``): inputs stacked along the batch (each input's BN
statistics kept separate) and all edges reading a state fused into one conv
per operator. Compared in float64: outputs, every gradient, every BN running
statistic, train and eval mode.
"""
import pytest
import torch
import torch.nn as nn

from mmseg_autodeeplab.models import AutoDeepLabSupernet
from mmseg_autodeeplab.models.utils import stacked_batch_norm


def _pair(**fast):
    torch.manual_seed(0)
    ref = AutoDeepLabSupernet(
        num_layers=4, filter_multiplier=2, impl='per_edge',
        bn_convention=fast.get('bn_convention', 'pytorch')).double()
    net = AutoDeepLabSupernet(num_layers=4, filter_multiplier=2,
                              **fast).double()
    net.load_state_dict(ref.state_dict())
    with torch.no_grad():  # non-uniform α/β so every weight matters
        ref.alphas.normal_()
        ref.betas.normal_()
        net.alphas.copy_(ref.alphas)
        net.betas.copy_(ref.betas)
    return ref, net


# the plain fused path in the default suite; its variants (seconds each)
# in the slow pass .ci/run adds
@pytest.mark.parametrize('fast', [
    dict(impl='fused'),
    pytest.param(dict(impl='fused', with_cp=True), marks=pytest.mark.slow),
    pytest.param(dict(impl='fused', with_cp=[0, 2]), marks=pytest.mark.slow),
    pytest.param(dict(impl='fused', bn_convention='tf'),
                 marks=pytest.mark.slow),
], ids=['fused', 'fused+checkpointing', 'fused+checkpointing-levels-0-2',
        'fused+tf-bn'])
def test_fast_path_equals_reference(fast):
    ref, net = _pair(**fast)
    x = torch.rand(2, 3, 41, 35, dtype=torch.float64)
    for _ in range(2):  # two steps: running stats are used and updated
        ref.zero_grad()
        net.zero_grad()
        out_ref, out = ref(x), net(x)
        for a, b in zip(out_ref, out):
            assert a.shape == b.shape
            torch.testing.assert_close(b, a, rtol=0, atol=1e-11)
        sum((o**2).mean() for o in out_ref).backward()
        sum((o**2).mean() for o in out).backward()
        grads = dict(net.named_parameters())
        for name, p in ref.named_parameters():
            torch.testing.assert_close(grads[name].grad, p.grad, rtol=0,
                                       atol=1e-11, msg=name)
    state = net.state_dict()
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(state[name].double(), value.double(),
                                   rtol=0, atol=1e-12, msg=name)
    ref.eval()
    net.eval()
    for a, b in zip(ref(x), net(x)):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-11)


@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('track', [True, False])
def test_stacked_bn_equals_separate_bn(momentum, track):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4, momentum=momentum, affine=False,
                        track_running_stats=track).double()
    plain = nn.BatchNorm2d(4, momentum=momentum, affine=False,
                           track_running_stats=track).double()
    x = torch.randn(6, 4, 5, 3, dtype=torch.float64)
    y = stacked_batch_norm(x, [bn], groups=3)
    expected = torch.cat([plain(x[2 * g:2 * g + 2]) for g in range(3)])
    torch.testing.assert_close(y, expected)
    x2 = torch.randn(2, 4, 5, 3, dtype=torch.float64)
    y2 = stacked_batch_norm(x2, [bn], groups=1, repeats=3)
    for _ in range(3):
        expected2 = plain(x2)
    torch.testing.assert_close(y2, expected2)
    # a checkpoint recomputation: same output, statistics left alone
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    torch.testing.assert_close(
        stacked_batch_norm(x2, [bn], groups=1, update=False), expected2)
    for name, value in bn.state_dict().items():
        assert torch.equal(value, state[name]), name
    if track:
        torch.testing.assert_close(bn.running_mean, plain.running_mean)
        torch.testing.assert_close(bn.running_var, plain.running_var)
        assert int(bn.num_batches_tracked) == int(
            plain.num_batches_tracked) == 6


def test_bad_impl_options_are_one_line():
    for kwargs, match in (
            (dict(impl='stacked'), 'impl must be one of'),
            (dict(with_cp=True, impl='per_edge'), 'with_cp needs'),
            (dict(with_cp=[0, 4]), r'with_cp must be .* 0\.\.3, got \[0, 4\]'),
            (dict(with_cp='all'), 'with_cp must be a bool or a list'),
            (dict(op_norm_cfg=dict(type='BN')), "needs op_norm_cfg"),
            (dict(bn_convention='caffe'), 'bn_convention')):
        with pytest.raises(ValueError, match=match):
            AutoDeepLabSupernet(num_layers=3, filter_multiplier=2, **kwargs)


def test_with_cp_levels_pick_the_checkpointed_nodes():
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2,
                              with_cp=[2, 0, 2])
    assert net.with_cp == (0, 2)
    assert [net._checkpointed(j) for j in range(4)] == [
        True, False, True, False]
    assert AutoDeepLabSupernet(num_layers=3, filter_multiplier=2,
                               with_cp=[]).with_cp is False
    net.eval()  # no checkpointing outside training
    assert not net._checkpointed(0)


def test_tf_bn_convention_sets_every_bn():
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2,
                              bn_convention='tf')
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all((m.eps, m.momentum) == (1e-3, 3e-4) for m in bns)


def test_shared_running_stats_survive_save_load_and_moves():
    import io

    from mmseg_autodeeplab.models.utils.stacked_bn import \
        shared_running_stats
    torch.manual_seed(0)
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2)
    x = torch.rand(2, 3, 33, 33)
    net(x)  # the fused BNs now share flat running-statistics tensors
    edges = net.cells['0_0'].edges
    bns = [edges[i].ops[-1][2] for i in (0, 2, 5, 9, 14)]  # read H(l-2)
    flat = shared_running_stats(bns)
    assert flat is not None and flat[0].shape == (5 * bns[0].num_features, )
    assert flat[2].tolist() == [1] * 5
    # a checkpoint round trip (weights-only load) gives the same values
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2)
    other.load_state_dict(state)
    loaded = other.state_dict()
    for name, value in net.state_dict().items():
        assert torch.equal(loaded[name], value), name
    # loading copies in place: the shared views stay shared
    net.load_state_dict(state)
    assert shared_running_stats(bns) is not None
    # a dtype move replaces the buffers; the next forward shares them again
    # with their values kept
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.double()
    assert shared_running_stats(bns) is None
    net.eval()
    net(x.double())
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, before[name].to(value.dtype),
                                   msg=name)
    net.train()
    net(x.double())
    assert shared_running_stats(bns) is not None
    assert shared_running_stats(bns)[2].tolist() == [2] * 5
