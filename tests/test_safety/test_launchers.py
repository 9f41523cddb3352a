"""Ownership under every launcher: the real ``tools/search.py`` started as
the tasks of torchrun, srun and mpirun would start it (their environment
variables, gloo on CPU, one process per rank). No rank of a refused run
deletes anything in a live owner's work_dir; a launcher's missing variables
give one line naming them."""
import contextlib
import os
import socket
import subprocess

import pytest

from mmseg_autodeeplab.utils.launcher import (REQUIRED, LauncherError,
                                              launcher_env)
from test_work_dir_lock import (ENV, REPO, _holder, _paused_search, _run,
                                _search, _snapshot)

#: every variable a launcher sets: none leaks in from the test's own shell
LAUNCHER_KEYS = {k for keys in REQUIRED.values() for k in keys} | {
    'LOCAL_RANK', 'SLURM_LOCALID', 'LOCAL_WORLD_SIZE',
    'SLURM_NTASKS_PER_NODE'}


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _task_env(launcher, rank, port, world=2, drop=()):
    """The variables ``launcher`` gives task ``rank`` of ``world``."""
    env = {k: v for k, v in ENV.items() if k not in LAUNCHER_KEYS}
    if launcher == 'pytorch':
        env.update(RANK=rank, WORLD_SIZE=world, LOCAL_RANK=rank,
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=port)
    elif launcher == 'slurm':  # the host from the node list, as srun's
        env.update(SLURM_PROCID=rank, SLURM_NTASKS=world,
                   SLURM_LOCALID=rank, SLURM_NODELIST='127.0.0.1',
                   MASTER_PORT=port)
    elif launcher == 'mpi':
        env.update(OMPI_COMM_WORLD_RANK=rank, OMPI_COMM_WORLD_SIZE=world,
                   OMPI_COMM_WORLD_LOCAL_RANK=rank, MASTER_ADDR='127.0.0.1',
                   MASTER_PORT=port)
    env = {k: str(v) for k, v in env.items() if k not in drop}
    return env


def _previous_run(work):
    """A search's files, as a live owner would have written them."""
    os.makedirs(work / 'genotypes')
    for name in ('genotype.json', 'search_history.json', 'epoch_1.pth',
                 'epoch_1.pth.sha256', 'genotypes/epoch_1.json',
                 'last_checkpoint'):
        (work / name).write_text(name)


@contextlib.contextmanager
def _live_owner(work):
    """A search's files in ``work`` (:func:`_previous_run`) and a live
    process holding its lock, yielded; the block must leave every file as
    it was."""
    _previous_run(work)
    holder = _holder(work)
    try:
        before = _snapshot(work)
        yield holder
        assert _snapshot(work) == before
    finally:
        holder.kill()
        holder.wait()


def _start(cmd, env):
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _errors(stderr):
    return [line for line in stderr.splitlines() if line.startswith(
        'error:')]


@pytest.mark.parametrize('launcher', ['pytorch', 'slurm', 'mpi'])
def test_every_rank_of_a_refused_overwrite_deletes_nothing(
        launcher, tiny_cityscapes, tmp_path):
    """Both tasks of a 2-rank ``--overwrite`` run against a live owner stop
    with its name (exit 2); its checkpoints and genotypes are untouched.
    Before, under srun/mpirun task 1 deleted them (it read only RANK)."""
    work = tmp_path / 'w'
    with _live_owner(work) as holder:
        port = _free_port()
        cmd = _search(tiny_cityscapes, work, '--overwrite', '--launcher',
                      launcher) + ['env_cfg.dist_cfg.timeout=120']
        tasks = [_start(cmd, _task_env(launcher, rank, port))
                 for rank in (1, 0)]  # task 1 first: it must wait
        outs = [t.communicate(timeout=300) for t in tasks]
    for task, (_, err) in zip(tasks, outs):
        lines = _errors(err)
        assert task.returncode == 2 and len(lines) == 1, err[-2000:]
        assert 'is in use by another run' in lines[0]
        assert f'(pid {holder.pid} on host' in lines[0], lines[0]


def test_stray_rank_without_a_launcher_still_takes_the_lock(
        tiny_cityscapes, tmp_path):
    """``RANK=1`` left in a shell, ``--launcher none``: the run is its own
    rank 0, so it is refused by the owner like any second run (before, it
    skipped the lock and ran in the owner's work_dir)."""
    work = tmp_path / 'w'
    with _live_owner(work) as holder:
        env = dict(_task_env('none', 0, 0), RANK='1', WORLD_SIZE='2')
        run = _run(_search(tiny_cityscapes, work, '--overwrite'), env)
    lines = _errors(run.stderr)
    assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
    assert f'(pid {holder.pid} on host' in lines[0]


