"""One owner per work_dir: a second run refuses in one line (exit 2) and
writes nothing; a killed owner leaves no stale lock."""
import contextlib
import hashlib
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest

from mmseg_autodeeplab.utils.work_dir_lock import (LOCK_NAME, OutputLock,
                                                   WorkDirBusy, table_lock,
                                                   work_dir_lock)

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
DEMO = osp.join(REPO, 'configs', 'autodeeplab_search',
                'autodeeplab-search_f4-l4_1xb2-30e_demo-cityscapes-64x64.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
           PYTHONWARNINGS='ignore',  # mmengine's pkg_resources warning
           PYTHONPATH=os.pathsep.join(filter(None, [
               REPO, os.environ.get('PYTHONPATH')])))
# holds the lock of argv[2] (a work_dir) until killed; the module is loaded
# by its path (stdlib only), so the holder starts without importing torch
HOLDER = (
    'import importlib.util as u, sys, time; '
    's = u.spec_from_file_location("lock", sys.argv[1]); '
    'm = u.module_from_spec(s); s.loader.exec_module(m); '
    'lock = m.work_dir_lock(sys.argv[2], command=["holder"]).acquire(); '
    'print("locked", flush=True); time.sleep(600)')
LOCK_MODULE = osp.join(REPO, 'mmseg_autodeeplab', 'utils', 'work_dir_lock.py')


def _holder(work_dir):
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, LOCK_MODULE,
                             str(work_dir)],
                            stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == 'locked'
    return proc


def _snapshot(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = osp.join(root, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, folder)] = hashlib.sha256(
                    f.read()).hexdigest()
    return out


def test_second_lock_names_the_holder_and_release_frees_it(tmp_path):
    first = work_dir_lock(tmp_path / 'w', command=['search.py', 'a b'])
    with first:
        assert osp.isfile(tmp_path / 'w' / LOCK_NAME)
        with pytest.raises(WorkDirBusy) as e:
            work_dir_lock(tmp_path / 'w').acquire()
        msg = str(e.value)
        assert '\n' not in msg
        assert f'pid {os.getpid()} on host {socket.gethostname()}' in msg
        assert "search.py 'a b'" in msg and 'started 20' in msg
        assert msg.endswith('wait for it to finish, or choose another '
                            '--work-dir')
    # released: the next owner takes it and rewrites the record
    with work_dir_lock(tmp_path / 'w', command=['next']):
        record = json.loads((tmp_path / 'w' / LOCK_NAME).read_text())
        assert record['command'] == 'next' and record['pid'] == os.getpid()


def test_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = _holder(tmp_path)
    with pytest.raises(WorkDirBusy, match=f'pid {proc.pid} .*: holder\\)'):
        work_dir_lock(tmp_path).acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert osp.isfile(tmp_path / LOCK_NAME)  # the file stays, the lock not
    with work_dir_lock(tmp_path):
        pass


def test_waiting_lock_gets_it_when_the_holder_ends(tmp_path):
    proc = _holder(tmp_path)
    seen = []

    def on_wait(holder):
        seen.append(holder)
        proc.send_signal(signal.SIGKILL)

    lock = table_lock(tmp_path / 'table.json')
    lock.lock_file = str(tmp_path / LOCK_NAME)  # the holder's file
    with lock.acquire(wait=True, on_wait=on_wait):
        assert seen and f'pid {proc.pid}' in seen[0]
    proc.wait()


