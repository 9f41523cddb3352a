"""Our weight step against the public PyTorch port's
(NoamRosenberg/autodeeplab), side by side in one process.

Usage: python tools/analysis/compare_public_port.py --port-dir DIR
       [--crop 129x129] [--batch 2] [--rounds 5] [--warmup 1] [--out DIR]

Both supernets at the same F, L, B, number of classes, crop, batch and CPU
threads. One weight step = forward + cross-entropy + backward + SGD step on
the weights, α/β excluded: ours is benchmark_search's ``fused`` weight step
(through the segmentor's loss); the port's is its ``AutoDeeplab`` forward
(logits at the input size) + ``nn.CrossEntropyLoss(ignore_index=255)`` +
backward + ``torch.optim.SGD`` over its ``weight_parameters()`` with the
config's learning rate, momentum and weight decay, on the same batch. After
``--warmup`` untimed steps of each, ``--rounds`` rounds of: a port step, one
of ours, the dense fp32 matmul rate, so drift on a shared machine hits all
three. Reported: each side's median and spread, ours/port (the median of
the per-round ratios and the ratio of the medians), the matmul rate, the
forward multiply-adds of both (mmengine's counter, as benchmark_search
counts them) and FLOP rates (6 x MACs / weight step / matmul rate).

The port's code runs unmodified from its own directory (CPU only):

* its forward calls ``.cuda()`` on a tensor unconditionally; during its
  forward, and only then, ``torch.Tensor.cuda`` returns the tensor itself
  (:func:`cuda_is_identity`);
* its ``operations.py`` imports ``InPlaceABNSync`` from
  ``modeling.modules``, whose import JIT-compiles the inplace-abn C++/CUDA
  extension (needs CUDA_HOME and nvcc). The search supernet never builds
  one (every operator is built with ``use_ABN=False``), so while the port
  is imported a stand-in ``modeling.modules`` is in ``sys.modules``: any
  class taken from it raises when built;
* after the import its directory leaves ``sys.path`` and its top-level
  modules (``operations``, ``genotypes``, ``modeling``, ...) leave
  ``sys.modules``: their generic names would shadow other packages.
"""
import contextlib
import importlib.util
import os
import os.path as osp
import statistics
import sys
import types

import torch
import torch.nn as nn

HERE = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [p for p in (HERE, osp.dirname(osp.dirname(HERE)))
                if p not in sys.path]

from benchmark_search import (add_supernet_args,  # noqa: E402
                              count_supernet_macs, matmul_rate,
                              search_steps)
from measure import (add_report_args, count_dense_macs,  # noqa: E402
                     machine_info, machine_line, markdown_table, timed,
                     write_report)

from mmseg_autodeeplab.analysis import (OneLineParser,  # noqa: E402
                                        SegmentorLogits, count_macs,
                                        int_at_least, load_config)
from mmseg_autodeeplab.engine.utils import find_supernet  # noqa: E402
from mmseg_autodeeplab.utils import exit_with_error  # noqa: E402

PORT_FILE = 'auto_deeplab.py'
PORT_NAME = 'NoamRosenberg/autodeeplab'
#: the port's modules that need a compiled extension its search supernet
#: never uses; stand-ins during its import
STUBBED = ('modeling.modules', )


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0].strip('`: '))
    p.add_argument('--port-dir', required=True, metavar='DIR',
                   help=f'a checkout of {PORT_NAME} (holds {PORT_FILE})')
    add_supernet_args(p, 129)  # F and L: of both supernets
    p.add_argument('--rounds', type=int_at_least(1), default=5,
                   help='timed rounds, each a port step then one of ours')
    add_report_args(p, 'compare_public_port', 1, 'untimed steps of each')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# running the port's code unmodified
@contextlib.contextmanager
def cuda_is_identity():
    """Within the block ``Tensor.cuda()`` returns the tensor itself.

    The port's forward moves a tensor to the GPU unconditionally; on a CPU
    build the real method raises. Restored on leaving the block.
    """
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


