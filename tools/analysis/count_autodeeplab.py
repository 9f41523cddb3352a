"""Parameters and multiply-adds of Auto-DeepLab-S/M/L vs the paper (Table 2).

Usage: python tools/analysis/count_autodeeplab.py [--models s m l]
       [--convention mmengine|tf] [--size HxW] [--num-classes 19]
       [--out JSON] [--json PATH] [--no-macs]

Builds each model from its config in configs/autodeeplab/ (BN instead of
SyncBN, which changes no count), counts parameters and the multiply-adds of
one ``1x3xHxW`` forward (backbone + decode head up to the logits), and
prints a Markdown table against Table 2.

Conventions (``--convention``):

* ``mmengine`` (default): ``mmengine.analysis`` (fvcore rules: a conv's
  multiply-adds plus one op per element for each BN and four per output
  element of a bilinear resize) at 1024x2048; the table also gives the
  conv-only count (forward hooks on every ``nn.Conv2d``);
* ``tf``: how TF's DeepLab graph is counted, which reproduces Table 2
  (:func:`mmseg_autodeeplab.analysis.tf_multiply_adds`): TF's eval size
  1025x2049, dilated convs in SpaceToBatch form, ASPP image pooling over
  the 769x769 training-crop window, non-conv ops at half weight.

``--out`` writes every row (atomically); ``--json PATH`` writes
``{"Auto-DeepLab-S": {"params": N, "macs": N}, ...}``.
"""
import os.path as osp
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [p for p in (HERE, osp.dirname(osp.dirname(HERE)))
                if p not in sys.path]

#: Paper Table 2 (Cityscapes, 19 classes; multi-adds at 1024x2048).
PAPER = {
    's': dict(F=20, params=10.15e6, macs=333.25e9),
    'm': dict(F=32, params=21.62e6, macs=460.93e9),
    'l': dict(F=48, params=44.42e6, macs=695.03e9),
}
#: the input size each convention stands for Table 2's "1024x2048"
PAPER_SIZE = dict(mmengine=(1024, 2048), tf=(1025, 2049))


def parse_args(argv=None):
    from mmseg_autodeeplab.analysis import OneLineParser, hw_type
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=['s', 'm', 'l'],
                        choices=sorted(PAPER))
    parser.add_argument('--convention', choices=sorted(PAPER_SIZE),
                        default='mmengine', help='how multiply-adds are '
                        'counted (default mmengine; tf reproduces Table 2)')
    parser.add_argument('--size', type=hw_type(1), default=None,
                        help='input HxW (default 1024x2048, with --convention '
                        'tf 1025x2049)')
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--out', default='work_dirs/autodeeplab_counts.json',
                        help='JSON output, every row')
    parser.add_argument('--json', default=None, metavar='PATH',
                        help='also write {"Auto-DeepLab-S": {"params": N, '
                        '"macs": N}, ...}')
    parser.add_argument('--no-macs', action='store_true',
                        help='count parameters only (fast)')
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = PAPER_SIZE[args.convention]
    return args


def build_model(name, num_classes=19):
    """Auto-DeepLab-``name`` (s/m/l) from its config, with plain BN."""
    from benchmark import build_model
    return build_model(f'autodeeplab-{name}', num_classes)


def measure_macs(model, size):
    """``(mmengine_count, conv_only_macs)`` for one ``1x3xHxW`` input."""
    import torch
    from measure import forward_hooks

    from mmseg_autodeeplab.analysis import SegmentorLogits, count_macs
    wrapper = SegmentorLogits(model).eval()
    conv_macs = [0]

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        conv_macs[0] += output.numel() * module.in_channels // \
            module.groups * k

    x = torch.rand(1, 3, *size)
    with forward_hooks(wrapper, {torch.nn.Conv2d: hook}), torch.no_grad():
        wrapper(x)
    return count_macs(wrapper, x), conv_macs[0]


def count_row(name, args):
    """One model's counts (and ratios to Table 2 at its size)."""
    from measure import tf_multiply_adds
    paper = PAPER[name]
    model = build_model(name, args.num_classes)
    row = dict(model=f'Auto-DeepLab-{name.upper()}', F=paper['F'],
               params=sum(p.numel() for p in model.parameters()),
               paper_params=paper['params'],
               size=list(args.size), num_classes=args.num_classes,
               convention=args.convention)
    row['params_ratio'] = row['params'] / paper['params']
    if args.no_macs:
        return row
    t0 = time.time()
    if args.convention == 'tf':
        counts = tf_multiply_adds(model, args.size)
        row['macs'], row['conv_macs'] = int(counts['total']), counts['conv']
        row['elementwise_ops'] = counts['elementwise']
    else:
        row['macs'], row['conv_macs'] = measure_macs(model, args.size)
    row['macs_seconds'] = round(time.time() - t0, 1)
    # the paper's multi-adds are for its size only
    at_paper_size = tuple(args.size) == PAPER_SIZE[args.convention]
    row['paper_macs'] = paper['macs'] if at_paper_size else None
    for key in ('macs', 'conv_macs'):
        row[f'{key}_ratio'] = row[key] / paper['macs'] \
            if at_paper_size else None
    return row


def render_table(rows, args):
    from measure import markdown_table
    h, w = args.size
    header = ['model', 'F', 'params (M)', 'paper (M)', 'ratio']
    if not args.no_macs:
        header += [f'MACs ({args.convention}) @{h}x{w} (G)', 'conv-only (G)',
                   'paper (G)', 'ratio', 'conv-only ratio']
    cells = []
    for r in rows:
        cells.append([r['model'], str(r['F']), f'{r["params"] / 1e6:.2f}',
                      f'{r["paper_params"] / 1e6:.2f}',
                      f'{r["params_ratio"]:.4f}'])
        if args.no_macs:
            continue
        cells[-1] += [f'{r["macs"] / 1e9:.2f}', f'{r["conv_macs"] / 1e9:.2f}']
        cells[-1] += ['n/a (paper size only)', '-', '-'] if r[
            'paper_macs'] is None else [f'{r["paper_macs"] / 1e9:.2f}',
                                        f'{r["macs_ratio"]:.4f}',
                                        f'{r["conv_macs_ratio"]:.4f}']
    return '\n'.join(markdown_table(header, cells))


def main(argv=None):
    args = parse_args(argv)
    from mmseg_autodeeplab.utils import atomic_write_json
    rows = []
    for name in args.models:
        rows.append(count_row(name, args))
        print(f'{rows[-1]["model"]}: done', file=sys.stderr)
    print(render_table(rows, args))
    atomic_write_json(args.out, rows)
    written = [args.out]
    if args.json:
        atomic_write_json(args.json, {
            r['model']: dict(params=r['params'], macs=r.get('macs'))
            for r in rows})
        written.append(args.json)
    print(f'written {" and ".join(written)}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
