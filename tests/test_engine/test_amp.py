"""Mixed precision in the search (bfloat16 on CPU): both steps autocast,
α/β stay float32, gradients near float32's, exact resume, ``--amp`` in the
dumped config, one-line errors for what the device cannot do."""
import os.path as osp

import pytest
import torch
from mmengine.optim import AmpOptimWrapper
from mmengine.runner import Runner

from mmseg_autodeeplab.cli.search import main as search_main
from mmseg_autodeeplab.engine import AutoDeepLabOptimWrapperConstructor
from mmseg_autodeeplab.engine.amp import (SearchAmpOptimWrapper, amp_cfgs,
                                          resolve_amp_dtype, scale_loss)
from mmseg_autodeeplab.models.backbones.autodeeplab_supernet import \
    AutoDeepLabSupernet

pytestmark = pytest.mark.usefixtures('one_thread')

DEMO_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'autodeeplab_search',
    'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')

AMP = {'optim_wrapper.weights.type': 'AmpOptimWrapper'}
SGD = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
ADAM = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=3e-3))


#: (device, dtype) pairs to test; the CUDA ones run on a GPU only
_CASES = [pytest.param('cpu', torch.bfloat16, id='cpu-bf16')] + [
    pytest.param('cuda', dt, id=f'cuda-{name}', marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason='needs a GPU'))
    for dt, name in ((torch.float16, 'fp16'), (torch.bfloat16, 'bf16'))]


def _arch_grads(impl, amp, device='cpu', dtype=torch.bfloat16, seed=0):
    """α/β gradients of one fixed loss on a fixed batch (training mode)."""
    torch.manual_seed(seed)
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=4, impl=impl)
    net.alphas.data.normal_(0, 0.5)  # away from uniform: visible signal
    net.betas.data.normal_(0, 0.5)
    net.to(device)
    x = torch.randn(2, 3, 41, 41, generator=torch.Generator().manual_seed(1))
    x = x.to(device)
    with torch.autocast(device, dtype=dtype, enabled=amp):
        outs = net(x)
        # a loss that depends on every level and on the activations' values
        loss = sum((o.float() ** 2).mean() * (i + 1)
                   for i, o in enumerate(outs))
    return [g for g in torch.autograd.grad(loss, net.arch_parameters())], \
        outs, net


@pytest.mark.parametrize('device,dtype', _CASES)
@pytest.mark.parametrize('impl', ['per_edge', 'fused'])
def test_amp_arch_gradients_agree_with_fp32(impl, device, dtype):
    """On a fixed batch, autocast's α/β gradients lie within 5% (relative
    L2 norm; bfloat16 keeps ~3 significant digits, and the errors of 3
    layers of convs add up: 2.7% for α, 0.7-1.2% for β on CPU) of
    float32's, and point the same way (cosine > 0.998)."""
    ref, _, _ = _arch_grads(impl, False, device, dtype)
    got, outs, net = _arch_grads(impl, True, device, dtype)
    assert all(o.dtype == dtype for o in outs)  # really autocast
    for p in net.arch_parameters():  # α/β stay float32 parameters
        assert p.dtype == torch.float32
    for r, g in zip(ref, got):
        assert g.dtype == torch.float32
        rel = (g - r).norm() / r.norm()
        cos = torch.nn.functional.cosine_similarity(g.flatten(), r.flatten(),
                                                    dim=0)
        assert rel < 0.05 and cos > 0.998, (impl, float(rel), float(cos))


def test_fused_and_per_edge_agree_under_autocast():
    """The fused path keeps the autocast dtype (no float32 promotion by the
    α/β weights) and matches the reference within bfloat16's rounding."""
    ref, ref_outs, _ = _arch_grads('per_edge', amp=True)
    got, outs, _ = _arch_grads('fused', amp=True)
    for a, b in zip(ref_outs, outs):
        assert b.dtype == torch.bfloat16
        assert (a.float() - b.float()).norm() / a.float().norm() < 0.03
    for r, g in zip(ref, got):
        assert (g - r).norm() / r.norm() < 0.05


def test_constructor_builds_amp_wrappers_for_both_steps():
    net = AutoDeepLabSupernet(num_layers=3, filter_multiplier=2)
    wrappers = AutoDeepLabOptimWrapperConstructor(
        dict(weights=dict(SGD, type='AmpOptimWrapper'), arch=ADAM))(net)
    for name in ('weights', 'arch'):
        w = wrappers[name]
        assert isinstance(w, AmpOptimWrapper)  # mmengine's, on CPU too
        assert w.cast_dtype == torch.bfloat16
        assert not w.loss_scaler.is_enabled()  # bfloat16: no loss scaling
        loss = torch.tensor(2.0)
        assert scale_loss(w, loss) is loss
    plain = AutoDeepLabOptimWrapperConstructor(dict(weights=SGD,
                                                    arch=ADAM))(net)
    assert type(plain['arch']).__name__ == 'OptimWrapper'
    assert scale_loss(plain['arch'], loss) is loss


