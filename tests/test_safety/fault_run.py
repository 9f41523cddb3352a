"""Run a tiny search and die at a chosen point (fault-injection helper).

Usage: ``python fault_run.py DATA_ROOT WORK_DIR POINT [--resume]
[--early-stop]`` where POINT is ``none`` or ``KIND:K``:

* ``iter:K``    os._exit after iteration K (its checkpoints written);
* ``val:K``     os._exit inside the K-th validation;
* ``ckpt:K``    os._exit halfway through writing the K-th checkpoint file;
* ``history:K`` os._exit halfway through the K-th history write;
* ``sigterm:K`` SIGTERM to itself during iteration K (graceful stop).

``os._exit`` skips every ``finally``/``except`` clause: a stand-in for
``kill -9`` at an exact place.

``--early-stop``: DARTS+ stop with α favouring sep_conv_3x3 from the start
(it fires at the end of epoch 2, the first of the α/β phase: iteration 4)
and a checkpoint after every iteration.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

KILLED = 137


def tiny_options(early_stop=False):
    if early_stop:
        return dict(tiny_options(), **{
            'train_cfg.arch_early_stop': dict(max_count=3,
                                              op='sep_conv_3x3'),
            'default_hooks.checkpoint.by_epoch': False})
    return {
        'train_cfg.max_epochs': 3,
        'train_cfg.arch_start_epoch': 1,
        'train_cfg.val_interval': 1,
        'default_hooks.checkpoint.by_epoch': True,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'randomness': dict(seed=0, deterministic=True),
    }


def main():
    data_root, work_dir, point = sys.argv[1:4]
    resume = '--resume' in sys.argv
    early_stop = '--early-stop' in sys.argv
    import torch
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from conftest import build_tiny_cfg
    kind, _, at = point.partition(':')
    at = int(at or 0)

    if kind == 'ckpt':
        import mmengine.runner.runner as runner_module
        real_save, calls = runner_module.save_checkpoint, []

        def dying_save(checkpoint, filename, **kwargs):
            calls.append(filename)
            real_save(checkpoint, filename, **kwargs)
            if len(calls) == at:
                size = os.path.getsize(filename)
                with open(filename, 'r+b') as f:
                    f.truncate(size // 2)
                os._exit(KILLED)

        runner_module.save_checkpoint = dying_save
    if kind == 'history':
        import mmseg_autodeeplab.engine.genotype_hook as hook_module
        real_write, calls = hook_module.atomic_write_json, []

        def dying_write(path, obj):
            if path.endswith('search_history.json'):  # not genotype files
                calls.append(path)
                if len(calls) == at:
                    tmp = os.path.join(os.path.dirname(path), '.'
                                       + os.path.basename(path) + '.x.tmp')
                    with open(tmp, 'w') as f:
                        f.write('[{"half": ')
                    os._exit(KILLED)
            real_write(path, obj)

        hook_module.atomic_write_json = dying_write

    class Die(Hook):
        priority = 'LOWEST'

        def before_train(self, runner):
            if early_stop:  # every edge decodes to sep_conv_3x3
                from mmseg_autodeeplab.engine.utils import find_supernet
                net = find_supernet(runner.model)
                with torch.no_grad():
                    net.alphas[:, net.primitives.index('sep_conv_3x3')] += 5

        def __init__(self):
            self.validations = 0

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if kind == 'iter' and runner.iter + 1 == at:
                os._exit(KILLED)
            if kind == 'sigterm' and runner.iter + 1 == at:
                os.kill(os.getpid(), signal.SIGTERM)

        def before_val_epoch(self, runner):
            self.validations += 1

        def after_val_iter(self, runner, batch_idx, data_batch=None,
                           outputs=None):
            if kind == 'val' and self.validations == at:
                os._exit(KILLED)

    cfg = build_tiny_cfg(data_root, work_dir, resume=resume,
                         **tiny_options(early_stop))
    runner = Runner.from_cfg(cfg)
    if not resume:
        runner.register_hook(Die())
    runner.train()


if __name__ == '__main__':
    main()
