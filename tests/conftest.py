"""Shared fixtures: generated data, tiny search and retrain configs, the
paper's genotype, single-threaded torch; tools/analysis on sys.path."""
import os.path as osp
import sys

import pytest
import torch

import mmseg_autodeeplab  # noqa: F401  (compat + registration)
from mmseg_autodeeplab.datasets.demo_data import make_cityscapes

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the measurement tools are scripts beside the package: their tests import
# them from their folder
if osp.join(REPO, 'tools', 'analysis') not in sys.path:
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
DEMO_CONFIG = osp.join(
    REPO, 'configs', 'autodeeplab_search',
    'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')
PROXY_RETRAIN_CONFIG = osp.join(
    REPO, 'configs', 'search_vs_random',
    'autodeeplab_genotype-f8_1xb4-600i_demo-cityscapes-64x64.py')
# The published Auto-DeepLab cell (input indices: block i reads
# [H(l-2), H(l-1), H1, ..., Hi]) and path (spec section 5), written by hand.
PAPER_CELL = (
    ((0, 'atrous_conv_5x5'), (1, 'sep_conv_3x3')),  # H1
    ((0, 'sep_conv_3x3'), (1, 'atrous_conv_3x3')),  # H2
    ((0, 'sep_conv_3x3'), (3, 'sep_conv_3x3')),     # H3 = H(l-2), H2
    ((2, 'sep_conv_5x5'), (4, 'sep_conv_5x5')),     # H4 = H1, H3
    ((3, 'sep_conv_5x5'), (5, 'atrous_conv_5x5')),  # H5 = H2, H4
)
PAPER_PATH = (0, 0, 0, 1, 2, 1, 2, 2, 3, 3, 2, 1)


def load_tool(name):
    """The script ``tools/<name>.py`` as a module (tools/ is no package)."""
    import importlib.util
    key = f'tools_{name.replace("/", "_")}'
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            key, osp.join(REPO, 'tools', f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


@pytest.fixture(scope='session')
def tool():
    """:func:`load_tool`: ``tool('plot_search')``."""
    return load_tool


@pytest.fixture(scope='session')
def paper_cell():
    return PAPER_CELL


@pytest.fixture(scope='session')
def paper_path():
    return PAPER_PATH


@pytest.fixture(scope='module')
def one_thread():
    """torch on one intra-op thread for a module (``usefixtures``)."""
    # tiny tensors: intra-op threading only adds synchronisation, and on a
    # busy 2-core machine spinning worker threads slow the tests 10-20x
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    from mmseg_autodeeplab.cli.search import load_search_cfg
    return load_search_cfg(DEMO_CONFIG,
                           tiny_search_options(data_root, work_dir, **extra),
                           work_dir=work_dir, resume=resume)


@pytest.fixture(scope='session')
def tiny_search_opts():
    """Factory: ``tiny_search_opts(data_root, work_dir, **extra)``, the
    cfg-options of :func:`tiny_search_options` (for command-line runs)."""
    return tiny_search_options


@pytest.fixture(scope='session')
def tiny_cfg():
    """Factory: ``tiny_cfg(data_root, work_dir, **cfg_options)``."""
    return build_tiny_cfg


def build_tiny_retrain_cfg(**extra):
    """The proxy retrain config at F=2 with 8-channel heads, plus ``extra``
    cfg-options."""
    from mmseg_autodeeplab.analysis import load_config
    cfg = load_config(PROXY_RETRAIN_CONFIG)
    cfg.merge_from_dict({
        'model.backbone.filter_multiplier': 2,
        'model.backbone.stem_channels': (4, 4, 8),
        'model.decode_head.channels': 8,
        'model.decode_head.c1_channels': 4,
        **extra,
    })
    return cfg


@pytest.fixture(scope='session')
def tiny_retrain_cfg():
    """Factory: ``tiny_retrain_cfg(**cfg_options)``."""
    return build_tiny_retrain_cfg
