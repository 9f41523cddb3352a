"""Whole searches alone and started together: what two searches on one
machine cost each other.

Usage: python tools/analysis/simultaneous_searches.py [--config CONFIG]
       [--search-options KEY=VALUE ...] [--data-root DIR] [--baseline DIR]
       [--out DIR]

``tools/search.py`` on ``--config`` with ``--search-options``: one search
alone (``--baseline DIR``: first one alone with that checkout), then two
identical ones started at the same moment, each in a fresh process with
torch's threads left to the search (``OMP_NUM_THREADS`` unset). Wall time
from the start of a row's processes to each one's exit; written to
``DIR/simultaneous.{json,md}``.
"""
import contextlib
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
sys.path[:0] = [p for p in (HERE, REPO) if p not in sys.path]

from measure import (machine_info, machine_line, markdown_table,  # noqa: E402
                     write_report)

from mmseg_autodeeplab.analysis import OneLineParser  # noqa: E402
from mmseg_autodeeplab.utils import exit_with_error  # noqa: E402

DEMO_CONFIG = osp.join(
    'configs', 'autodeeplab_search',
    'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')
#: the demo search cut to 3 epochs (α/β from the 2nd)
SEARCH_OPTIONS = ['train_cfg.max_epochs=3', 'train_cfg.arch_start_epoch=1']


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=DEMO_CONFIG,
                   help=f'search config (default {DEMO_CONFIG})')
    p.add_argument('--search-options', nargs='+', default=SEARCH_OPTIONS,
                   metavar='KEY=VALUE', help='cfg-options of the searches '
                   f'(default: {" ".join(SEARCH_OPTIONS)})')
    p.add_argument('--data-root', default='data/demo_cityscapes',
                   help='the searches\' data root')
    p.add_argument('--baseline', metavar='DIR', default=None,
                   help='also one search alone with the checkout in DIR, '
                   'first')
    p.add_argument('--out', default='work_dirs/simultaneous_searches',
                   help='folder for simultaneous.{json,md}')
    return p.parse_args(argv)


def _search_cmd(args, work_dir, tree=None):
    """``tools/search.py`` of this package (or of the checkout ``tree``)."""
    root = osp.abspath(tree) if tree else REPO
    data = osp.abspath(args.data_root)
    # a relative config is the checkout's own
    config = osp.join(root, args.config) if tree else args.config
    return [sys.executable, osp.join(root, 'tools', 'search.py'),
            osp.abspath(config), '--work-dir', work_dir,
            '--cfg-options', *args.search_options,
            f'train_dataloader.dataset.dataset.data_root={data}',
            f'val_dataloader.dataset.data_root={data}',
            f'test_dataloader.dataset.data_root={data}']


def run_together(cmds, what, **kwargs):
    """Run ``cmds`` at the same moment; their wall times (s) and thread
    changes (the loop's 'CPU threads' lines)."""
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile('w+'))
                for _ in cmds]
        start = time.perf_counter()
        procs = [subprocess.Popen(c, stdout=f, stderr=subprocess.STDOUT,
                                  text=True, **kwargs)
                 for c, f in zip(cmds, logs)]
        ended = {}
        while len(ended) < len(procs):  # each one's own exit time
            for i, p in enumerate(procs):
                if i not in ended and p.poll() is not None:
                    ended[i] = time.perf_counter() - start
            time.sleep(0.05)
        runs = []
        for i, (p, f) in enumerate(zip(procs, logs)):
            seconds = ended[i]
            f.seek(0)
            text = f.read()
            if p.returncode:
                tail = text.strip().splitlines() or ['?']
                exit_with_error(f'{what} failed: {tail[-1]}', 1)
            runs.append(dict(seconds=round(seconds, 1),
                             thread_changes=text.count('CPU threads')))
        return runs


def _simultaneous(args, machine):
    """One search alone (and the baseline's), then two at once."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = ([('alone (baseline)', [args.baseline])] if args.baseline
                else []) + [('alone', [None]), ('two at once', [None, None])]
        for i, (name, trees) in enumerate(jobs):
            print(f'[{i + 1}/{len(jobs)}] {name} ...', flush=True)
            cmds = [_search_cmd(args, osp.join(tmp, f'{i}_{k}'), tree)
                    for k, tree in enumerate(trees)]
            run_env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [
                osp.abspath(trees[0]), env.get('PYTHONPATH')]))) \
                if trees[0] else env
            runs = run_together(cmds, name, env=run_env, cwd=tmp)
            print('    ' + ', '.join(f'{r["seconds"]:.1f} s' for r in runs),
                  flush=True)
            rows.append(dict(name=name, runs=runs))
    alone = next(r for r in rows if r['name'] == 'alone')['runs'][0][
        'seconds']
    cells = [[r['name'], ' / '.join(f'{x["seconds"]:.1f}' for x in r['runs']),
              ' / '.join(f'{x["seconds"] / alone:.2f}x' for x in r['runs']),
              ' / '.join(str(x['thread_changes']) for x in r['runs'])]
             for r in rows]
    table = markdown_table(['searches', 'wall time each (s)',
                            'vs this checkout alone', 'thread changes'],
                           cells)
    table += ['', f'`tools/search.py {args.config} --cfg-options '
              f'{" ".join(args.search_options)}` (data {args.data_root}), '
              'each in a fresh process with torch\'s threads left to the '
              'search; wall time from the start of all the processes of a '
              f'row to each one\'s exit; {machine_line(machine)}.']
    return rows, table


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        exit_with_error(f'config {args.config!r} not found')
    if args.baseline and not osp.isfile(osp.join(args.baseline, 'tools',
                                                 'search.py')):
        exit_with_error(f'--baseline {args.baseline!r}: no tools/search.py '
                        'there')
    machine = machine_info('cpu')
    rows, table = _simultaneous(args, machine)
    text = '\n'.join(table)
    print(text)
    write_report(args.out, 'simultaneous', dict(
        machine=machine, rows=rows, config=args.config,
        search_options=args.search_options), text + '\n')
    print(f'wrote {osp.join(args.out, "simultaneous.json")} and .md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
