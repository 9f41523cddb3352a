"""A search study's verdict (docs/search_quality.md) from finished runs.

``python tools/analysis/search_verdict.py CMP_DIR [...] --out DIR``: each
``CMP_DIR`` a finished ``tools/search_vs_random.py`` comparison of ONE
search (its ``--out``): the searched genotype against its untrained-α/β
decode (``prior``) and its random genotypes, margins in units of one
retrain's std; the split-half τ of the retrain seeds (the ceiling of any
cheaper ranking) and the τ of training-free baselines (parameters, SynFlow,
MACs) against the mean mIoU. Writes ``DIR/verdict.md`` and
``verdict.json``.
"""
import json
import math
import os.path as osp
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmseg_autodeeplab.analysis import OneLineParser  # noqa: E402
from mmseg_autodeeplab.utils import (atomic_write_json,  # noqa: E402
                                     atomic_write_text, exit_with_error)


def kendall(x, y):
    """Kendall's τ-b (None with fewer than 3 pairs, a missing value or a
    constant sequence)."""
    if len(x) < 3 or any(v is None for v in list(x) + list(y)):
        return None
    from mmseg_autodeeplab.cli.supernet_rank import kendall_tau
    tau = kendall_tau(x, y)[0]
    return None if tau != tau else tau  # NaN: a constant sequence


def split_half_tau(runs, names, seeds):
    """Mean over seed pairs of τ between two retrain seeds' mIoU of the
    genotypes ``names``: how well one retrain ranks what another does."""
    taus = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            both = [n for n in names
                    if f'{n}@{a}' in runs and f'{n}@{b}' in runs]
            tau = kendall([runs[f'{n}@{a}']['mIoU'] for n in both],
                          [runs[f'{n}@{b}']['mIoU'] for n in both])
            if tau is not None:
                taus.append(tau)
    return float(np.mean(taus)) if taus else None


def free_scores(cfg):
    """Training-free scores of the retrain model of ``cfg``: parameters and
    SynFlow (Tanaka et al. 2020: ``sum |θ ⊙ ∂R/∂θ|``, ``R`` the sum of the
    output on an all-ones input with every weight replaced by its absolute
    value; BN in eval mode, float64, log10)."""
    import torch

    from mmseg_autodeeplab.analysis import SegmentorLogits, build_segmentor
    torch.manual_seed(0)
    model = SegmentorLogits(build_segmentor(cfg)).double().eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    size = tuple(cfg.model.data_preprocessor.size)
    model(torch.ones(1, 3, *size, dtype=torch.float64)).sum().backward()
    synflow = sum(float((p.detach() * p.grad).abs().sum())
                  for p in model.parameters() if p.grad is not None)
    return dict(params=int(params),
                synflow=math.log10(synflow) if synflow > 0 else -math.inf)


def load_comparison(folder):
    """``results.json`` of a finished comparison (one line if it is not)."""
    path = osp.join(folder, 'results.json')
    try:
        with open(path, encoding='utf-8') as f:
            results = json.load(f)
        results['summary']['genotypes']['searched']
    except (OSError, ValueError, KeyError, TypeError) as e:
        exit_with_error(f'{path}: not a finished comparison of a search '
                        f'({type(e).__name__}: {e})')
    return results


def baselines(folder, results, names):
    """τ of parameters, SynFlow and MACs against the mean mIoU of the
    genotypes ``names`` (fewer parameters rank better than more: see the
    sign)."""
    from mmseg_autodeeplab.analysis import load_config
    from mmseg_autodeeplab.cli.search_vs_random import retrain_cfg
    from mmseg_autodeeplab.search_space import Genotype
    from mmseg_autodeeplab.utils.configs import resolve_config
    settings, per = results['settings'], results['summary']['genotypes']
    config = load_config(resolve_config(settings['config']),
                         settings.get('cfg_options'))
    scores = {}
    for n in names:
        info = results['genotypes'][n]
        gfile = osp.abspath(osp.join(folder, info['file']))
        scores[n] = dict(free_scores(retrain_cfg(
            config, gfile, Genotype.from_dict(info['genotype']), 0, folder)),
            macs=info.get('macs'))
    means = [per[n]['mean'] for n in names]
    return {key: kendall([scores[n][key] for n in names], means)
            for key in ('params', 'synflow', 'macs')}


