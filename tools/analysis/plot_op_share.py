"""Skip / parameter-free share of the decoded cell per validation, one line
per search work_dir (the collapse picture of docs/search_quality.md).

Usage: python tools/analysis/plot_op_share.py OUT.png NAME=WORK_DIR [...]
"""
import json
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from search_dynamics import op_counts  # noqa: E402
from mmseg_autodeeplab.utils import (atomic_write_bytes,  # noqa: E402
                                     exit_with_error)


def main(argv=None):
    from mmseg_autodeeplab.analysis import OneLineParser
    p = OneLineParser(prog='plot_op_share', description=__doc__.split(
        '\n\n')[0])
    p.add_argument('out', help='the PNG to write')
    p.add_argument('runs', nargs='+', metavar='NAME=WORK_DIR')
    args = p.parse_args(argv)
    if not all('=' in a for a in args.runs):
        p.error('expected NAME=WORK_DIR for every run')
    import io

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for item in args.runs:
        name, work_dir = item.split('=', 1)
        path = osp.join(work_dir, 'search_history.json')
        try:
            with open(path, encoding='utf-8') as f:
                history = json.load(f)
            counts = [op_counts(e) for e in history]
        except (OSError, ValueError, KeyError, TypeError) as e:
            exit_with_error(f'{path}: {e}')
        epochs = [e['epoch'] for e in history]
        line, = axes[0].plot(epochs, [c[1] for c in counts], marker='o',
                             ms=3, label=name)
        axes[1].plot(epochs, [c[0] for c in counts], marker='o', ms=3,
                     color=line.get_color(), label=name)
        start = history[-1].get('arch_start_epoch')
        if start is not None:
            for ax in axes:
                ax.axvline(start, color=line.get_color(), ls=':', lw=0.8)
    axes[0].set_title('skip_connect in the decoded cell')
    axes[1].set_title('parameter-free ops (skip, pools)')
    for ax in axes:
        ax.set_xlabel('epoch (dotted: α/β start)')
    axes[0].set_ylabel('of 10 operators')
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
