"""Run a tiny search under torchrun and save each rank's final state.

Used by test_distributed.py: ``torchrun --nproc_per_node 2 run_dist_search.py
DATA_ROOT WORK_DIR``.
"""
import os
import sys

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.runner import Runner

sys.path.insert(0, os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
from conftest import build_tiny_cfg  # noqa: E402


def main():
    data_root, work_dir = sys.argv[1], sys.argv[2]
    from mmseg_autodeeplab.cli.search import (_cpu_backend,
                                               start_process_group)
    cfg = build_tiny_cfg(data_root, work_dir, **{
        'train_cfg.max_epochs': 2,
        'train_cfg.arch_start_epoch': 1,
        'train_cfg.val_interval': 2,
        'train_dataloader.batch_size': 2,
        'randomness': dict(seed=0),
    })
    cfg.launcher = 'pytorch'
    _cpu_backend(cfg)
    start_process_group(cfg)
    runner = Runner.from_cfg(cfg)
    net = runner.model.module.backbone
    arch0 = [net.alphas.detach().clone(), net.betas.detach().clone()]
    runner.train()
    model = runner.model.module
    loop = runner.train_loop
    torch.save(
        dict(state={k: v.detach().clone()
                    for k, v in model.named_parameters()},
             arch0=arch0, world=get_world_size(), iters=loop.iter,
             iters_per_epoch=loop.iters_per_epoch,
             a_indices=list(loop.dataloader.sampler),
             b_indices=list(loop.arch_dataloader.sampler)),
        os.path.join(work_dir, f'rank{get_rank()}.pt'))


if __name__ == '__main__':
    main()
