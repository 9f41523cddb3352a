"""A search is never silently overwritten; bad inputs get one line."""
import errno
import json
import os
import os.path as osp

import pytest
import torch

from mmseg_autodeeplab.cli.search import main
from mmseg_autodeeplab.utils import ConfigError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'autodeeplab_search',
                'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')


def _argv(root, work, *extra, options=()):
    return [DEMO, '--work-dir', str(work), *extra, '--cfg-options',
            f'train_dataloader.dataset.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            'model.backbone.num_layers=3', 'model.backbone.filter_multiplier=2',
            'train_cfg.max_epochs=1', 'train_cfg.arch_start_epoch=0',
            'train_cfg.val_at_start=False', *options]


def _previous_search(work):
    os.makedirs(work / 'genotypes')
    (work / 'genotype.json').write_text('{"kept": true}')
    (work / 'search_history.json').write_text('[{"kept": true}]')


def test_existing_search_is_refused_and_kept(capsys, tmp_path,
                                             tiny_cityscapes):
    work = tmp_path / 'w'
    _previous_search(work)
    rc = main(_argv(tiny_cityscapes, work))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith('error: ')
    for words in ('already holds a search', 'genotype.json',
                  'search_history.json', '--resume', '--work-dir',
                  '--overwrite'):
        assert words in err[0], words
    assert json.loads((work / 'genotype.json').read_text()) == {'kept': True}
    assert json.loads((work / 'search_history.json').read_text()) == [
        {'kept': True}]


def test_resume_and_overwrite_together_is_refused(capsys, tmp_path,
                                                  tiny_cityscapes):
    rc = main(_argv(tiny_cityscapes, tmp_path / 'w', '--resume',
                    '--overwrite'))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and 'contradict' in err[0]


def test_resume_with_no_intact_checkpoint_is_one_line(capsys, tmp_path,
                                                      tiny_cityscapes):
    work = tmp_path / 'w'
    _previous_search(work)
    (work / 'epoch_1.pth').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(SystemExit) as exc:  # the train loop's choice
        main(_argv(tiny_cityscapes, work, '--resume'))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and err[-1].startswith('error: ')
    assert 'no intact checkpoint' in err[-1] and '--overwrite' in err[-1]
    assert (work / 'genotype.json').read_text() == '{"kept": true}'


def test_resume_with_no_checkpoint_at_all_is_refused_first(capsys, tmp_path,
                                                           tiny_cityscapes):
    work = tmp_path / 'w'
    _previous_search(work)
    rc = main(_argv(tiny_cityscapes, work, '--resume'))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert 'found no checkpoint' in err[0] and '--overwrite' in err[0]
    assert not list(work.glob('2*'))  # refused before the Runner's log dir


@pytest.mark.slow  # two tiny searches; the choice itself: test_resume_choice
def test_resume_decides_once_and_hashes_the_choice_once(
        capsys, tmp_path, tiny_cityscapes, monkeypatch):
    """tools/search.py leaves the choice to the train loop: the chosen
    checkpoint is hashed by the choice and by mmengine's load of it, not
    a third time by a second choice."""
    from mmseg_autodeeplab.utils import checkpoint
    work = tmp_path / 'w'
    assert main(_argv(tiny_cityscapes, work)) == 0
    hashed, real = [], checkpoint.file_sha256
    monkeypatch.setattr(checkpoint, 'file_sha256',
                        lambda path, *a: hashed.append(str(path)) or real(
                            path, *a))
    assert main(_argv(tiny_cityscapes, work, '--resume')) == 0
    chosen = str(work / 'epoch_1.pth')
    assert hashed.count(chosen) == 2, hashed


def _table_for_another_space(path, num_layers):
    """A MACs cost table (all zeros) for ``num_layers`` layers."""
    from mmseg_autodeeplab.arch_cost import FORMAT, VERSION
    from mmseg_autodeeplab.search_space import PRIMITIVES
    n, E, P = 4, 20, len(PRIMITIVES)
    path.write_text(json.dumps(dict(
        format=FORMAT, version=VERSION, kind='macs', num_layers=num_layers,
        num_blocks=5, num_levels=n, primitives=list(PRIMITIVES),
        head_cells=[2, num_layers - 1], stem=0,
        edges=torch.zeros(num_layers, n, n, E, P).tolist(),
        cells=torch.zeros(num_layers, n, n, n).tolist(),
        head=torch.zeros(n, n).tolist())))


def test_a_user_error_raised_inside_the_loop_is_one_line(
        capsys, tmp_path, tiny_cityscapes):
    """The table's space is checked against the supernet the Runner built,
    inside runner.train(): one line there too, not mmengine's traceback."""
    table = tmp_path / 'table.json'
    _table_for_another_space(table, num_layers=5)
    rc = main(_argv(tiny_cityscapes, tmp_path / 'w', options=[
        f'train_cfg.arch_cost.table={table}', 'train_cfg.arch_cost.kind=macs',
        'train_cfg.arch_cost.target=1e6', 'train_cfg.arch_cost.weight=1.0']))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith('error: arch_cost.table: ')
    assert 'another search space (num_layers 5 vs 3' in err[-1]
    assert 'Traceback' not in '\n'.join(err)


