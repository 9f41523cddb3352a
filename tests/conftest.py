"""Shared fixtures: generated data and tiny search configs."""
import os.path as osp

import pytest

import mmseg_autodeeplab  # noqa: F401  (compat + registration)
from mmseg_autodeeplab.datasets.demo_data import make_cityscapes

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(
    REPO, 'configs', 'autodeeplab_search',
    'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')


@pytest.fixture(scope='session')
def tiny_cityscapes(tmp_path_factory):
    """8 train / 2 val generated Cityscapes-layout images, 64×128."""
    root = tmp_path_factory.mktemp('data') / 'cityscapes'
    make_cityscapes(str(root), num_train=8, num_val=2, size=(64, 128),
                    seed=0)
    return str(root)


def tiny_search_options(data_root, work_dir, **extra):
    """cfg-options turning the demo search into a seconds-long run."""
    opts = {
        'train_dataloader.dataset.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'model.backbone.num_layers': 3,
        'model.backbone.filter_multiplier': 2,
        'train_cfg.max_epochs': 2,
        'train_cfg.arch_start_epoch': 1,
        'train_cfg.val_interval': 1,
        'train_cfg.val_at_start': False,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'work_dir': work_dir,
    }
    opts.update(extra)
    return opts


def build_tiny_cfg(data_root, work_dir, resume=False, **extra):
    from mmseg_autodeeplab.apis.search import load_search_cfg
    return load_search_cfg(DEMO_CONFIG,
                           tiny_search_options(data_root, work_dir, **extra),
                           work_dir=work_dir, resume=resume)


@pytest.fixture(scope='session')
def tiny_cfg():
    """Factory: ``tiny_cfg(data_root, work_dir, **cfg_options)``."""
    return build_tiny_cfg
