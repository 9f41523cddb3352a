"""``tools/supernet_rank.py``: does the trained supernet rank architectures
as retraining does?

For every genotype of a finished ``tools/search_vs_random.py`` comparison,
the search's supernet (its last checkpoint's weights) computes that one
architecture (α/β replaced by the genotype's one-hot weights:
:meth:`AutoDeepLabSupernet.fixed_arch`); its BN statistics are re-estimated
on ``--calib-batches`` trainA batches (the running statistics were gathered
under the mixed α), then mmseg's IoUMetric scores it on the search's val
set. Kendall's τ between these scores and the retrained mIoU says how much
the supernet's preferences are worth: near 0, the α/β the search follows
carry no signal about what retrains well. The supernet's own mixed form
(softmax α, normalised β; BN re-estimated the same way) is scored too: the
discretization gap is how far the discrete sub-networks fall below it.
Writes ``OUT/supernet_rank.json`` and ``.md``; nothing is written into the
search work_dir.
"""
import json
import os.path as osp
import sys


from ..utils import atomic_write_json, atomic_write_text, exit_with_error


#: the IoUMetric keys a genotype is scored by (mIoU ranks by default; at
#: a short supernet training the accuracies are less quantised)
METRICS = ('mIoU', 'aAcc', 'mAcc')
#: the name of the mixed-α/β score among a comparison's genotypes
MIXED = '(mixed supernet)'


def kendall_tau(x, y):
    """Kendall's τ-b of two equally long sequences and its two-sided
    p-value (scipy)."""
    from scipy.stats import kendalltau
    res = kendalltau(x, y)
    return float(res.statistic), float(res.pvalue)


def score_genotypes(work_dir, genotypes, checkpoint=None, calib_batches=8,
                    cfg_options=None, metric='mIoU'):
    """Val mIoU of each genotype computed by the search's supernet.

    Args:
        work_dir (str): a finished search's work_dir.
        genotypes (dict[str, Genotype | None]): the architectures to
            score; ``None``: the supernet's mixed α/β.
        checkpoint (str, optional): default: the work_dir's last one.
        calib_batches (int): trainA batches for the BN statistics.
        cfg_options (dict, optional): merged into the dumped config.
        metric (str): the IoUMetric key returned (``'mIoU'``, ``'aAcc'``,
            ``'mAcc'``).

    Returns:
        dict[str, float]: the score per genotype name.
    """
    from mmengine.config import Config

    from ..oneshot_eval import GenotypeScorer
    from ..utils.resume import run_files
    config, checkpoint = run_files(work_dir, checkpoint)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scorer = GenotypeScorer.from_checkpoint(cfg, checkpoint, calib_batches,
                                            metric)
    scores = {}
    try:
        for name, genotype in genotypes.items():
            if genotype is None and scorer.oneshot:
                continue  # a one-shot has no mixed form
            scores[name] = scorer(genotype)
            print(f'supernet_rank: {name}: supernet {metric} '
                  f'{scores[name]:.2f}', flush=True)
    finally:
        scorer.close()
    return scores