def _stand_in(name):
    """A module whose public attributes are classes that raise when
    built (dunder lookups stay AttributeErrors, as for a real module)."""
    module = types.ModuleType(name)

    def __getattr__(attr):
        if attr.startswith('__'):
            raise AttributeError(attr)

        def refuse(self, *args, **kwargs):
            raise RuntimeError(
                f'{name}.{attr}: compare_public_port stands in for this '
                'compiled extension; the port\'s search supernet does not '
                'use it')

        return type(attr, (), dict(__init__=refuse))

    module.__getattr__ = __getattr__
    return module


def import_port(port_dir):
    """The port's ``auto_deeplab`` module, imported from ``port_dir`` as
    its own code does (its directory first on ``sys.path``), with
    :data:`STUBBED` standing in during the import.

    Raises:
        ValueError: one line, if the import fails.
    """
    port_dir = osp.abspath(port_dir)
    before = set(sys.modules)
    stubs = {n: _stand_in(n) for n in STUBBED if n not in sys.modules}
    sys.modules.update(stubs)
    sys.path.insert(0, port_dir)
    try:
        spec = importlib.util.spec_from_file_location(
            'auto_deeplab', osp.join(port_dir, PORT_FILE))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as e:  # the port's own import chain: report, one line
        raise ValueError(f'--port-dir {port_dir}: importing {PORT_FILE} '
                         f'failed ({type(e).__name__}: {e})') from None
    finally:
        sys.path.remove(port_dir)
        for name in set(sys.modules) - before:
            path = getattr(sys.modules[name], '__file__', None) or ''
            if name in stubs or osp.abspath(path).startswith(port_dir +
                                                             os.sep):
                del sys.modules[name]
    if not callable(getattr(module, 'AutoDeeplab', None)):
        raise ValueError(f'--port-dir {port_dir}: {PORT_FILE} defines no '
                         'AutoDeeplab')
    return module