def test_an_error_from_outside_the_package_keeps_its_traceback(
        capsys, tmp_path, tiny_cityscapes, monkeypatch):
    from mmengine.runner import Runner

    def broken(self, optim_wrapper):
        raise ValueError('not a check of this package')

    monkeypatch.setattr(Runner, 'build_optim_wrapper', broken)
    with pytest.raises(ValueError, match='not a check of this package'):
        main(_argv(tiny_cityscapes, tmp_path / 'w'))


def test_overwrite_replaces_the_previous_search(capsys, tmp_path,
                                                tiny_cityscapes):
    work = tmp_path / 'w'
    _previous_search(work)
    (work / 'genotypes' / 'genotype_epoch_7.json').write_text('{}')
    torch.save({'meta': {'iter': 99}, 'state_dict': {}}, work / 'epoch_7.pth')
    rc = main(_argv(tiny_cityscapes, work, '--overwrite'))
    assert rc == 0
    assert not (work / 'epoch_7.pth').exists()
    assert not (work / 'genotypes' / 'genotype_epoch_7.json').exists()
    history = json.loads((work / 'search_history.json').read_text())
    assert [h['epoch'] for h in history] == [1]


def test_unreadable_load_from_is_one_line(capsys, tmp_path, tiny_cityscapes):
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(SystemExit) as exc:
        main(_argv(tiny_cityscapes, tmp_path / 'w',
                   options=[f'load_from={bad}']))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and err[-1].startswith('error: load_from: ')
    assert str(bad) in err[-1]


@pytest.mark.parametrize('value', [0, -3])
def test_bad_num_classes_is_one_line(capsys, tmp_path, tiny_cityscapes,
                                     value):
    with pytest.raises(SystemExit) as exc:
        main(_argv(tiny_cityscapes, tmp_path / 'w',
                   options=[f'model.decode_head.num_classes={value}']))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert err[-1] == ('error: model.decode_head.num_classes: expected a '
                       f'positive integer, got {value}')


def test_label_beyond_num_classes_names_the_file(capsys, tmp_path,
                                                 tiny_cityscapes):
    # 19 Cityscapes classes; the generated labels use train ids up to 18
    with pytest.raises(SystemExit) as exc:
        main(_argv(tiny_cityscapes, tmp_path / 'w',
                   options=['model.decode_head.num_classes=3']))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert err[-1].startswith('error: ') and 'gtFine' in err[-1]
    assert 'is outside 0-2 (num_classes=3)' in err[-1]


def test_crop_larger_than_images_warns(capsys, tmp_path, tiny_cityscapes):
    from mmseg_autodeeplab.cli.search import load_search_cfg
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='Resize', scale=(64, 32), keep_ratio=True),
                dict(type='RandomCrop', crop_size=(48, 48)),
                dict(type='PackSegInputs')]
    load_search_cfg(DEMO, {
        'train_dataloader.dataset.dataset.data_root': tiny_cityscapes,
        'val_dataloader.dataset.data_root': tiny_cityscapes,
        'train_dataloader.dataset.dataset.pipeline': pipeline},
                    work_dir=str(tmp_path / 'w'))
    err = capsys.readouterr().err
    assert 'warning: train_dataloader: crop 48x48 is larger than the ' \
        'training images after resizing (32x64' in err


def test_full_disk_during_checkpoint_leaves_nothing_partial(
        capsys, tmp_path, tiny_cityscapes, monkeypatch):
    import mmengine.runner.runner as runner_module

    def full_disk_save(checkpoint, filename, **kwargs):
        with open(filename, 'wb') as f:
            f.write(b'PK\x03\x04 half a checkpoint')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(runner_module, 'save_checkpoint', full_disk_save)
    work = tmp_path / 'w'
    with pytest.raises(SystemExit) as exc:
        main(_argv(tiny_cityscapes, work))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert err[-1].startswith('error: ') and 'No space left' in err[-1]
    assert '--resume' in err[-1]
    leftovers = [n for n in os.listdir(work)
                 if n.endswith(('.partial', '.tmp', '.pth', '.sha256'))]
    assert leftovers == []


def test_full_disk_during_genotype_write(capsys, tmp_path, tiny_cityscapes,
                                         monkeypatch):
    import mmseg_autodeeplab.utils.atomic as atomic

    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, 'fsync', failing_fsync)
    work = tmp_path / 'w'
    try:
        with pytest.raises(SystemExit) as exc:
            main(_argv(tiny_cityscapes, work))
    finally:
        monkeypatch.setattr(atomic.os, 'fsync', real_fsync)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and 'No space left' in err[-1]
    for folder in (work, work / 'genotypes'):
        if folder.exists():
            assert not [n for n in os.listdir(folder) if n.endswith('.tmp')]
    assert not (work / 'genotype.json').exists()


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
