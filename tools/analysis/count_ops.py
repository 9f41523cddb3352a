"""How many aten ops one supernet step dispatches (issue 32).

Usage: python tools/analysis/count_ops.py [--variants fused per-edge ...]
       [--crop 129x129] [--batch 2] [--filter-multiplier 8]
       [--num-layers 12] [--top 25] [--json PATH]

On a GPU every op is a kernel launch of several microseconds whatever its
size, so the op count bounds a step's speed there; on a CPU it shows what
the step is made of. Counts are deterministic: they need no quiet machine.

For each variant the tool builds the search config's segmentor (default: the
paper's F=8, L=12 supernet), runs one warm-up weight step and one α/β step,
then counts one more of each with a ``TorchDispatchMode``: every aten op
that reaches the dispatcher (forward, backward, optimizer), split into views
(ops whose output aliases their input without writing it: ``view``,
``slice``, ``select``, ``expand``, ... free on any device) and the rest.
The steps are those of the search loop: the weight step is forward +
loss + backward + SGD on the weights, the α/β step the loss on another batch,
its gradient w.r.t. α/β only (weights frozen) and the architecture
optimizer's step.
"""
import argparse
import collections
import json
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

DEFAULT_CONFIG = osp.join(
    'configs', 'autodeeplab_search',
    'autodeeplab-search_f8-l12_1xb2-40e_cityscapes-321x321.py')
#: variant: backbone options (``amp``: the search's ``--amp``)
VARIANTS = {
    'per-edge': dict(impl='per_edge'),
    'fused': dict(impl='fused'),
    'fused+cp': dict(impl='fused', with_cp=True),
    'fused+amp': dict(impl='fused', amp=True),
}


def is_view(op):
    """True for an op overload whose output aliases an input it does not
    write (no data moves: free on any device)."""
    return bool(getattr(op, 'is_view', False))


def count_ops(step_fn):
    """Run ``step_fn()`` once and count the aten ops it dispatches.

    Args:
        step_fn (Callable[[], Any]): the step; its autograd backward runs on
            this thread (CPU), so its ops are counted too.

    Returns:
        collections.Counter: ``{op overload: calls}``, e.g.
        ``{torch.ops.aten.convolution.default: 12, ...}``.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = collections.Counter()

    class _Count(TorchDispatchMode):

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[func] += 1
            return func(*args, **(kwargs or {}))

    with _Count():
        step_fn()
    return counts


def split(counts):
    """``(non-view calls, view calls)`` of a :func:`count_ops` result."""
    view = sum(n for op, n in counts.items() if is_view(op))
    return sum(counts.values()) - view, view


def count_kernels(step_fn):
    """CUDA kernels launched by ``step_fn()`` (torch.profiler's device
    events), after a synchronisation."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step_fn()
        torch.cuda.synchronize()
    return sum(e.count for e in prof.key_averages()
               if e.device_type == torch.autograd.DeviceType.CUDA)


def build_steps(config=DEFAULT_CONFIG, variant='fused', crop=(129, 129),
                batch=2, filter_multiplier=None, num_layers=None,
                device='cpu'):
    """``(weight_step, arch_step)`` of a fresh segmentor of ``config`` on
    ``device``, each a closure over its own fixed random batch."""
    import logging

    import torch
    from mmengine.logging import MMLogger
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmseg_autodeeplab.analysis import build_segmentor, load_config
    from mmseg_autodeeplab.engine import AutoDeepLabOptimWrapperConstructor
    from mmseg_autodeeplab.engine.amp import scale_loss
    from mmseg_autodeeplab.engine.utils import find_supernet, only_grad_for
    from mmseg_autodeeplab.utils import sync_search_channels

    opts = VARIANTS[variant]
    cfg = load_config(config)
    backbone = cfg.model.backbone
    backbone.impl = opts['impl']
    backbone.with_cp = opts.get('with_cp', False)
    if filter_multiplier:
        backbone.filter_multiplier = filter_multiplier
    if num_layers:
        backbone.num_layers = num_layers
    sync_search_channels(cfg)
    cfg.model.data_preprocessor.size = None
    torch.manual_seed(0)
    model = build_segmentor(cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    model.to(device).train()
    weights = dict(cfg.optim_wrapper.weights)
    if opts.get('amp'):  # what tools/search.py --amp sets
        weights.update(type='AmpOptimWrapper', loss_scale='dynamic')
    wrappers = AutoDeepLabOptimWrapperConstructor(
        dict(weights=weights, arch=cfg.optim_wrapper.arch))(model)
    params = find_supernet(model).arch_parameters()
    classes = cfg.model.decode_head.num_classes

    def make_batch(seed):
        g = torch.Generator().manual_seed(seed)
        h, w = crop
        inputs = torch.randn(batch, 3, h, w, generator=g).to(device)
        samples = []
        for _ in range(batch):
            s = SegDataSample()
            s.gt_sem_seg = PixelData(data=torch.randint(
                0, classes, (1, h, w), generator=g).to(device))
            s.set_metainfo(dict(img_shape=crop, ori_shape=crop,
                                pad_shape=crop))
            samples.append(s)
        return inputs, samples

    batch_a, batch_b = make_batch(0), make_batch(1)

    def loss_of(data, wrapper):
        with wrapper.optim_context(model):
            losses = model.loss(*data)
        return model.parse_losses(losses)[0]

    def weight_step():
        wrappers['weights'].update_params(loss_of(batch_a,
                                                  wrappers['weights']))
        for p in params:
            p.grad = None

    def arch_step():
        with only_grad_for(model, params):
            loss = scale_loss(wrappers['arch'],
                              loss_of(batch_b, wrappers['arch']))
            grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads):
            p.grad = g
        wrappers['arch'].step()
        wrappers['arch'].zero_grad()

    return weight_step, arch_step


