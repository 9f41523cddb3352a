"""What the measurement tools of tools/analysis share: multiply-adds
counted at dispatch and in TF's convention, timing, the machine the
numbers come from, their reports and the flags for those."""
import contextlib
import os
import platform
import time

import torch
import torch.nn as nn

from mmseg_autodeeplab.analysis import int_at_least
from mmseg_autodeeplab.utils.atomic import (atomic_write_json,
                                            atomic_write_text)
from mmseg_autodeeplab.utils.devices import cpu_model, gpu_model
from mmseg_autodeeplab.utils.threads import load_average


def count_dense_macs(module, x):
    """Multiply-adds of the convolutions and matrix products of
    ``module(x)``, as ``torch.utils.flop_counter`` counts them (half its
    FLOPs). It counts at dispatch, so it also counts code that
    :func:`count_macs`'s tracer cannot trace (Python ints from shapes)."""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


@contextlib.contextmanager
def forward_hooks(module, hooks):
    """Within the block, ``hooks`` (``{module type(s): forward hook}``) are
    registered on every submodule of ``module`` of those types."""
    handles = [m.register_forward_hook(hook) for m in module.modules()
               for types, hook in hooks.items() if isinstance(m, types)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def tf_multiply_adds(segmentor, size=(1025, 2049), crop=(769, 769)):
    """Multiply-adds as TF's DeepLab graph at eval would be counted, which
    reproduces the paper's Table 2 (docs/benchmarks.md). One ``1x3xHxW``
    forward at TF's eval size, counting

    * convs as ``out_h * out_w * C_out * C_in / groups * k_h * k_w``, a
      stride-1 dilated one (rate ``r``) in TF's SpaceToBatch form: output
      sides rounded up to multiples of ``r``;
    * ASPP image pooling as TF's with a training crop: a VALID average pool
      of the crop's window (``(crop - 1) // stride + 1``), so the pool and
      the next 1×1 conv run on a ``(h - p + 1) x (w - p + 1)`` map (33×161
      at 1025×2049);
    * non-conv ops at half weight (TF's profiler: one FLOP per element, two
      per conv multiply-add): a cell's block sums, bias adds, pools (kernel
      area per output) and the final argmax over the classes.

    Args:
        segmentor (nn.Module): an ``EncoderDecoder`` (its decode head has
            ``num_classes``).
        size (tuple[int]): input ``(H, W)``.
        crop (tuple[int]): training crop of TF's image pooling.

    Returns:
        dict: ``conv``, ``elementwise`` (ops, full weight) and ``total``
        (``conv + elementwise / 2``) multiply-adds.
    """
    from mmseg_autodeeplab.models.backbones.autodeeplab_net import \
        AutoDeepLabCell
    h_in, w_in = size
    counts = dict(conv=0, elementwise=0)
    # id(global-pool output) -> (the output, kept alive so that its id is
    # not reused, and TF's pooled map (h, w)), until its conv consumes it
    pooled = {}

    def conv_hook(module, inputs, output):
        _, c_out, h, w = output.shape
        if id(inputs[0]) in pooled:
            h, w = pooled.pop(id(inputs[0]))[1]
        r = module.dilation[0]
        if r > 1 and module.stride == (1, 1):
            h, w = -(-h // r) * r, -(-w // r) * r  # ceil to multiples
        k = module.kernel_size[0] * module.kernel_size[1]
        counts['conv'] += h * w * c_out * module.in_channels // \
            module.groups * k
        if module.bias is not None:
            counts['elementwise'] += h * w * c_out

    def global_pool_hook(module, inputs, output):
        _, c, h, w = inputs[0].shape
        stride = round((h_in - 1) / (h - 1))
        ph, pw = ((s - 1) // stride + 1 for s in crop)
        oh, ow = max(h - ph + 1, 1), max(w - pw + 1, 1)
        pooled[id(output)] = (output, (oh, ow))
        counts['elementwise'] += oh * ow * c * min(ph, h) * min(pw, w)

    def pool_hook(module, inputs, output):
        k = module.kernel_size
        k = k * k if isinstance(k, int) else k[0] * k[1]
        counts['elementwise'] += output.numel() * k

    def cell_hook(module, inputs, output):
        # each block sums its inputs: (inputs - 1) adds per block element
        per_block = len(module.ops) // module.num_blocks
        counts['elementwise'] += (per_block - 1) * output.numel()

    with forward_hooks(segmentor, {
            nn.Conv2d: conv_hook, nn.AdaptiveAvgPool2d: global_pool_hook,
            (nn.MaxPool2d, nn.AvgPool2d): pool_hook,
            AutoDeepLabCell: cell_hook}), torch.no_grad():
        segmentor._forward(torch.zeros(1, 3, h_in, w_in))
    # argmax over the classes of the logits resized to the input
    counts['elementwise'] += (segmentor.decode_head.num_classes - 1) * \
        h_in * w_in
    counts['total'] = counts['conv'] + counts['elementwise'] / 2
    return counts


def timed(fn, warmup, repeat, sync=None):
    """Seconds of each of ``repeat`` calls of ``fn`` after ``warmup``
    untimed ones; ``sync()`` before and after each call (e.g.
    ``torch.cuda.synchronize``: a GPU's queued work is timed too).

    Not ``torch.utils.benchmark.Timer``: its ``timeit(n)`` runs 2 more
    warm-up calls each time and returns one time for all ``n`` calls, and
    ``blocked_autorange`` chooses the number of calls; the reports give each
    call's time (their spread), and a search step takes seconds."""
    times = []
    for i in range(warmup + repeat):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times


def machine_info(device='cpu'):
    """What the numbers were measured on (a JSON-ready dict)."""
    import mmengine
    import mmseg
    return dict(cpu=cpu_model(), cpu_count=os.cpu_count(),
                torch_threads=torch.get_num_threads(),
                torch=torch.__version__, python=platform.python_version(),
                platform=platform.platform(), device=str(device),
                gpu=gpu_model(device),
                load_avg_start=round(load_average(), 2),
                mmengine=mmengine.__version__, mmseg=mmseg.__version__)


def machine_line(info):
    """One line of :func:`machine_info` for a Markdown report."""
    dev = info['gpu'] or (f'{info["cpu"]} ({info["cpu_count"]} CPUs, '
                          f'{info["torch_threads"]} torch threads)')
    return (f'device: {info["device"]} ({dev}); torch {info["torch"]}, '
            f'mmengine {info["mmengine"]}, mmseg {info["mmseg"]}')


def markdown_table(header, rows):
    """Lines of a Markdown table: first column left-aligned, others right."""
    return (['| ' + ' | '.join(header) + ' |',
             '|---|' + '---:|' * (len(header) - 1)]
            + ['| ' + ' | '.join(row) + ' |' for row in rows])


def write_report(out_dir, name, result, markdown):
    """``out_dir/name.json`` and ``out_dir/name.md``, each atomically."""
    atomic_write_json(os.path.join(out_dir, name + '.json'), result)
    atomic_write_text(os.path.join(out_dir, name + '.md'), markdown)


def add_report_args(parser, name, warmup, untimed):
    """The flags of a timed report: ``--warmup`` (the ``untimed`` calls
    before the timed ones, default ``warmup``), ``--no-macs`` and
    ``--out``, the folder :func:`write_report` writes ``name.json`` and
    ``name.md`` into (default ``work_dirs/name``)."""
    parser.add_argument('--warmup', type=int_at_least(0), default=warmup,
                        help=f'{untimed} before timing (default {warmup})')
    parser.add_argument('--no-macs', action='store_true',
                        help='skip counting the multiply-adds')
    parser.add_argument('--out', default=f'work_dirs/{name}',
                        help=f'folder for {name}.json and {name}.md')
