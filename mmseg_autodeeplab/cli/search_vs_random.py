"""``tools/search_vs_random.py``: searched vs random genotypes, same budget.

Random search is a strong baseline for differentiable NAS (Li & Talwalkar
2019; Yu et al. 2020). Every genotype (searched, uniformly sampled random
ones, the paper's, ``--extra``) is retrained with the same config and
budget over several seeds (Runner + IoUMetric); ``--match-macs`` keeps only
random genotypes within ``±tolerance`` of the searched multiply-adds, so
capacity is not the explanation. ``OUT/results.json`` is rewritten
atomically after every run (the same command resumes a killed comparison);
``results.md`` (mean ± std, rank among the random ones, permutation
p-value) and ``results.png`` end it.
"""
import argparse
import contextlib
import copy
import io
import json
import os
import os.path as osp
import re
import shutil
import sys
import time

import numpy as np

from ..search_space import Genotype, GenotypeError
from ..search_space.decode import debias_path_probs, decode_cell, decode_path
from ..search_space.sampling import sample_genotype
from ..utils import (atomic_write_bytes, atomic_write_json, atomic_write_text,
                     exit_with_error)

DEFAULT_CONFIG = ('configs/search_vs_random/'
                  'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')
PAPER_GENOTYPE = 'configs/genotypes/autodeeplab_paper.json'


def decode_history(entry, path_prior='none'):
    """Genotype from one ``search_history.json`` entry (α and β stored as
    probabilities: ``log`` recovers α's ordering exactly). In float64, not
    :func:`decode_genotype`'s float32, so exact ties stay ties."""
    import torch
    alpha = torch.tensor(entry['alpha'], dtype=torch.float64)
    beta = torch.tensor(entry['beta'], dtype=torch.float64)
    if path_prior == 'uniform':
        beta = debias_path_probs(beta)
    space = Genotype.from_dict(entry['genotype']).search_space
    return Genotype(cell=decode_cell(alpha.clamp_min(1e-30).log(),
                                     space.primitives),
                    path=tuple(decode_path(beta)), search_space=space)


# -- retraining --------------------------------------------------------------
def retrain_cfg(config, genotype_file, genotype, seed, work_dir,
                options=None):
    """The retrain config of ``genotype``: ``config`` (a path or a loaded
    Config, not modified) with the genotype's file and channels
    (``B*F*2**level`` of Cell_2 and of the last cell)."""
    from mmengine.config import Config
    cfg = copy.deepcopy(config) if isinstance(config, Config) else \
        Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    f = cfg.model.backbone.filter_multiplier
    b = genotype.search_space.num_blocks
    cfg.model.backbone.genotype = osp.abspath(genotype_file)
    cfg.model.decode_head.c1_in_channels = b * f * 2**genotype.path[2]
    cfg.model.decode_head.in_channels = b * f * 2**genotype.path[-1]
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=int(seed))
    cfg.log_level = 'WARNING'
    return cfg


def model_macs(cfg):
    """Multiply-adds of the retrain model (image -> logits) on one crop,
    counted as ``tools/analysis/benchmark.py`` counts them."""
    import torch

    from ..analysis import SegmentorLogits, build_segmentor, count_macs
    model = SegmentorLogits(build_segmentor(cfg)).eval()
    size = tuple(cfg.model.data_preprocessor.size)
    return count_macs(model, torch.rand(1, 3, *size))


def run_retrain(cfg):
    """Train ``cfg`` with the Runner; return the last validation mIoU."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    scores = []

    class Keep(Hook):

        def after_val_epoch(self, runner, metrics=None):
            scores.append(float((metrics or {})['mIoU']))

    runner = Runner.from_cfg(cfg)
    runner.register_hook(Keep(), priority='LOWEST')
    runner.train()
    if not scores:
        raise RuntimeError('the retrain ran no validation')
    return scores[-1]


class RunFailed(RuntimeError):
    """A retrain failed; the message is one line naming the run and log."""


@contextlib.contextmanager
def _output_to(path):
    """This process's stdout/stderr file descriptors (so mmengine's and
    warnings' output too) go to ``path``: the console keeps the
    comparison's own progress lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, 'w', encoding='utf-8') as f:
            for fd in (1, 2):
                os.dup2(f.fileno(), fd)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd)
            os.close(old)