def main(argv=None):
    """``supernet_rank WORK_DIR COMPARISON_DIR [--out DIR]``."""
    from ..analysis import OneLineParser, int_at_least
    p = OneLineParser(prog='supernet_rank', description=__doc__.split(
        '\n\n')[0])
    p.add_argument('work_dir', help='a finished search work_dir')
    p.add_argument('comparison',
                   help='the search_vs_random --out folder of this search '
                   '(its results.json), or such a results .json (e.g. '
                   'docs/demo_plots/ground_truth.json)')
    p.add_argument('--checkpoint', help="default: the work_dir's last")
    p.add_argument('--calib-batches', type=int_at_least(1), default=8)
    p.add_argument('--out', help='default: the comparison folder')
    p.add_argument('--metric', choices=METRICS, default='mIoU',
                   help='the supernet score the τ uses')
    args = p.parse_args(argv)
    if args.comparison.endswith('.json') and not args.out:
        p.error('--out is needed when COMPARISON is a .json file')
    if not osp.isdir(args.work_dir):
        exit_with_error(f'{args.work_dir}: no such search work_dir')
    res_path = args.comparison if args.comparison.endswith('.json') else \
        osp.join(args.comparison, 'results.json')

    def comparison():
        try:
            with open(res_path, encoding='utf-8') as f:
                results = json.load(f)
            return results, results['summary']['genotypes']
        except (OSError, ValueError, KeyError) as e:
            exit_with_error(f'{res_path}: not a finished comparison ({e})')

    comparison()  # every input checked before --out is made or locked
    from ..utils.resume import run_files
    checkpoint = run_files(args.work_dir, args.checkpoint)[1]
    out = args.out or args.comparison
    from ..utils.work_dir_lock import WorkDirBusy, work_dir_lock
    try:  # one writer of the folder; a comparison still running refuses
        owner = work_dir_lock(out, '--out').acquire()
    except WorkDirBusy as e:
        exit_with_error(e)
    # held until this function returns (OutputLock.__del__ releases it on
    # an early exit too); the comparison read again under it
    results, summary = comparison()
    from mmseg.utils import register_all_modules

    from ..search_space import Genotype
    register_all_modules(init_default_scope=True)
    genotypes = {n: Genotype.from_dict(g['genotype'])
                 for n, g in results['genotypes'].items() if n in summary}
    scores = score_genotypes(args.work_dir, {**genotypes, MIXED: None},
                             checkpoint, args.calib_batches,
                             metric=args.metric)
    mixed = scores.pop(MIXED, None)
    names = sorted(scores, key=lambda n: -summary[n]['mean'])
    retrained = [summary[n]['mean'] for n in names]
    supernet = [scores[n] for n in names]
    tau, p_value = kendall_tau(supernet, retrained)
    rand = [n for n in names if summary[n]['kind'] == 'random']
    tau_r, p_r = kendall_tau([scores[n] for n in rand],
                             [summary[n]['mean'] for n in rand]) \
        if len(rand) > 2 else (float('nan'), float('nan'))
    gap = dict(mixed=mixed, discrete_mean=sum(supernet) / len(supernet),
               discrete_best=max(supernet))
    gap['ratio_mean'], gap['ratio_best'] = (
        (x / mixed if mixed else None)
        for x in (gap['discrete_mean'], gap['discrete_best']))
    report = dict(work_dir=args.work_dir, comparison=args.comparison,
                  scores=scores, retrained={n: summary[n]['mean']
                                            for n in names},
                  kendall_tau=tau, p_value=p_value,
                  kendall_tau_random=tau_r, p_value_random=p_r, gap=gap,
                  metric=args.metric)
    rows = [f'| genotype | kind | retrained mIoU | supernet {args.metric} |',
            '|---|---|---:|---:|'] + [
        f"| {n} | {summary[n]['kind']} | {summary[n]['mean']:.2f} | "
        f'{scores[n]:.2f} |' for n in names]
    line = (f'Kendall τ (supernet {args.metric} vs retrained mIoU, '
            f'{len(names)} genotypes): '
            f'{tau:.3f} (p = {p_value:.3f}); random genotypes only: '
            f'{tau_r:.3f} (p = {p_r:.3f}); ' + (
                '' if mixed is None else
                f'mixed supernet {args.metric} {mixed:.2f}, ') +
            f"discrete mean {gap['discrete_mean']:.2f} / best "
            f"{gap['discrete_best']:.2f}" + (
                '' if gap['ratio_mean'] is None else
                f" ({gap['ratio_mean']:.0%} / {gap['ratio_best']:.0%} of "
                'the mixed)'))
    atomic_write_json(osp.join(out, 'supernet_rank.json'), report)
    atomic_write_text(osp.join(out, 'supernet_rank.md'),
                      '\n'.join(rows + ['', line, '']))
    owner.release()
    print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