def measure(variant, device='cpu', **kwargs):
    """:func:`count_ops` of one warm weight step and one warm α/β step of
    ``variant``: ``({'weight': Counter, 'arch': Counter}, kernels)``;
    ``kernels``: :func:`count_kernels` of each step on CUDA, else None."""
    steps = dict(zip(('weight', 'arch'), build_steps(
        variant=variant, device=device, **kwargs)))
    for step in steps.values():  # warm-up: lazily built state
        step()
    counts = {name: count_ops(step) for name, step in steps.items()}
    kernels = None
    if device == 'cuda':
        kernels = {name: count_kernels(step) for name, step in steps.items()}
    return counts, kernels


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--variants', nargs='+', default=['fused'],
                   choices=list(VARIANTS))
    p.add_argument('--crop', default='129x129',
                   help='HxW of the batch (default 129x129)')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--filter-multiplier', type=int, default=None)
    p.add_argument('--num-layers', type=int, default=None)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                   help='cuda: also count the CUDA kernels each step '
                   'launches (torch.profiler)')
    p.add_argument('--top', type=int, default=25,
                   help='print the TOP most frequent non-view ops per step '
                   '(0: none)')
    p.add_argument('--json', default=None, metavar='PATH',
                   help='write every count to PATH')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        crop = tuple(int(v) for v in args.crop.lower().split('x'))
        assert len(crop) == 2 and min(crop) >= 1
    except (ValueError, AssertionError):
        print(f'error: --crop: expected HxW, got {args.crop!r}',
              file=sys.stderr)
        return 2
    result = {}
    rows = []
    for variant in args.variants:
        steps, kernels = measure(
            variant, device=args.device, config=args.config, crop=crop,
            batch=args.batch, filter_multiplier=args.filter_multiplier,
            num_layers=args.num_layers)
        result[variant] = {}
        for step, counts in steps.items():
            ops, view = split(counts)
            launched = kernels[step] if kernels else None
            result[variant][step] = dict(
                ops=ops, views=view, cuda_kernels=launched,
                counts={str(op): n for op, n in counts.most_common()})
            rows.append((variant, step, ops, view,
                         '-' if launched is None else f'{launched:,}'))
            if args.top:
                print(f'== {variant}, {step} step: {ops} ops, {view} views; '
                      f'the {args.top} most frequent non-view ops')
                shown = [(op, n) for op, n in counts.most_common()
                         if not is_view(op)][:args.top]
                for op, n in shown:
                    print(f'  {n:8d}  {op}')
    print(f'ops dispatched per step, crop {crop[0]}x{crop[1]}, batch '
          f'{args.batch}, {args.device} ({args.config})')
    print('| variant | step | ops (not views) | views | CUDA kernels |')
    print('|---|---|---:|---:|---:|')
    for variant, step, ops, view, launched in rows:
        name = 'weight' if step == 'weight' else 'α/β'
        print(f'| {variant} | {name} | {ops:,} | {view:,} | {launched} |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