def test_build_cost_table_refuses_a_table_being_built(tmp_path, capsys):
    from mmseg_autodeeplab.cli.build_cost_table import main
    out = tmp_path / 'table.json'
    with table_lock(out, command=['build_cost_table.py']):
        with pytest.raises(SystemExit) as e:
            main(['configs/does/not/matter.py', '--out', str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'build_cost_table.py' in err[0]
    assert f"cost table '{out}' is in use" in err[0]
    assert not out.exists()


def test_search_vs_random_refuses_an_owned_out(tmp_path, capsys):
    from mmseg_autodeeplab.cli import search_vs_random as svr
    searched = osp.join(REPO, 'configs', 'genotypes',
                        'autodeeplab_paper.json')
    out = tmp_path / 'cmp'
    with work_dir_lock(out, '--out', command=['other']):
        with pytest.raises(SystemExit) as e:
            svr.main(['--searched', searched, '--out', str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out '" in err[0] and ': other)' in err[0]
    assert os.listdir(out) == [LOCK_NAME]


def _search(data_root, work_dir, *flags):
    opts = [
        f'train_dataloader.dataset.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'model.backbone.num_layers=3', 'model.backbone.filter_multiplier=2',
        'train_cfg.max_epochs=2', 'train_cfg.arch_start_epoch=1',
        'train_cfg.val_interval=1', 'train_cfg.val_at_start=False',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.by_epoch=True',
        'randomness.seed=0', 'randomness.deterministic=True']
    return [sys.executable, osp.join(REPO, 'tools', 'search.py'), DEMO,
            '--work-dir', str(work_dir), *flags, '--cfg-options', *opts]


def _outputs(work_dir):
    """What a finished search leaves that must not depend on a refused
    second run (checkpoints hold wall times; their α/β are in history)."""
    keep = ('genotype.json', 'search_history.json', 'genotypes')
    return {k: v for k, v in _snapshot(work_dir).items()
            if k.split(os.sep)[0] in keep}


def _run(cmd, env=ENV, timeout=300):
    """``cmd`` run from the repository, its output captured as text."""
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@contextlib.contextmanager
def _paused_search(data_root, tmp_path):
    """``(owner, work_dir)``: a search in ``tmp_path / 'w'``, paused
    (SIGSTOP) in mid-search, once it has files to lose. On leaving it
    continues, and must end rc 0 with the outputs of the same search run
    alone first (``tmp_path / 'solo'``)."""
    solo = _run(_search(data_root, tmp_path / 'solo'), timeout=600)
    assert solo.returncode == 0, solo.stderr[-2000:]
    work = tmp_path / 'w'
    owner = subprocess.Popen(_search(data_root, work), env=ENV, cwd=REPO,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not osp.isfile(work / 'epoch_1.pth'):
            assert owner.poll() is None and time.time() < deadline
            time.sleep(0.05)
        owner.send_signal(signal.SIGSTOP)
        yield owner, work
    finally:
        owner.send_signal(signal.SIGCONT)
    assert owner.wait(timeout=600) == 0, owner.stderr.read()[-2000:]
    assert _outputs(work) == _outputs(tmp_path / 'solo')


@pytest.mark.slow
def test_second_search_refuses_and_the_first_equals_a_solo_run(
        tiny_cityscapes, tmp_path):
    with _paused_search(tiny_cityscapes, tmp_path) as (first, work):
        before = _snapshot(work)
        for flags in ((), ('--resume', ), ('--overwrite', )):
            second = _run(_search(tiny_cityscapes, work, *flags))
            err = second.stderr.strip().splitlines()
            assert second.returncode == 2, flags
            assert len(err) == 1, (flags, err)
            assert err[0].startswith('error: --work-dir ')
            assert f'in use by another run (pid {first.pid} on host ' in \
                err[0] and 'tools/search.py' in err[0]
            assert 'wait for it to finish' in err[0]
            assert _snapshot(work) == before, flags  # nothing written
    # the owner has ended: the same work_dir is free to resume
    resumed = _run(_search(tiny_cityscapes, work, '--resume'), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]


def test_overwrite_against_a_live_holder_deletes_nothing(tmp_path, capsys,
                                                         tiny_cityscapes):
    from mmseg_autodeeplab.cli.search import main
    work = tmp_path / 'w'
    os.makedirs(work / 'genotypes')
    for name in ('genotype.json', 'search_history.json', 'epoch_1.pth',
                 'genotypes/epoch_1.json', 'last_checkpoint'):
        (work / name).write_text(name)
    proc = _holder(work)
    try:
        before = _snapshot(work)
        rc = main(_search(tiny_cityscapes, work, '--overwrite')[2:])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert f'(pid {proc.pid} on host' in err[0] and ': holder)' in err[0]
    assert _snapshot(work) == before


def test_lock_file_of_a_refused_run_is_not_touched(tmp_path):
    lock = OutputLock(tmp_path / 'x.lock', 'x', 'wait')
    with lock:
        text = (tmp_path / 'x.lock').read_bytes()
        stat = os.stat(tmp_path / 'x.lock')
        with pytest.raises(WorkDirBusy):
            OutputLock(tmp_path / 'x.lock', 'x', 'wait').acquire()
        assert (tmp_path / 'x.lock').read_bytes() == text
        assert os.stat(tmp_path / 'x.lock').st_mtime_ns == stat.st_mtime_ns
