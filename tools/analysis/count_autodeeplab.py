"""Parameters and multiply-adds of Auto-DeepLab-S/M/L vs the paper (Table 2).

Usage: python tools/analysis/count_autodeeplab.py [--models s m l]
       [--size 1024x2048] [--num-classes 19] [--out JSON] [--no-macs]

Builds each model from its config in configs/autodeeplab/ (BN instead of
SyncBN, which changes no count), counts parameters, and measures
multiply-adds with ``mmengine.analysis.get_model_complexity_info`` on one
``1x3xHxW`` input (backbone + decode head up to the logits; the final
upsampling to the input size is not part of the network's compute). Prints a
Markdown table and writes the numbers as JSON (atomically).

mmengine's counter (fvcore rules) counts a conv's multiply-adds plus one op per
element for each BN and four per output element of a bilinear resize; the
table also gives the conv-only multiply-adds (from forward hooks on every
``nn.Conv2d``) so the two can be told apart.
"""
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

#: Paper Table 2 (Cityscapes, 19 classes; multi-adds at 1024x2048).
PAPER = {
    's': dict(F=20, params=10.15e6, macs=333.25e9),
    'm': dict(F=32, params=21.62e6, macs=460.93e9),
    'l': dict(F=48, params=44.42e6, macs=695.03e9),
}
CONFIG = ('autodeeplab/autodeeplab-{}_paper-genotype_8xb2-1.5m_'
          'cityscapes-769x769.py')


def parse_args(argv=None):
    from mmseg_autodeeplab.analysis import OneLineParser, hw_type
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=['s', 'm', 'l'],
                        choices=sorted(PAPER))
    parser.add_argument('--size', type=hw_type(1), default=(1024, 2048),
                        help='input HxW for multiply-adds (default '
                        '1024x2048)')
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--out', default='work_dirs/autodeeplab_counts.json',
                        help='JSON output')
    parser.add_argument('--no-macs', action='store_true',
                        help='count parameters only (fast)')
    return parser.parse_args(argv)


def build_model(name, num_classes=19):
    """Build Auto-DeepLab-``name`` (s/m/l) from its config, with plain BN."""
    from mmseg_autodeeplab.analysis import (build_segmentor, config_path,
                                            load_config)
    cfg = load_config(config_path(CONFIG.format(name)))
    return build_segmentor(cfg, num_classes).eval()


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def measure_macs(model, size):
    """``(mmengine_count, conv_only_macs)`` for one ``1x3xHxW`` input."""
    import torch
    from mmseg_autodeeplab.analysis import SegmentorLogits, count_macs
    wrapper = SegmentorLogits(model).eval()
    conv_macs = [0]

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        conv_macs[0] += output.numel() * module.in_channels // \
            module.groups * k

    x = torch.rand(1, 3, *size)
    macs = count_macs(wrapper, x)
    handles = [m.register_forward_hook(hook) for m in wrapper.modules()
               if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            wrapper(x)
    finally:
        for h in handles:
            h.remove()
    return macs, conv_macs[0]


def _fmt(value, unit):
    return f'{value / unit:.2f}'


def main(argv=None):
    args = parse_args(argv)
    from mmseg_autodeeplab.utils import atomic_write_json
    rows = []
    for name in args.models:
        paper = PAPER[name]
        model = build_model(name, args.num_classes)
        row = dict(model=f'Auto-DeepLab-{name.upper()}', F=paper['F'],
                   params=count_params(model), paper_params=paper['params'],
                   size=list(args.size), num_classes=args.num_classes)
        row['params_ratio'] = row['params'] / paper['params']
        if not args.no_macs:
            t0 = time.time()
            row['macs'], row['conv_macs'] = measure_macs(model, args.size)
            row['macs_seconds'] = round(time.time() - t0, 1)
            # the paper's multi-adds are for 1024x2048 only
            at_paper_size = tuple(args.size) == (1024, 2048)
            row['paper_macs'] = paper['macs'] if at_paper_size else None
            row['macs_ratio'] = row['macs'] / paper['macs'] \
                if at_paper_size else None
            row['conv_macs_ratio'] = row['conv_macs'] / paper['macs'] \
                if at_paper_size else None
        rows.append(row)
        print(f'{row["model"]}: done', file=sys.stderr)
    h, w = args.size
    header = ['model', 'F', 'params (M)', 'paper (M)', 'ratio']
    if not args.no_macs:
        header += [f'MACs @{h}x{w} (G)', 'conv-only (G)', 'paper (G)',
                   'ratio', 'conv-only ratio']
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for r in rows:
        cells = [r['model'], str(r['F']), _fmt(r['params'], 1e6),
                 _fmt(r['paper_params'], 1e6), f'{r["params_ratio"]:.4f}']
        if not args.no_macs:
            cells += [_fmt(r['macs'], 1e9), _fmt(r['conv_macs'], 1e9)]
            if r['paper_macs'] is None:
                cells += ['n/a (1024x2048 only)', '-', '-']
            else:
                cells += [_fmt(r['paper_macs'], 1e9),
                          f'{r["macs_ratio"]:.3f}',
                          f'{r["conv_macs_ratio"]:.3f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    print('\n'.join(lines))
    atomic_write_json(args.out, rows)
    print(f'written {args.out}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