def _run_task(config, gfile, genotype, seed, work_dir, options, threads):
    """One retrain (also the worker processes' entry point): ``(mIoU,
    seconds)``; its output goes to ``work_dir + '.log'``."""
    import torch
    from mmseg.utils import register_all_modules
    if threads:
        torch.set_num_threads(threads)
    register_all_modules(init_default_scope=True)
    shutil.rmtree(work_dir, ignore_errors=True)  # a killed run restarts
    os.makedirs(osp.dirname(work_dir), exist_ok=True)
    log, start = work_dir + '.log', time.time()
    with _output_to(log):
        try:
            miou = run_retrain(retrain_cfg(config, gfile, genotype, seed,
                                           work_dir, options))
        except Exception as e:
            raise RunFailed(f'{osp.basename(work_dir)}: the retrain failed '
                            f'({type(e).__name__}: {e}); its output: '
                            f'{log}') from None
    return miou, round(time.time() - start, 1)


def _pool(jobs):
    """Worker processes (spawned: forking after torch/OpenMP started
    threads can hang the child)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(jobs,
                               mp_context=multiprocessing.get_context('spawn'))


def _run_all(tasks, jobs):
    """Yield ``(key, (mIoU, seconds))`` of ``tasks`` (key -> arguments of
    :func:`_run_task`) as runs finish, ``jobs`` at a time, so that each is
    recorded at once: a killed comparison loses only the runs in flight."""
    if jobs == 1:
        for key, task in tasks.items():
            yield key, _run_task(*task)
        return
    from concurrent.futures import as_completed
    with _pool(jobs) as pool:
        futures = {pool.submit(_run_task, *task): key
                   for key, task in tasks.items()}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:  # (Python 3.8 has no shutdown(cancel_futures=True))
            for f in futures:
                f.cancel()


# -- statistics and reports --------------------------------------------------
def summarize(results):
    """Per-genotype mean/std and the searched genotypes vs the random ones.

    ``p_value``: one-sided permutation p-value of "the genotype is no better
    than a random draw" — the genotype's mean mIoU is exchangeable with the
    random genotypes' means under that hypothesis, so
    ``p = (1 + #{random >= it}) / (N + 1)``.
    """
    per = {}
    for name, info in results['genotypes'].items():
        vals = [r['mIoU'] for k, r in results['runs'].items()
                if k.split('@')[0] == name]
        if vals:
            per[name] = dict(kind=info['kind'], n=len(vals),
                             mean=float(np.mean(vals)),
                             std=float(np.std(vals, ddof=1))
                             if len(vals) > 1 else 0.0,
                             macs=info.get('macs'), values=vals)
    rand = np.array([v['mean'] for v in per.values()
                     if v['kind'] == 'random'])
    for v in per.values():
        if v['kind'] != 'random' and len(rand):
            v['rank'] = int(1 + (rand > v['mean']).sum())
            v['percentile'] = float(100 * (rand < v['mean']).mean())
            v['p_value'] = float((1 + (rand >= v['mean']).sum()) /
                                 (len(rand) + 1))
    within = [v['std'] for v in per.values() if v['n'] > 1]
    spread = dict(
        between_random_std=float(np.std(rand, ddof=1))
        if len(rand) > 1 else None,
        within_genotype_std=float(np.mean(within)) if within else None,
        num_random=int(len(rand)))
    return dict(genotypes=per, spread=spread)


def render_markdown(summary, settings):
    spread, nr = summary['spread'], summary['spread']['num_random']
    rows = [f"Config: `{settings['config']}`; seeds {settings['seeds']}; "
            f'{nr} random genotypes'
            + (f" (MACs within ±{settings['macs_tolerance']:.0%} of "
               f"{settings['match_macs_of']})" if settings['match_macs']
               else '') + '.', '',
            '| genotype | kind | MACs (M) | runs | mIoU mean ± std | '
            'rank among random (1 = best) | percentile | p-value |',
            '|---|---|---:|---:|---:|---:|---:|---:|']
    for name, v in sorted(summary['genotypes'].items(), key=lambda kv: (
            kv[1]['kind'] == 'random', -kv[1]['mean'])):
        macs = '' if v['macs'] is None else f"{v['macs'] / 1e6:.1f}"
        rank = ' |  | ' if 'rank' not in v else (
            f"{v['rank']} of {nr + 1} | {v['percentile']:.0f}% | "
            f"{v['p_value']:.3f}")
        rows.append(f"| {name} | {v['kind']} | {macs} | {v['n']} | "
                    f"{v['mean']:.2f} ± {v['std']:.2f} | {rank} |")
    between, within = (('n/a' if x is None else f'{x:.2f}') for x in (
        spread['between_random_std'], spread['within_genotype_std']))
    return '\n'.join(rows + [
        '', f'Spread of mean mIoU across random genotypes (std): {between}; '
        f'mean spread of one genotype across seeds (std): {within}.', ''])


def plot(summary, path):
    """Left: the random genotypes' mIoU (sorted; seeds grey, means black)
    with the other genotypes' means as lines. Right: multiply-adds vs mean
    mIoU of every genotype (the cost/accuracy trade-off)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    per = summary['genotypes']
    rand = sorted((v for v in per.values() if v['kind'] == 'random'),
                  key=lambda v: v['mean'])
    for x, v in enumerate(rand):
        ax.scatter([x] * v['n'], v['values'], s=10, color='0.6')
        ax.scatter([x], [v['mean']], s=30, color='0.2')
    colours = plt.get_cmap('tab10').colors
    others = [(n, v) for n, v in per.items() if v['kind'] != 'random']
    for (name, v), c in zip(others, colours * 4):
        ax.axhline(v['mean'], color=c, label=f"{name}: {v['mean']:.2f}")
        if v['macs']:
            bx.errorbar(v['macs'] / 1e6, v['mean'], yerr=v['std'], fmt='o',
                        color=c, capsize=3, label=name)
    pts = [(v['macs'] / 1e6, v['mean'], v['std']) for v in rand
           if v['macs']]
    if pts:
        x, y, e = zip(*pts)
        bx.errorbar(x, y, yerr=e, fmt='o', color='0.6', ms=4, capsize=2,
                    label='random')
    ax.set_xlabel('random genotypes (sorted by mean; grey: single seeds)')
    ax.set_ylabel('val mIoU')
    bx.set_xlabel('multiply-adds of the retrain model (M)')
    bx.set_ylabel('val mIoU (mean ± std over seeds)')
    for a in (ax, bx):
        a.legend(fontsize=7, loc='best')
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# -- the comparison ----------------------------------------------------------
def _load_genotype(path):
    """A genotype from a JSON file or a search work_dir's genotype.json."""
    if osp.isdir(path):
        path = osp.join(path, 'genotype.json')
    try:
        return Genotype.load(path)
    except (OSError, GenotypeError) as e:
        exit_with_error(f'{path}: {e}')


def _searched(path, decodes):
    """``{name: genotype}`` for a search work_dir (decoded from its last
    search_history.json entry, with each path prior, and ``prior``: the
    default decode of the α/β the search started from, when its history
    holds the validation before training) or a genotype file."""
    hist = osp.join(path, 'search_history.json')
    if not osp.isfile(hist):
        return {'searched': _load_genotype(path)}
    with open(hist, encoding='utf-8') as f:
        history = json.load(f)
    out = {}
    for prior in decodes:
        g = decode_history(history[-1], prior)
        if g not in out.values():
            out['searched' + ('' if prior == 'none' else '_unbiased')] = g
    if history[0].get('iter') == 0:
        # the control: what the decode gives before α/β learned anything
        out['prior'] = decode_history(history[0], 'none')
    return out


def _record(name, kind, genotype, out, config, options, **extra):
    """The ``results.json`` entry of a genotype, whose file is written to
    ``out/genotypes``."""
    file = osp.join('genotypes', f'{name}.json')
    genotype.save(osp.join(out, file))
    cfg = retrain_cfg(config, osp.join(out, file), genotype, 0, out, options)
    return dict(kind=kind, genotype=genotype.to_dict(), **extra,
                macs=model_macs(cfg), file=file)


def _plan(args, out, config):
    """``(records, tries)``: the searched genotype(s), the paper's and
    ``--num-random`` uniformly sampled ones (with ``--match-macs``, drawn
    until that many are within ``--macs-tolerance`` of the first's MACs)."""
    named = [(n, 'prior' if n == 'prior' else 'searched', g)
             for n, g in _searched(args.searched, args.decode).items()]
    if args.paper:
        named.append(('paper', 'paper', _load_genotype(args.paper)))
    records = {n: _record(n, kind, g, out, config, args.cfg_options)
               for n, kind, g in named}
    target = next(iter(records.values()))['macs']
    rng = np.random.default_rng(args.sample_seed)
    tries = 0
    while len(records) < len(named) + args.num_random:
        tries += 1
        if tries > 200 * args.num_random:
            exit_with_error(
                f'no random genotype within ±{args.macs_tolerance:.0%} of '
                f'the searched MACs after {tries} tries; widen '
                '--macs-tolerance')
        name = f'random_{len(records) - len(named):02d}'
        rec = _record(name, 'random',
                      sample_genotype(rng, named[0][2].search_space), out,
                      config, args.cfg_options)
        if not args.match_macs or \
                abs(rec['macs'] / target - 1) <= args.macs_tolerance:
            records[name] = rec
    return records, tries


def _jobs(text):
    """``--jobs``; 'auto': one run at a time on a GPU, on CPU up to 4
    sharing the cores (the proxy's runs gain little from many threads)."""
    if text == 'auto':
        import torch
        return 1 if torch.cuda.is_available() else min(4, os.cpu_count() or 1)
    if not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a positive integer, got {text!r}")
    return int(text)


def _extra(item):
    name, sep, path = item.partition('=')
    if not sep or not re.fullmatch(r'[A-Za-z0-9_.-]+', name) or \
            name in ('paper', 'searched', 'searched_unbiased') or \
            name.startswith('random_'):
        raise argparse.ArgumentTypeError(
            f'{item}: expected NAME=PATH with a name of letters, digits, '
            '"_", "." or "-" (not paper, searched* or random_*)')
    if not osp.exists(path):
        raise argparse.ArgumentTypeError(
            f'{item}: no such work_dir or genotype file')
    return name, path


def parse_args(argv=None):
    from mmengine.config import DictAction

    from ..analysis import OneLineParser
    p = OneLineParser(
        prog='search_vs_random',
        description='Retrain the searched genotype, uniformly sampled random '
        'genotypes and the paper genotype with the same config and budget; '
        'compare their mIoU.')
    p.add_argument('--searched', default='work_dirs/demo_search',
                   help='search work_dir or genotype JSON (several searches: '
                   'one comparison each, then '
                   'tools/analysis/search_verdict.py)')
    p.add_argument('--decode', nargs='+', default=['none', 'uniform'],
                   choices=['none', 'uniform'],
                   help='path priors to decode a search work_dir with')
    p.add_argument('--paper', default=PAPER_GENOTYPE,
                   help="the paper's genotype ('' to leave it out)")
    p.add_argument('--config', default=DEFAULT_CONFIG,
                   help='retrain config shared by every genotype')
    p.add_argument('--num-random', type=int, default=8)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--sample-seed', type=int, default=0)
    p.add_argument('--match-macs', action='store_true',
                   help='keep random genotypes whose MACs are within '
                   '--macs-tolerance of the searched genotype')
    p.add_argument('--macs-tolerance', type=float, default=0.10)
    p.add_argument('--out', default='work_dirs/search_vs_random')
    p.add_argument('--extra', nargs='+', type=_extra, default=[],
                   metavar='NAME=PATH',
                   help='more genotypes to compare (e.g. budgeted searches): '
                   'a search work_dir (its genotype.json) or a genotype '
                   'JSON each; may be added to an existing comparison')
    p.add_argument('--jobs', default='auto', type=_jobs,
                   help="retrains at once ('auto': 1 on a GPU, up to 4 "
                   'sharing the CPU cores)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if len(dict(args.extra)) < len(args.extra):
        p.error('--extra: the names must be distinct')
    args.extra, args.match_macs_of = dict(args.extra), None
    args.cfg_options = dict(args.cfg_options or {})
    if args.num_random < 1 or not args.seeds or args.macs_tolerance <= 0:
        p.error('--num-random and --macs-tolerance must be positive and '
                '--seeds non-empty')
    if not osp.exists(args.searched):
        p.error(f'--searched {args.searched}: no such work_dir or genotype '
                'file (run `make demo` first)')
    from ..utils.configs import find_project_file, resolve_config
    try:
        args.config_path = resolve_config(args.config)
    except FileNotFoundError:
        p.error(f'--config {args.config}: no such config file')
    if args.paper:
        args.paper = find_project_file(args.paper)[0] or args.paper
    return args


def main(argv=None):
    """Run (or resume) the comparison; return 0."""
    args = parse_args(argv)
    from ..utils.work_dir_lock import WorkDirBusy, work_dir_lock
    try:  # one owner of --out, before results.json is read
        owner = work_dir_lock(args.out, '--out').acquire()
    except WorkDirBusy as e:
        exit_with_error(e)
    from mmengine.config import Config
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    with owner:
        compare(args, Config.fromfile(args.config_path), args.out)
    return 0


def compare(args, config, out):
    """Run (or resume) one comparison into ``out``; returns its results."""
    res_path = osp.join(out, 'results.json')
    settings = {k: getattr(args, k) for k in (
        'config', 'seeds', 'num_random', 'sample_seed', 'match_macs',
        'macs_tolerance', 'match_macs_of', 'searched', 'decode', 'paper',
        'cfg_options', 'extra')}
    if osp.isfile(res_path):
        with open(res_path, encoding='utf-8') as f:
            results = json.load(f)
        if any(results['settings'].get(k) != v for k, v in settings.items()
               if k not in ('seeds', 'match_macs_of', 'extra')):
            exit_with_error(f'{res_path} was made with other settings; use '
                            'another --out or delete it')
        results['settings']['seeds'] = args.seeds
        print(f"search_vs_random: resuming, {len(results['runs'])} runs "
              f'already in {res_path}')
    else:
        genotypes, tries = _plan(args, out, config)
        settings['match_macs_of'] = next(iter(genotypes))
        results = dict(settings=settings, genotypes=genotypes, runs={},
                       sampling_tries=tries)
    for name, path in args.extra.items():
        if name not in results['genotypes']:
            results['genotypes'][name] = _record(
                name, 'searched', _load_genotype(path), out, config,
                args.cfg_options, source=path)
            results['settings'].setdefault('extra', {})[name] = path
    atomic_write_json(res_path, results)

    jobs = args.jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    tasks = {}
    for name, info in results['genotypes'].items():
        gfile = osp.abspath(osp.join(out, info['file']))
        genotype = Genotype.from_dict(info['genotype'], source=gfile)
        genotype.save(gfile)  # the genotype the record holds
        for seed in args.seeds:
            if f'{name}@{seed}' not in results['runs']:
                tasks[f'{name}@{seed}'] = (
                    config, gfile, genotype, seed,
                    osp.join(out, 'runs', f'{name}_seed{seed}'),
                    args.cfg_options, threads)
    if tasks:
        print(f'search_vs_random: {len(tasks)} runs to go, {jobs} at a time'
              + (f" ({threads} thread{'s' * (threads > 1)} each)"
                 if threads else ''), flush=True)
    try:
        for key, (miou, secs) in _run_all(tasks, jobs):
            results['runs'][key] = dict(mIoU=miou, seconds=secs)
            atomic_write_json(res_path, results)
            print(f'search_vs_random: {key}: mIoU {miou:.2f} ({secs:.0f} s)',
                  flush=True)
    except RunFailed as e:
        exit_with_error(f'{e}; the {len(results["runs"])} finished runs are '
                        f'kept in {res_path}: the same command continues')
    results['summary'] = summarize(results)
    atomic_write_json(res_path, results)
    atomic_write_text(osp.join(out, 'results.md'),
                      render_markdown(results['summary'],
                                      results['settings']))
    plot(results['summary'], osp.join(out, 'results.png'))
    print(f'search_vs_random: wrote {out}/results.json, results.md, '
          'results.png')
    return results
