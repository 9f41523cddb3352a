"""Exact resume: an interrupted + resumed search equals an uninterrupted one."""
import os
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner


class _Interrupt(Exception):
    pass


class _StopAt(Hook):
    priority = 'LOWEST'  # after the checkpoint of this iteration is saved

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.iteration:
            raise _Interrupt()


def _cfg(tiny_cfg, data_root, work_dir, resume=False):
    return tiny_cfg(
        data_root, work_dir, resume=resume, **{
            'train_cfg.max_epochs': 3,
            'train_cfg.arch_start_epoch': 1,
            'train_cfg.val_interval': 3,
            'train_cfg.val_begin': 100,
            'default_hooks.checkpoint.by_epoch': False,
            'default_hooks.checkpoint.interval': 1,
            'default_hooks.checkpoint.max_keep_ckpts': -1,
            'randomness': dict(seed=0, deterministic=True),
        })


def _final_state(runner):
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


@pytest.mark.slow
def test_resume_inside_arch_phase_is_bitwise_exact(tiny_cityscapes, tiny_cfg,
                                                    tmp_path):
    full = Runner.from_cfg(_cfg(tiny_cfg, tiny_cityscapes,
                                str(tmp_path / 'full')))
    full.train()
    reference = _final_state(full)
    total = full.train_loop.max_iters
    start = full.train_loop.arch_start_iter
    stop = start + 1  # inside the α/β phase, mid-epoch (2 iters / epoch)
    assert start < stop < total and stop % full.train_loop.iters_per_epoch

    work = str(tmp_path / 'interrupted')
    first = Runner.from_cfg(_cfg(tiny_cfg, tiny_cityscapes, work))
    first.register_hook(_StopAt(stop))
    with pytest.raises(_Interrupt):
        first.train()
    assert osp.isfile(osp.join(work, f'iter_{stop}.pth'))

    resumed = Runner.from_cfg(_cfg(tiny_cfg, tiny_cityscapes, work,
                                   resume=True))
    resumed.train()
    assert resumed.train_loop.iter == total
    state = _final_state(resumed)
    assert set(state) == set(reference)
    different = [k for k in state if not torch.equal(state[k], reference[k])]
    assert not different, different[:5]
    # the α/β phase really ran after the resume point
    at_stop = torch.load(osp.join(work, f'iter_{stop}.pth'),
                         weights_only=True)['state_dict']
    assert not torch.equal(at_stop['backbone.alphas'],
                           state['backbone.alphas'])
