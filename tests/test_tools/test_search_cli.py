"""tools/search.py: bad input stops with one clear line, before any work."""
import os
import os.path as osp

import pytest

from mmseg_autodeeplab.cli.search import main

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'autodeeplab_search',
                'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')


def _run(capsys, tmp_path, *options, config=DEMO):
    work_dir = tmp_path / 'work'
    argv = [config, '--work-dir', str(work_dir)]
    if options:
        argv += ['--cfg-options', *options]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err, work_dir


def _roots(root):
    return [f'train_dataloader.dataset.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}']


@pytest.mark.parametrize('options, expected', [
    (('model.backbone.filter_multiplier=0', ), 'filter_multiplier'),
    (('model.backbone.num_layers=-1', ), 'num_layers'),
    (('model.backbone.num_blocks=0', ), 'num_blocks'),
    (('model.backbone.primitives=[none,sep_conv_3x3,foo_conv]', ),
     "unknown operator 'foo_conv'"),
    (('train_cfg.arch_start_epoch=30', ), 'arch_start_epoch=30 lies after'),
    (('train_cfg.arch_start_epoch=40', 'train_cfg.max_epochs=40'),
     'arch_start_epoch=40 lies after'),
])
def test_bad_config_values(capsys, tmp_path, tiny_cityscapes, options,
                           expected):
    rc, err, work_dir = _run(capsys, tmp_path, *_roots(tiny_cityscapes),
                             *options)
    assert rc == 2
    assert len(err) == 1 and err[0].startswith('error: ')
    assert expected in err[0]
    assert not work_dir.exists()  # stopped before any work


def test_missing_data_root(capsys, tmp_path):
    rc, err, work_dir = _run(capsys, tmp_path,
                             *_roots(str(tmp_path / 'nowhere')))
    assert rc == 2 and len(err) == 1
    assert 'nowhere' in err[0] and 'does not exist' in err[0]
    assert not work_dir.exists()


def test_wrongly_laid_out_data_root(capsys, tmp_path):
    root = tmp_path / 'flat'
    os.makedirs(root / 'leftImg8bit' / 'train' / 'x')
    (root / 'leftImg8bit' / 'train' / 'x' / 'a_leftImg8bit.png').write_bytes(
        b'')
    rc, err, _ = _run(capsys, tmp_path, *_roots(str(root)))
    assert rc == 2 and len(err) == 1
    assert 'gtFine/train' in err[0] and 'labels' in err[0]


def test_images_without_expected_suffix(capsys, tmp_path):
    root = tmp_path / 'wrongnames'
    for sub in ('leftImg8bit/train/x', 'gtFine/train/x', 'leftImg8bit/val/x',
                'gtFine/val/x'):
        os.makedirs(root / sub)
    (root / 'leftImg8bit/train/x/a.png').write_bytes(b'')
    rc, err, _ = _run(capsys, tmp_path, *_roots(str(root)))
    assert rc == 2 and len(err) == 1
    assert '_leftImg8bit.png' in err[0]


def test_missing_config(capsys, tmp_path):
    rc, err, _ = _run(capsys, tmp_path, config=str(tmp_path / 'nope.py'))
    assert rc == 2 and len(err) == 1 and 'nope.py' in err[0]