def test_srun_task_without_a_node_list_is_one_line_and_deletes_nothing(
        tiny_cityscapes, tmp_path):
    """The issue's reproduction: ``SLURM_PROCID=1 SLURM_NTASKS=2
    tools/search.py ... --overwrite --launcher slurm`` beside a live owner
    deleted its epoch_1.pth, then stopped with ``error: 'SLURM_NODELIST'``.
    """
    work = tmp_path / 'w'
    with _live_owner(work):
        env = _task_env('slurm', 1, _free_port(),
                        drop=('SLURM_NODELIST', 'SLURM_LOCALID'))
        run = _run(_search(tiny_cityscapes, work, '--overwrite',
                           '--launcher', 'slurm'), env)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        'error: --launcher slurm: SLURM_NODELIST is not set (set by srun); '
        'start the tool with that launcher or pass --launcher none')


@pytest.mark.slow  # waits out the rendezvous timeout
def test_a_task_whose_rank_zero_never_comes_stops_and_deletes_nothing(
        tiny_cityscapes, tmp_path):
    """Task 1 of an srun step whose task 0 never starts: it waits
    ``dist_cfg.timeout`` seconds for the others, then stops with one line;
    it has not touched the work_dir."""
    work = tmp_path / 'w'
    _previous_run(work)
    before = _snapshot(work)
    cmd = _search(tiny_cityscapes, work, '--overwrite', '--launcher',
                  'slurm') + ['env_cfg.dist_cfg.timeout=3']
    run = _run(cmd, _task_env('slurm', 1, _free_port()))
    assert _snapshot(work) == before
    lines = _errors(run.stderr)
    assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
    assert lines[0].startswith('error: --launcher slurm: rank 1 of 2 could '
                               'not join the run at 127.0.0.1:')


@pytest.mark.parametrize('launcher, drop, named', [
    ('pytorch', ('MASTER_ADDR', 'MASTER_PORT'),
     'MASTER_ADDR, MASTER_PORT are not set (set by torchrun'),
    ('slurm', ('SLURM_NTASKS', ), 'SLURM_NTASKS is not set (set by srun)'),
    ('mpi', ('OMPI_COMM_WORLD_LOCAL_RANK', ),
     'OMPI_COMM_WORLD_LOCAL_RANK is not set (set by mpirun'),
])
def test_missing_launcher_variables_are_named(launcher, drop, named):
    env = _task_env(launcher, 1, 29500, drop=drop)
    with pytest.raises(LauncherError, match='^--launcher ' + launcher) as e:
        launcher_env(launcher, env)
    assert named in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('launcher, rank', [
    ('none', 0), ('pytorch', 1), ('slurm', 1), ('mpi', 1)])
def test_rank_is_read_from_the_launcher_given(launcher, rank):
    """Each launcher's own variable (what the rendezvous joins as); a stray
    RANK counts only for torchrun (srun/mpirun tasks get RANK from mmengine
    only after the deletion)."""
    env = _task_env(launcher, 1, 29500)
    env['RANK'] = '7' if launcher != 'pytorch' else '1'
    layout = launcher_env(launcher, env)
    assert layout['rank'] == rank
    if launcher != 'none':
        assert (layout['world_size'], layout['master_addr']) == (
            2, '127.0.0.1')


@pytest.mark.slow
def test_a_live_search_keeps_every_checkpoint_against_every_launcher(
        tiny_cityscapes, tmp_path):
    """A real search paused after its first checkpoint; a 2-task
    ``--overwrite`` run under torchrun's, srun's and mpirun's variables and
    a run with a stray ``RANK`` are all refused; nothing the owner wrote
    changes, and the owner ends rc 0 with its solo result."""
    with _paused_search(tiny_cityscapes, tmp_path) as (owner, work):
        before = _snapshot(work)
        assert 'epoch_1.pth' in before
        for launcher in ('pytorch', 'slurm', 'mpi'):
            port = _free_port()
            cmd = _search(tiny_cityscapes, work, '--overwrite',
                          '--launcher', launcher)
            tasks = [_start(cmd, _task_env(launcher, rank, port))
                     for rank in (1, 0)]
            for task in tasks:
                _, err = task.communicate(timeout=300)
                lines = _errors(err)
                assert task.returncode == 2 and len(lines) == 1, err[-2000:]
                assert f'(pid {owner.pid} on host' in lines[0]
            assert _snapshot(work) == before, launcher
        stray = _run(_search(tiny_cityscapes, work, '--overwrite'),
                     dict(_task_env('none', 0, 0), RANK='1'))
        assert stray.returncode == 2, stray.stderr[-2000:]
        assert _snapshot(work) == before