def verdict(name, folder, results):
    """One search's verdict: its ``searched`` genotype against its
    ``prior`` (when recorded) and its random genotypes; margins in units of
    the comparison's mean within-genotype std."""
    summary = results['summary']
    per = summary['genotypes']
    me, prior = per['searched'], per.get('prior')
    names = [n for n, v in per.items() if v['kind'] == 'random']
    rand = [per[n]['mean'] for n in names]
    std = summary['spread'].get('within_genotype_std') or None
    seeds = sorted({int(k.split('@')[1]) for k in results['runs']})

    def margin(other):
        return None if other is None or not std else \
            (me['mean'] - other) / std

    return dict(
        name=name, source=folder, mean=me['mean'], std=me['std'],
        macs=me['macs'], beats=int(sum(r < me['mean'] for r in rand)),
        num_random=len(rand), p_value=me.get('p_value'),
        random_median=float(np.median(rand)) if rand else None,
        best_random=float(max(rand)) if rand else None,
        margin_best_random=margin(max(rand) if rand else None),
        prior_mean=prior and prior['mean'], prior_macs=prior and prior['macs'],
        margin_prior=margin(prior and prior['mean']), retrain_std=std,
        split_half_tau=split_half_tau(results['runs'], names, seeds),
        baseline_tau=baselines(folder, results, names))


def render_verdicts(verdicts):
    """Markdown: one line per search, then how many beat their prior and
    their best random genotype by more than one retrain std."""
    def num(x, f='.2f'):
        return '' if x is None else format(x, f)

    def mmacs(x):
        return '' if x is None else f'{x / 1e6:.1f}'

    rows = ['| search | MACs (M) | searched mIoU (mean ± std) | beats | '
            'random median | best random (margin/std) | prior: mIoU, MACs '
            '(margin/std) | split-half τ | τ params / SynFlow / MACs | '
            'p-value |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for v in verdicts:
        prior = '' if v['prior_mean'] is None else (
            f"{v['prior_mean']:.2f}, {mmacs(v['prior_macs'])} "
            f"({num(v['margin_prior'], '+.1f')})")
        base = ' / '.join(num(v['baseline_tau'][k], '.3f')
                          for k in ('params', 'synflow', 'macs'))
        rows.append(
            f"| {v['name']} | {mmacs(v['macs'])} | {v['mean']:.2f} ± "
            f"{v['std']:.2f} | {v['beats']} of {v['num_random']} | "
            f"{num(v['random_median'])} | {num(v['best_random'])} "
            f"({num(v['margin_best_random'], '+.1f')}) | {prior} | "
            f"{num(v['split_half_tau'], '.3f')} | {base} | "
            f"{num(v['p_value'], '.3f')} |")
    # a search without a prior row has not been measured against it: it
    # has not beaten it
    good = sum((v['margin_best_random'] or 0) > 1 and
               (v['margin_prior'] or 0) > 1 for v in verdicts)
    unmeasured = sum(v['margin_prior'] is None for v in verdicts)
    return '\n'.join(rows + [
        '', f'{good} of {len(verdicts)} searches beat their prior and their '
        'best random genotype by more than one retrain std' + (
            f' ({unmeasured} without a measured prior)' if unmeasured
            else '') + '.', ''])


def main(argv=None):
    p = OneLineParser(prog='search_verdict', description=__doc__.split(
        '\n\n')[0])
    p.add_argument('comparisons', nargs='+', metavar='CMP_DIR')
    p.add_argument('--out', required=True, help='folder for verdict.md/json')
    args = p.parse_args(argv)
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    verdicts = [verdict(osp.basename(osp.normpath(c)), c, load_comparison(c))
                for c in args.comparisons]
    text = render_verdicts(verdicts)
    atomic_write_json(osp.join(args.out, 'verdict.json'), verdicts)
    atomic_write_text(osp.join(args.out, 'verdict.md'), text)
    print(text, end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
