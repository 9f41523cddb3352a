"""Which checkpoint ``--resume`` picks, and what it refuses (issue 9, 3)."""
import os
import os.path as osp

import pytest
import torch

from mmseg_autodeeplab.engine.atomic_checkpoint_hook import remove_stale_files
from mmseg_autodeeplab.utils import find_resumable_checkpoint
from mmseg_autodeeplab.utils.checkpoint import (CheckpointError,
                                                record_digest,
                                                safe_load_checkpoint)


def _write(folder, name, iteration, digest=True, value=1.0):
    """A small checkpoint as the hook writes it (digest before rename)."""
    tmp = osp.join(folder, f'.{name}.partial')
    torch.save({'meta': {'iter': iteration, 'epoch': 0},
                'state_dict': {'w': torch.full((64, ), value)}}, tmp)
    if digest:
        record_digest(tmp, osp.join(folder, name), iteration)
    os.replace(tmp, osp.join(folder, name))
    return osp.join(folder, name)


def _flip_tensor_byte(path):
    """Corrupt tensor data so that the file still unpickles."""
    data = bytearray(open(path, 'rb').read())
    marker = torch.full((64, ), 3.0).numpy().tobytes()[:8]
    at = data.find(marker)
    assert at > 0
    data[at + 1] ^= 0xFF
    open(path, 'wb').write(bytes(data))


def test_highest_inner_iteration_wins_not_mtime_or_name(tmp_path):
    folder = str(tmp_path)
    old = _write(folder, 'epoch_9.pth', 6)  # name says 9, content says 6
    new = _write(folder, 'epoch_2.pth', 12)
    os.utime(old, (os.path.getmtime(new) + 100, ) * 2)  # touched later
    lines = []
    assert find_resumable_checkpoint(folder, lines.append) == new
    assert lines[-1].startswith(f'resuming from {new} (iteration 12')


def test_truncated_newest_falls_back_to_previous_by_iteration(tmp_path):
    folder = str(tmp_path)
    oldest = _write(folder, 'epoch_1.pth', 3)
    middle = _write(folder, 'epoch_2.pth', 6)
    newest = _write(folder, 'epoch_3.pth', 9)
    payload = open(newest, 'rb').read()
    open(newest, 'wb').write(payload[:len(payload) // 2])
    os.utime(oldest, (os.path.getmtime(newest) + 100, ) * 2)
    lines = []
    assert find_resumable_checkpoint(folder, lines.append) == middle
    assert any(newest in m and 'ignoring' in m for m in lines)
    assert 'iteration 6' in lines[-1]


def test_flipped_bits_are_detected_and_skipped(tmp_path):
    folder = str(tmp_path)
    good = _write(folder, 'iter_4.pth', 4)
    bad = _write(folder, 'iter_8.pth', 8, value=3.0)
    _flip_tensor_byte(bad)
    torch.load(bad, weights_only=True)  # still unpickles
    with pytest.raises(CheckpointError, match='sha256'):
        safe_load_checkpoint(bad)
    lines = []
    assert find_resumable_checkpoint(folder, lines.append) == good
    assert any('skipping' in m and bad in m for m in lines)
    assert 'after skipping 1 newer damaged' in lines[-1]


def test_unrelated_pth_is_never_chosen(tmp_path):
    folder = str(tmp_path)
    ours = _write(folder, 'epoch_1.pth', 3)
    # a pretrained weights file with a higher "iteration" but no digest
    torch.save({'meta': {'iter': 1000}, 'state_dict': {}},
               osp.join(folder, 'pretrained.pth'))
    torch.save({'w': torch.ones(1)}, osp.join(folder, 'weights.pth'))
    lines = []
    assert find_resumable_checkpoint(folder, lines.append) == ours
    assert any('pretrained.pth' in m and 'no digest' in m for m in lines)


def test_work_dir_without_digests_uses_inner_iteration(tmp_path):
    folder = str(tmp_path)
    _write(folder, 'epoch_1.pth', 3, digest=False)
    b = _write(folder, 'epoch_2.pth', 6, digest=False)
    torch.save({'w': torch.ones(1)}, osp.join(folder, 'weights.pth'))
    lines = []
    assert find_resumable_checkpoint(folder, lines.append) == b
    assert 'no digest recorded' in lines[-1]


def test_nothing_intact_gives_none(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'PK\x03\x04 truncated')
    assert find_resumable_checkpoint(str(tmp_path), lambda m: None) is None


def test_stale_partials_and_orphan_digests_are_removed(tmp_path):
    folder = str(tmp_path)
    keep = _write(folder, 'epoch_1.pth', 3)
    (tmp_path / '.epoch_2.pth.partial').write_bytes(b'half')
    (tmp_path / '.genotype.json.abc123.tmp').write_text('{')
    (tmp_path / 'epoch_0.pth.sha256').write_text('{}')  # its .pth is gone
    removed = remove_stale_files(folder)
    assert sorted(removed) == ['.epoch_2.pth.partial',
                               '.genotype.json.abc123.tmp']
    assert sorted(os.listdir(folder)) == ['epoch_1.pth', 'epoch_1.pth.sha256']
    assert osp.isfile(keep)


def test_train_loop_resume_skips_a_damaged_newest(tmp_path, capsys):
    # mim train: the Checked/search loops pick the checkpoint themselves
    from types import SimpleNamespace

    from mmseg_autodeeplab.engine.checked_loops import check_checkpoint_inputs
    folder = str(tmp_path)
    older = _write(folder, 'iter_2.pth', 2)
    newest = _write(folder, 'iter_4.pth', 4)
    open(newest, 'r+b').truncate(100)
    lines = []
    runner = SimpleNamespace(work_dir=folder, _load_from=None, _resume=True,
                             logger=SimpleNamespace(info=lines.append))
    check_checkpoint_inputs(runner)
    assert runner._load_from == older
    os.remove(older)
    runner._load_from = None
    with pytest.raises(SystemExit) as exc:
        check_checkpoint_inputs(runner)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert err[0].startswith('error: ') and 'no intact checkpoint' in err[0]


def test_train_loop_resume_checks_a_checkpoint_in_another_out_dir(
        tmp_path, capsys):
    # CheckpointHook(out_dir=...) keeps the checkpoints outside work_dir;
    # work_dir/last_checkpoint names the one mmengine resumes from.
    from types import SimpleNamespace

    from mmseg_autodeeplab.engine.checked_loops import check_checkpoint_inputs
    work_dir, out_dir = tmp_path / 'work', tmp_path / 'out'
    work_dir.mkdir()
    out_dir.mkdir()
    ckpt = _write(str(out_dir), 'iter_4.pth', 4)
    (work_dir / 'last_checkpoint').write_text(ckpt)
    runner = SimpleNamespace(work_dir=str(work_dir), _load_from=None,
                             _resume=True,
                             logger=SimpleNamespace(info=lambda m: None))
    check_checkpoint_inputs(runner)  # intact: mmengine resumes from it
    assert runner._load_from is None
    open(ckpt, 'r+b').truncate(100)
    with pytest.raises(SystemExit) as exc:
        check_checkpoint_inputs(runner)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert err[0].startswith('error: resume: ') and 'iter_4.pth' in err[0]