def test_loss_scaling_only_for_float16():
    """bfloat16 runs unscaled; float16 (a GPU's default; refused on CPU)
    scales the loss, and a non-finite gradient skips the step and lowers
    the scale."""
    p = torch.nn.Parameter(torch.ones(3))
    w = SearchAmpOptimWrapper(
        optimizer=torch.optim.SGD([p], lr=0.1), dtype='bfloat16',
        device='cpu')
    assert not w.loss_scaler.is_enabled()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='bfloat16 only'):
            SearchAmpOptimWrapper(optimizer=torch.optim.SGD([p], lr=0.1),
                                  dtype='float16', device='cpu')
        return
    p = torch.nn.Parameter(torch.ones(3, device='cuda'))
    w = SearchAmpOptimWrapper(optimizer=torch.optim.SGD([p], lr=0.1),
                              dtype='float16', device='cuda')
    scale = w.loss_scaler.get_scale()
    assert scale > 1
    loss = (2 * p).sum()
    assert scale_loss(w, loss).item() == pytest.approx(loss.item() * scale)
    before = p.detach().clone()
    p.grad = torch.full_like(p, float('inf'))
    w.step()
    assert torch.equal(p.detach(), before)  # skipped
    assert w.loss_scaler.get_scale() < scale


@pytest.mark.parametrize('dtype,device,message', [
    ('float16', 'cpu', 'optim_wrapper.weights.dtype="float16": mixed '
     'precision on CPU runs in bfloat16 only'),
    ('int8', 'cpu', "optim_wrapper.weights.dtype='int8': expected None"),
    (None, 'mps', "mixed precision needs a CPU or CUDA device, got 'mps'"),
])
def test_unsupported_dtype_or_device_is_one_line(dtype, device, message):
    with pytest.raises(ValueError) as e:
        resolve_amp_dtype(dtype, device)
    assert message in str(e.value) and '\n' not in str(e.value)


def test_arch_amp_without_weights_amp_is_refused():
    with pytest.raises(ValueError, match='both steps share one autocast'):
        amp_cfgs(SGD, dict(ADAM, type='AmpOptimWrapper'), 'cpu')


def test_cli_float16_on_cpu_is_one_line(capsys, tmp_path, tiny_cityscapes,
                                        tiny_search_opts):
    if torch.cuda.is_available():
        pytest.skip('float16 is valid on a GPU')
    opts = tiny_search_opts(tiny_cityscapes, str(tmp_path / 'w'))
    opts['optim_wrapper.weights.dtype'] = 'float16'
    rc = search_main([DEMO_CONFIG, '--amp', '--cfg-options'] +
                     [f'{k}={v}' for k, v in opts.items()])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith('error: optim_wrapper.weights.dtype="float16"')


def _final_state(runner):
    return {k: v.detach().clone() for k, v in
            runner.model.state_dict().items()}


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_cli_amp_search_runs_and_dumps_amp(tiny_cityscapes, tmp_path,
                                           capsys, tiny_search_opts):
    """``tools/search.py --amp``: a bfloat16 CPU search runs through its
    α/β phase and AmpOptimWrapper lands in the dumped config."""
    opts = tiny_search_opts(tiny_cityscapes, str(tmp_path / 'cli'))
    rc = search_main([DEMO_CONFIG, '--amp', '--cfg-options'] +
                     [f'{k}={v}' for k, v in opts.items()])
    assert rc == 0, capsys.readouterr().err[-2000:]
    dumped = osp.join(str(tmp_path / 'cli'), osp.basename(DEMO_CONFIG))
    text = open(dumped).read()
    assert "type='AmpOptimWrapper'" in text and "loss_scale='dynamic'" in \
        text
    history = osp.join(str(tmp_path / 'cli'), 'search_history.json')
    assert osp.isfile(history)


@pytest.mark.slow
def test_amp_search_resumes_exactly(tiny_cityscapes, tmp_path, tiny_cfg):
    """An interrupted + resumed bfloat16 search ends bitwise equal to an
    uninterrupted one (the scaler state, if any, is in the checkpoint)."""
    from mmengine.hooks import Hook
    build_tiny_cfg = tiny_cfg
    extra = dict(AMP, **{
        'train_cfg.max_epochs': 2, 'train_cfg.arch_start_epoch': 1,
        'train_cfg.val_interval': 2, 'train_cfg.val_begin': 100,
        'default_hooks.checkpoint.by_epoch': False,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'randomness': dict(seed=0, deterministic=True)})
    full = Runner.from_cfg(build_tiny_cfg(tiny_cityscapes,
                                          str(tmp_path / 'full'), **extra))
    full.train()
    loop = full.train_loop
    assert isinstance(full.optim_wrapper['arch'], SearchAmpOptimWrapper)
    reference = _final_state(full)
    stop = loop.arch_start_iter + 1  # inside the α/β phase
    assert stop < loop.max_iters

    class StopAt(Hook):
        priority = 'LOWEST'  # after this iteration's checkpoint

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if runner.iter + 1 == stop:
                raise _Interrupt()

    work = str(tmp_path / 'interrupted')
    first = Runner.from_cfg(build_tiny_cfg(tiny_cityscapes, work, **extra))
    first.register_hook(StopAt())
    with pytest.raises(_Interrupt):
        first.train()
    ckpt = torch.load(osp.join(work, f'iter_{stop}.pth'), weights_only=True)
    # the scaler's state travels with each optimizer (empty for bfloat16,
    # CPU's; float16, a GPU's default, has a scale)
    for name in ('weights', 'arch'):
        scaler = ckpt['optimizer'][name]['loss_scaler']
        assert ('scale' in scaler) if torch.cuda.is_available() else \
            scaler == {}
    resumed = Runner.from_cfg(build_tiny_cfg(tiny_cityscapes, work,
                                             resume=True, **extra))
    resumed.train()
    state = _final_state(resumed)
    different = [k for k in state if not torch.equal(state[k], reference[k])]
    assert not different, different[:5]
    assert not torch.equal(ckpt['state_dict']['backbone.alphas'],
                           state['backbone.alphas'])
