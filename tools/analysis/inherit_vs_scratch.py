"""Retraining from a one-shot's inherited weights vs from scratch.

Usage: python tools/analysis/inherit_vs_scratch.py ONESHOT_WORK_DIR
       [--genotypes JSON ...] [--seeds 0 1 2] [--iters 600]
       [--long-iters 1200] [--out DIR]

For each genotype (default: the ground truth's reference and its first two
random genotypes, docs/demo_plots/ground_truth.json) and seed, the proxy
retrain config (configs/search_vs_random/...600i...) trains the decoded
network ``--iters`` iterations twice: from the one-shot's inherited weights
(``tools/decode_genotype.py --inherit``'s checkpoint, as ``load_from``) and
from scratch; a third run from scratch of ``--long-iters`` iterations,
validated every ``--iters / 4``, gives the iterations scratch needs to reach
the inherited run's mIoU. Writes ``OUT/inherit_vs_scratch.json`` and a
markdown table; one process, one run at a time.
"""
import argparse
import json
import os.path as osp
import statistics
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
RETRAIN = osp.join(REPO, 'configs', 'search_vs_random',
                   'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-'
                   '64x64.py')
GROUND_TRUTH = osp.join(REPO, 'docs', 'demo_plots', 'ground_truth.json')


def run(genotype, gfile, seed, work_dir, iters, load_from=None, every=None):
    """Validation mIoU after each validation of one retrain."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from mmseg_autodeeplab.cli.search_vs_random import retrain_cfg
    cfg = retrain_cfg(RETRAIN, gfile, genotype, seed, work_dir)
    cfg.train_cfg.update(max_iters=iters, val_interval=every or iters)
    for sched in cfg.param_scheduler:
        sched.end = iters
    cfg.load_from = load_from
    scores = []

    class Keep(Hook):

        def after_val_epoch(self, runner, metrics=None):
            scores.append((runner.iter, float(metrics['mIoU'])))

    runner = Runner.from_cfg(cfg)
    runner.register_hook(Keep(), priority='LOWEST')
    runner.train()
    return scores


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('oneshot', help='a trained one-shot search work_dir')
    p.add_argument('--genotypes', nargs='+', help='genotype JSON files')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--iters', type=int, default=600)
    p.add_argument('--long-iters', type=int, default=1200)
    p.add_argument('--out', default='work_dirs/inherit_vs_scratch')
    args = p.parse_args(argv)
    import torch

    import mmseg_autodeeplab  # noqa: F401
    from mmseg.utils import register_all_modules

    from mmseg_autodeeplab.cli.decode_genotype import inherited_weights
    from mmseg_autodeeplab.cli.search_vs_random import retrain_cfg
    from mmseg_autodeeplab.search_space import Genotype
    from mmseg_autodeeplab.utils.atomic import (atomic_torch_save,
                                                atomic_write_json,
                                                atomic_write_text)
    register_all_modules(init_default_scope=True)
    torch.set_num_threads(1)
    if args.genotypes:
        named = {osp.splitext(osp.basename(f))[0]: Genotype.load(f)
                 for f in args.genotypes}
    else:
        gt = json.load(open(GROUND_TRUTH))['genotypes']
        named = {n: Genotype.from_dict(gt[n]['genotype'])
                 for n in ('searched', 'random_00', 'random_01')}
    results = {}
    for name, genotype in named.items():
        folder = osp.join(args.out, name)
        gfile = osp.join(folder, 'genotype.json')
        genotype.save(gfile)
        model = retrain_cfg(RETRAIN, gfile, genotype, 0, folder).model
        model.backbone.genotype = genotype.to_dict()
        ckpt = osp.join(folder, 'inherited.pth')
        atomic_torch_save(inherited_weights(genotype, args.oneshot, model),
                          ckpt)
        for seed in args.seeds:
            row = dict(
                inherited=run(genotype, gfile, seed, osp.join(
                    folder, f'inherited_s{seed}'), args.iters, ckpt)[-1][1],
                scratch=run(genotype, gfile, seed, osp.join(
                    folder, f'scratch_s{seed}'), args.iters)[-1][1],
                scratch_curve=run(genotype, gfile, seed, osp.join(
                    folder, f'long_s{seed}'), args.long_iters,
                    every=args.iters // 4))
            reached = [it for it, miou in row['scratch_curve']
                       if miou >= row['inherited']]
            row['scratch_iters_to_match'] = reached[0] if reached else None
            results[f'{name}@{seed}'] = row
            print(f'{name} seed {seed}: inherited {row["inherited"]:.2f}, '
                  f'scratch {row["scratch"]:.2f} at {args.iters} iters; '
                  'scratch reaches it at '
                  f'{row["scratch_iters_to_match"] or "> " + str(args.long_iters)}'
                  ' iters', flush=True)
    lines = ['| genotype | seed | inherited mIoU | scratch mIoU | scratch '
             'iterations to match |', '|---|---:|---:|---:|---:|']
    for key, row in results.items():
        name, seed = key.split('@')
        match = row['scratch_iters_to_match']
        lines.append(f'| {name} | {seed} | {row["inherited"]:.2f} | '
                     f'{row["scratch"]:.2f} | '
                     f'{match if match else "> " + str(args.long_iters)} |')
    gain = [r['inherited'] - r['scratch'] for r in results.values()]
    lines.append(f'\nMean gain at {args.iters} iterations: '
                 f'{statistics.mean(gain):+.2f} mIoU over {len(gain)} runs '
                 f'(inherited better in {sum(g > 0 for g in gain)}).')
    atomic_write_json(osp.join(args.out, 'inherit_vs_scratch.json'), results)
    atomic_write_text(osp.join(args.out, 'inherit_vs_scratch.md'),
                      '\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