def port_weight_step(module, spec, sgd, inputs, labels):
    """``(weight_step, model)`` of the port's supernet at ``spec``.

    Args:
        module: the port's ``auto_deeplab`` (:func:`import_port`).
        spec (dict): ``num_classes``, ``num_layers``, ``filter_multiplier``,
            ``num_blocks`` (its ``block_multiplier`` and ``step``).
        sgd (dict): ``torch.optim.SGD`` keyword arguments.
        inputs (Tensor): ``(N, 3, H, W)`` images.
        labels (Tensor): ``(N, H, W)`` int64 class indices.
    """
    torch.manual_seed(0)  # its α/β and weights are drawn at construction
    model = module.AutoDeeplab(
        spec['num_classes'], spec['num_layers'],
        filter_multiplier=spec['filter_multiplier'],
        block_multiplier=spec['num_blocks'], step=spec['num_blocks']).train()
    optimizer = torch.optim.SGD(model.weight_parameters(), **sgd)
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    arch = model.arch_parameters()

    def weight_step():
        with cuda_is_identity():
            logits = model(inputs)
        criterion(logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for p in arch:  # backward reaches α/β too; the step leaves them
            p.grad = None

    return weight_step, model


# --------------------------------------------------------------------------
# the measurement
def alternate(steps, warmup, rounds, after_round=None):
    """Time ``steps`` one after another, round by round.

    Args:
        steps (dict): ``{name: fn}``, run in this order in every round.
        warmup (int): untimed rounds first.
        rounds (int): timed rounds.
        after_round (callable): ``after_round(i, {name: seconds})`` after
            timed round ``i`` (0-based), or None.

    Returns:
        dict: ``{name: [seconds of each timed round]}``.
    """
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times = {name: [] for name in steps}
    for i in range(rounds):
        for name, fn in steps.items():
            times[name] += timed(fn, 0, 1)
        if after_round is not None:
            after_round(i, {name: t[-1] for name, t in times.items()})
    return times


def summarize(port_s, ours_s):
    """Medians, spreads and ours/port ratios of per-round step times."""
    ratios = [o / p for o, p in zip(ours_s, port_s)]
    sides = {
        name: dict(times_s=t, median_s=statistics.median(t),
                   spread_s=[min(t), max(t)])
        for name, t in (('port', port_s), ('ours', ours_s))}
    return dict(sides, ratios=ratios,
                ratio_median_of_rounds=statistics.median(ratios),
                ratio_of_medians=sides['ours']['median_s']
                / sides['port']['median_s'])


def _spec(args, cfg):
    backbone = cfg.model.backbone
    return dict(
        filter_multiplier=args.filter_multiplier
        or backbone.filter_multiplier,
        num_layers=args.num_layers or backbone.num_layers,
        num_blocks=backbone.num_blocks,
        num_classes=cfg.model.decode_head.num_classes,
        crop=list(args.crop), batch=args.batch,
        torch_threads=torch.get_num_threads())


def _weights(params, arch):
    arch = {id(p) for p in arch}
    return sum(p.numel() for p in params if id(p) not in arch)


def _count(args, result, ours_model, port_model, inputs):
    """Forward multiply-adds of both, in eval mode: mmengine's count (as
    benchmark_search counts ours), and torch's dispatch-level count of
    convolutions and matrix products (the one that also counts the port)."""
    result['ours']['macs_fwd'] = count_supernet_macs(args)['macs_fwd']
    result['ours']['dense_macs_fwd'] = count_dense_macs(
        SegmentorLogits(ours_model).eval(), inputs)
    with cuda_is_identity():
        result['port']['dense_macs_fwd'] = count_dense_macs(
            port_model.eval(), inputs)
        try:
            result['port']['macs_fwd'] = count_macs(port_model, inputs)
        except Exception as e:  # third-party code under a tracer: say so
            raised = type(e).__name__ + (f': {str(e)[:80]}' if str(e)
                                         else '')
            result['macs_note'] = ('mmengine\'s counter could not count '
                                   f'the port (its jit trace raised {raised})')
    port_model.train()


def compare(args, port):
    """Build both (``port``: :func:`import_port`'s module), alternate their
    weight steps; the JSON-ready result."""
    cfg = load_config(args.config)
    spec = _spec(args, cfg)
    sgd = {k: v for k, v in cfg.optim_wrapper.weights.optimizer.items()
           if k != 'type'}
    steps, batch, _ = search_steps(args, 'fused', 'cpu')
    ours_model = steps.model  # the timed implementation: fused
    # the port gets our batch as our data preprocessor hands it on
    inputs = ours_model.data_preprocessor(batch, True)['inputs']
    labels = torch.cat([s.gt_sem_seg.data for s in batch['data_samples']])
    port_step, port_model = port_weight_step(port, spec, sgd, inputs, labels)

    def ours_step():
        steps.weight_step(batch)

    rates = []

    def after_round(i, last):
        rates.append(matmul_rate('cpu'))
        print(f'[round {i + 1}/{args.rounds}] port {last["port"]:.3f} s, '
              f'ours {last["ours"]:.3f} s, ours/port '
              f'{last["ours"] / last["port"]:.3f}, matmul '
              f'{rates[-1] / 1e9:.1f} GFLOP/s', flush=True)

    print(f'warm-up: {args.warmup} step(s) of each, then {args.rounds} '
          'rounds (port step, our step, matmul rate) ...', flush=True)
    times = alternate({'port': port_step, 'ours': ours_step}, args.warmup,
                      args.rounds, after_round)
    result = summarize(times['port'], times['ours'])
    result.update(matmul_flops_per_s=statistics.median(rates),
                  matmul_rounds=rates, spec=spec, sgd=sgd)
    result['ours']['weights'] = _weights(
        ours_model.parameters(), find_supernet(ours_model).arch_parameters())
    result['port']['weights'] = _weights(port_model.parameters(),
                                         port_model.arch_parameters())
    for side in ('port', 'ours'):
        result[side].update(macs_fwd=None, dense_macs_fwd=None)
    if not args.no_macs:
        print('counting forward multiply-adds ...', flush=True)
        _count(args, result, ours_model, port_model, inputs)
    rate = result['matmul_flops_per_s']
    for side in ('port', 'ours'):
        r = result[side]
        for key, name in (('macs_fwd', 'flop_rate'),
                          ('dense_macs_fwd', 'dense_flop_rate')):
            if r[key]:
                r[name] = 6 * r[key] / r['median_s'] / rate
    return result


def _table(args, result, machine):
    spec = result['spec']
    names = dict(port=f'public port ({PORT_NAME})', ours='ours (`fused`)')
    cells = []
    for side in ('port', 'ours'):
        r = result[side]
        cells.append([names[side], f'{r["median_s"]:.3f}',
                      f'{r["spread_s"][0]:.3f}-{r["spread_s"][1]:.3f}',
                      f'{r["weights"] / 1e6:.3f}'] + [
            f'{r[k] / 1e9:.2f}' if r[k] else '-'
            for k in ('macs_fwd', 'dense_macs_fwd')] + [
            f'{100 * r[k]:.1f}%' if k in r else '-'
            for k in ('flop_rate', 'dense_flop_rate')])
    lines = [
        f'Weight step, ours vs the public port: F={spec["filter_multiplier"]}'
        f', L={spec["num_layers"]}, B={spec["num_blocks"]}, '
        f'{spec["num_classes"]} classes, crop {args.crop[0]}x{args.crop[1]}, '
        f'batch {args.batch}, {spec["torch_threads"]} torch threads, CPU', '',
        f'Machine: {machine_line(machine)}', ''
    ] + markdown_table(['model', 'weight step, median (s)', 'min-max (s)',
                        'weights (M)', 'fwd MACs, mmengine (G)',
                        'fwd conv+matmul MACs (G)', 'FLOP rate vs matmul',
                        'conv+matmul FLOP rate'], cells) + [
        '', f'ours / port: {result["ratio_median_of_rounds"]:.3f} (median '
        f'of the per-round ratios), {result["ratio_of_medians"]:.3f} (ratio '
        f'of the medians); dense fp32 matmul '
        f'{result["matmul_flops_per_s"] / 1e9:.1f} GFLOP/s (median of the '
        'rounds).', ''
    ] + markdown_table(
        ['round', 'port (s)', 'ours (s)', 'ours / port', 'matmul (GFLOP/s)'],
        [[str(i + 1), f'{p:.3f}', f'{o:.3f}', f'{q:.3f}', f'{m / 1e9:.1f}']
         for i, (p, o, q, m) in enumerate(zip(
             result['port']['times_s'], result['ours']['times_s'],
             result['ratios'], result['matmul_rounds']))]) + [
        '', f'{args.warmup} untimed step(s) of each, then {args.rounds} '
        'rounds of: a port step, one of ours, the matmul rate. Weight step: '
        'forward + cross-entropy + backward + SGD on the weights (α/β '
        'excluded). Forward MACs in eval mode: mmengine\'s counter (as '
        'benchmark_search counts them) and torch.utils.flop_counter\'s '
        '(convolutions and matrix products only, half its FLOPs); FLOP rate '
        '= 6 x MACs / median weight step / matmul FLOP/s.']
    if 'macs_note' in result:
        lines += ['', result['macs_note'] + '.']
    return lines


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(args.port_dir):
        exit_with_error(f'--port-dir {args.port_dir!r}: no such directory')
    if not osp.isfile(osp.join(args.port_dir, PORT_FILE)):
        exit_with_error(f'--port-dir {args.port_dir!r}: no {PORT_FILE} '
                        f'there (expected a checkout of {PORT_NAME})')
    if not osp.isfile(args.config):
        exit_with_error(f'config {args.config!r} not found')
    if args.batch < 2:
        exit_with_error('--batch must be >= 2 (BN in the ASPP image pooling '
                        'needs more than one value per channel)')
    try:
        port = import_port(args.port_dir)
    except ValueError as e:
        exit_with_error(str(e), 1)
    machine = machine_info('cpu')
    result = compare(args, port)
    result.update(args=vars(args), machine=machine)
    text = '\n'.join(_table(args, result, machine))
    print(text)
    write_report(args.out, 'compare_public_port', result, text + '\n')
    print(f'wrote {osp.join(args.out, "compare_public_port.json")} and .md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