def test_overwrite_skips_a_file_removed_meanwhile(tmp_path, monkeypatch):
    """A checkpoint that disappears between the listing and its removal
    (another process cleaning up) is not an error (before: exit 2)."""
    import glob

    from mmseg_autodeeplab.cli.search import clear_search_outputs
    _previous_run(tmp_path)
    real_glob = glob.glob
    monkeypatch.setattr(glob, 'glob', lambda pattern: real_glob(pattern) + [
        str(tmp_path / 'gone.pth')])
    clear_search_outputs(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_work_dir_that_is_a_file_is_one_line_on_rank_zero(
        tmp_path, capsys, tiny_cityscapes):
    """Rank 0 turns what the work_dir's lock raises (here FileExistsError:
    the path is a file) into the one line the other ranks print (before: a
    traceback on rank 0 alone)."""
    from mmseg_autodeeplab.cli.search import main
    work = tmp_path / 'a_file'
    work.write_text('not a folder')
    rc = main(_search(tiny_cityscapes, work)[2:])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [
        f"error: work_dir '{work}': [Errno 17] File exists: '{work}'"]
    assert work.read_text() == 'not a folder'


def test_main_decides_gives_every_rank_the_main_process_line(monkeypatch):
    """A rank that is not the main one does not run the work and stops with
    the line rank 0 broadcast; a bug on rank 0 keeps its traceback."""
    import mmengine.dist

    from mmseg_autodeeplab.utils import ConfigError
    from mmseg_autodeeplab.utils.launcher import main_decides
    ran = []
    monkeypatch.setattr(mmengine.dist, 'is_main_process', lambda: False)
    monkeypatch.setattr(mmengine.dist, 'broadcast_object_list',
                        lambda line, src: line.__setitem__(0, 'rank 0 line'))
    with pytest.raises(ConfigError, match='^rank 0 line$'):
        main_decides(lambda: ran.append(1), 'x')
    assert ran == []
    monkeypatch.setattr(mmengine.dist, 'is_main_process', lambda: True)
    monkeypatch.setattr(mmengine.dist, 'broadcast_object_list',
                        lambda line, src: None)
    with pytest.raises(ZeroDivisionError):
        main_decides(lambda: 1 / 0, 'x')
    with pytest.raises(ConfigError, match="^x: \\[Errno 13\\] denied$"):
        main_decides(lambda: (_ for _ in ()).throw(
            PermissionError(13, 'denied')), 'x')


def test_a_cuda_rendezvous_timeout_is_a_launcher_error(monkeypatch):
    """With CUDA, mmengine's init_dist failing to meet the other ranks is
    the same one-line LauncherError as on CPU (before: a traceback)."""
    import mmengine.dist
    import torch
    from mmengine.config import Config

    from mmseg_autodeeplab.cli.search import start_process_group

    def timeout(launcher, **kwargs):
        raise RuntimeError('Timed out after 3 seconds waiting for clients.'
                           '\n1/2 clients joined.')

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(mmengine.dist, 'init_dist', timeout)
    env = _task_env('pytorch', 1, 29500)
    for key in REQUIRED['pytorch']:
        monkeypatch.setenv(key, env[key])
    with pytest.raises(LauncherError) as e:
        start_process_group(Config(dict(launcher='pytorch')))
    assert str(e.value) == (
        '--launcher pytorch: rank 1 of 2 could not join the run at '
        '127.0.0.1:29500 (RuntimeError: Timed out after 3 seconds waiting '
        'for clients.)')


def test_scontrol_that_does_not_answer_is_one_line(tmp_path, monkeypatch):
    """``scontrol`` expanding a node list is given SCONTROL_TIMEOUT_S
    (before: no timeout, a hung slurmctld hung the start)."""
    from mmseg_autodeeplab.utils import launcher
    scontrol = tmp_path / 'scontrol'
    scontrol.write_text('#!/bin/sh\nsleep 3\necho node1\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    monkeypatch.setattr(launcher, 'SCONTROL_TIMEOUT_S', 0.5, raising=False)
    env = dict(_task_env('slurm', 1, 29500), SLURM_NODELIST='node[1-2]')
    with pytest.raises(LauncherError, match='^--launcher slurm: cannot '
                       "expand SLURM_NODELIST='node\\[1-2\\]' \\(scontrol "
                       'missing, failed or silent for 0.5 s\\); set '
                       'MASTER_ADDR$'):
        launcher_env('slurm', env)
    scontrol.write_text('#!/bin/sh\necho node1\necho node2\n')
    assert launcher_env('slurm', env)['master_addr'] == 'node1'
