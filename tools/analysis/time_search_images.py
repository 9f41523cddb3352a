"""Time the search pictures: GenotypeHook's drawing vs the validation.

Usage: python tools/analysis/time_search_images.py [--config CONFIG]
       [--data-root DIR] [--work-dir DIR] [--epochs 6] [--arch-start 2]

Runs a short search (the demo config by default, one thread) and prints,
per validation, the seconds spent drawing the α heatmap, β trellis and
decoded cell for the visualizer and the seconds of the validation without
them, plus every training epoch's time, as JSON.
"""
import json
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

DEMO_CONFIG = osp.join('configs', 'autodeeplab_search', 'autodeeplab-search_'
                       'f4-l4_1xb2-30e_demo-cityscapes-64x64.py')


def parse_args(argv=None):
    from mmseg_autodeeplab.analysis import OneLineParser, int_at_least
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEMO_CONFIG)
    parser.add_argument('--data-root', default='data/demo_cityscapes')
    parser.add_argument('--work-dir', default='work_dirs/time_search_images')
    parser.add_argument('--epochs', type=int_at_least(1), default=6)
    parser.add_argument('--arch-start', type=int_at_least(0), default=2)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from mmseg_autodeeplab.cli.search import load_search_cfg
    from mmseg_autodeeplab.visualization import search_plots

    draws = []
    draw = search_plots.entry_images

    def timed_draw(entry):
        start = time.perf_counter()
        images = draw(entry)
        draws.append(time.perf_counter() - start)
        return images

    # the hook imports entry_images when it draws, so this timed one is used
    search_plots.entry_images = timed_draw

    class Clock(Hook):
        priority = 'VERY_HIGH'  # starts before, ends after the other hooks

        def __init__(self):
            self.val, self.epochs = [], []

        def before_val_epoch(self, runner):
            self.start = time.perf_counter()

        def after_val(self, runner):
            self.val.append(time.perf_counter() - self.start)

        def before_train_epoch(self, runner):
            self.epoch_start = time.perf_counter()

        def after_train_epoch(self, runner):
            self.epochs.append(time.perf_counter() - self.epoch_start)

    roots = {f'{k}_dataloader.dataset.data_root': args.data_root
             for k in ('val', 'test')}
    roots['train_dataloader.dataset.dataset.data_root'] = args.data_root
    cfg = load_search_cfg(args.config, dict(
        roots, **{'train_cfg.max_epochs': args.epochs,
                  'train_cfg.arch_start_epoch': args.arch_start,
                  'train_cfg.cpu_threads': 1}),
        work_dir=args.work_dir, resume=False)
    runner = Runner.from_cfg(cfg)
    clock = Clock()
    runner.register_hook(clock)
    runner.train()
    print(json.dumps(dict(
        draw_s=[round(t, 3) for t in draws],
        validation_without_drawing_s=[round(v - d, 3)
                                      for v, d in zip(clock.val, draws)],
        train_epoch_s=[round(t, 3) for t in clock.epochs]), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
