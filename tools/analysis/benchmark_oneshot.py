"""What a one-shot training step costs against the network it runs.

Usage: python tools/analysis/benchmark_oneshot.py [--genotypes N]
       [--batch 4] [--crop 64x64] [--steps 20] [--rounds 5] [--threads 1]

For each genotype (the ground truth's reference, docs/demo_plots/
gt_anchor.json, then random ones) the tool builds the proxy retrain
segmentor of that genotype (AutoDeepLabNet + its head) and the demo one-shot
segmentor (AutoDeepLabOneShot + AutoDeepLabOneShotHead), both from their
configs, and times the same training step in one process, alternating
rounds: forward + loss + backward + SGD (momentum, weight decay) + zero_grad,
on the same batch. The one-shot step includes ``activate_subnet`` (training
activates a genotype every iteration). It also counts each step's aten ops
(``count_ops``: views apart). Ratios are one-shot / static; the median over
rounds is reported.
"""
import argparse
import os.path as osp
import statistics
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
for path in (REPO, osp.dirname(osp.abspath(__file__))):
    if path not in sys.path:
        sys.path.insert(0, path)

ONESHOT_CONFIG, RETRAIN_CONFIG = (osp.join(REPO, 'configs', *p) for p in (
    ('autodeeplab_search',
     'autodeeplab-oneshot_f8-l4_1xb4-3000i_demo-cityscapes-64x64.py'),
    ('search_vs_random',
     'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')))
REFERENCE = osp.join(REPO, 'docs', 'demo_plots', 'gt_anchor.json')


def build_models(genotype, oneshot=None):
    """``(static segmentor, one-shot segmentor)`` from the configs; the
    static one is built for ``genotype`` (the decoded config's widths)."""
    import copy

    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    retrain = Config.fromfile(RETRAIN_CONFIG).model
    m = copy.deepcopy(retrain)
    width = len(genotype.cell.blocks) * m.backbone.filter_multiplier
    m.backbone.genotype = genotype.to_dict()
    m.decode_head.update(in_channels=width * 2**genotype.path[-1],
                         c1_in_channels=width * 2**genotype.path[2])
    with DefaultScope.overwrite_default_scope('mmseg'):
        static = MODELS.build(m)
        if oneshot is None:
            oneshot = MODELS.build(Config.fromfile(ONESHOT_CONFIG).model)
    return static, oneshot


def make_step(model, batch, activate=None):
    """One training step of ``model`` on ``batch`` (``(inputs, samples)``)
    with its own SGD (lr 0.01, momentum 0.9, weight decay 4e-5)."""
    import torch
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                          weight_decay=4e-5)
    inputs, samples = batch

    def step():
        if activate:
            activate()
        losses = model.loss(inputs, samples)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        opt.step()
        opt.zero_grad()

    return step


def make_batch(batch, crop, num_classes=19, seed=0):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, 3, *crop, generator=g)
    samples = []
    for _ in range(batch):
        s = SegDataSample(metainfo=dict(img_shape=crop, pad_shape=crop))
        s.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, *crop), generator=g))
        samples.append(s)
    return inputs, samples


def compare(genotype, oneshot, args):
    """Time and op ratios (one-shot / static) for one genotype."""
    import torch
    from count_ops import count_ops, split
    from measure import timed

    from mmseg_autodeeplab.models.backbones.autodeeplab_oneshot import (
        activate_subnet, subnet_state_dict)
    static, oneshot = build_models(genotype, oneshot)
    activate_subnet(oneshot, genotype)
    static.load_state_dict(subnet_state_dict(oneshot), strict=True)
    static.train(), oneshot.train()
    batch = make_batch(args.batch, args.crop)
    steps = dict(static=make_step(static, batch),
                 oneshot=make_step(oneshot, batch,
                                   lambda: activate_subnet(oneshot, genotype)))
    ops = {k: split(count_ops(s))[0] for k, s in steps.items()}
    ratios = []
    for _ in range(args.rounds):  # alternating: drift hits both alike
        t = {k: sum(timed(s, 1, args.steps)) for k, s in steps.items()}
        ratios.append(t['oneshot'] / t['static'])
    torch.set_num_threads(args.threads)
    return dict(ms_static=1e3 * t['static'] / args.steps,
                ms_oneshot=1e3 * t['oneshot'] / args.steps,
                time_ratio=statistics.median(ratios),
                ops_static=ops['static'], ops_oneshot=ops['oneshot'],
                op_ratio=ops['oneshot'] / ops['static'])


def _size(text):
    import argparse
    try:
        size = tuple(int(v) for v in text.lower().split('x'))
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(f'expected HxW, got {text!r}')
    return size


def parse_args(argv=None):
    from mmseg_autodeeplab.analysis import OneLineParser
    p = OneLineParser(description=__doc__.split('\n')[0])
    p.add_argument('--genotypes', type=int, default=3,
                   help='the reference genotype plus N-1 random ones')
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--crop', type=_size, default=(64, 64))
    p.add_argument('--steps', type=int, default=20, help='steps per round')
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    import mmseg_autodeeplab  # noqa: F401
    from mmseg_autodeeplab.search_space import Genotype
    from mmseg_autodeeplab.search_space.sampling import sample_genotype
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ref = Genotype.load(REFERENCE)
    rng = np.random.default_rng(args.seed)
    genotypes = [ref] + [sample_genotype(rng, ref.search_space)
                         for _ in range(args.genotypes - 1)]
    oneshot = None
    print('genotype path | static ms/step | one-shot ms/step | time ratio '
          '(median) | non-view ops static | one-shot | op ratio')
    for g in genotypes:
        if oneshot is None:
            oneshot = build_models(g)[1]
        r = compare(g, oneshot, args)
        print(f"{' '.join(map(str, g.path))} | {r['ms_static']:.1f} | "
              f"{r['ms_oneshot']:.1f} | {r['time_ratio']:.3f} | "
              f"{r['ops_static']} | {r['ops_oneshot']} | "
              f"{r['op_ratio']:.3f}", flush=True)


if __name__ == '__main__':
    main()
