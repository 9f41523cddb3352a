"""SharedCores: the cores shared among the searches running on this host."""
import os
import subprocess
import sys

import pytest
import torch

from mmseg_autodeeplab.utils import threads


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _idle():
    return 0.0


@pytest.fixture
def four_cores(monkeypatch):
    """A 4-core machine whose cores are all this process's."""
    monkeypatch.setattr(threads.os, 'cpu_count', lambda: 4)
    monkeypatch.setattr(threads, 'default_num_threads', lambda: 4)


def test_share_follows_the_searches_running(tmp_path, four_cores):
    folder = str(tmp_path / 'searches')
    with threads.SharedCores(folder, cores=4, load=_idle) as mine:
        assert mine.threads == 4 == torch.get_num_threads()
        other = subprocess.Popen([sys.executable, '-c',
                                  'import time; time.sleep(60)'])
        try:
            open(os.path.join(folder, str(other.pid)), 'w').close()
            assert mine.update() and mine.threads == 2
            assert torch.get_num_threads() == 2
            assert not mine.update()  # unchanged: nothing to set
        finally:
            other.kill()
            other.wait()
        # a search that died without unregistering counts no more
        assert mine.update() and mine.threads == 4
        assert sorted(os.listdir(folder)) == [str(os.getpid())]
    assert os.listdir(folder) == []


def test_never_below_one_thread_and_no_folder_counts_alone(tmp_path,
                                                          four_cores):
    folder = tmp_path / 'searches'
    folder.mkdir()
    for pid in (os.getppid(), 1):  # live processes registered as searches
        (folder / str(pid)).touch()
    with threads.SharedCores(str(folder), cores=2, load=_idle) as mine:
        assert mine.threads == 1
    (tmp_path / 'file').touch()  # a folder that cannot be made
    with threads.SharedCores(str(tmp_path / 'file' / 'x'), cores=2,
                             load=_idle) as alone:
        assert alone.path is None and alone.running() == 1
        assert alone.threads == 2


def test_other_busy_processes_take_their_cores(tmp_path, four_cores):
    """The load average less this search's own threads: what other
    processes (not searches) keep busy is not used."""
    load = [3.0]
    with threads.SharedCores(str(tmp_path), cores=4,
                             load=lambda: load[0]) as mine:
        assert mine.threads == 1  # 3 busy of 4 cores
        load[0] = 1.0 + 1  # one other, and this search's own thread
        assert mine.update() and mine.threads == 3
        load[0] = 3 + 1.2  # its 3 threads and the other: still 3
        assert not mine.update()
        load[0] = 0.0
        assert mine.update() and mine.threads == 4


def test_inside_a_cpuset_the_machine_load_is_not_read(tmp_path, monkeypatch):
    """2 cores of a busy 64-core host: the load average counts threads on
    cores this process cannot use, so it keeps its 2 (before: 64 - 63
    free cores left it 1 thread)."""
    monkeypatch.setattr(threads.os, 'cpu_count', lambda: 64)
    monkeypatch.setattr(threads.os, 'sched_getaffinity', lambda pid: {4, 5},
                        raising=False)
    with threads.SharedCores(str(tmp_path), load=lambda: 63.0) as mine:
        assert (mine.cores, mine.threads) == (2, 2)
    monkeypatch.setattr(threads.os, 'sched_getaffinity',
                        lambda pid: set(range(64)), raising=False)
    with threads.SharedCores(str(tmp_path), load=lambda: 63.0) as mine:
        assert (mine.cores, mine.threads) == (64, 1)  # the whole machine


def test_set_cpu_threads_pins_or_shares(monkeypatch, tmp_path):
    monkeypatch.setattr(threads.tempfile, 'gettempdir', lambda: str(tmp_path))
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(threads, 'default_num_threads', lambda: 2)
    monkeypatch.setattr(threads, 'load_average', _idle)
    assert threads.set_cpu_threads(3) is None
    assert torch.get_num_threads() == 3
    assert threads.set_cpu_threads('auto', deterministic=True) is None
    assert torch.get_num_threads() == 2
    shared = threads.set_cpu_threads('auto')
    assert not os.path.exists(shared.folder)  # registered by the run only
    with shared:
        assert shared.threads == 2 and os.listdir(shared.folder) == [
            str(os.getpid())]
    assert os.listdir(shared.folder) == []
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    assert threads.set_cpu_threads('auto') is None
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match='^train_cfg.cpu_threads: expected'):
        threads.set_cpu_threads(0)


def test_thread_count_follows_affinity(monkeypatch):
    monkeypatch.setattr(threads.os, 'sched_getaffinity',
                        lambda pid: {0, 1, 2, 3}, raising=False)
    # the ranks of a launcher share the cores through the registry, and
    # mmengine pins a distributed run's ranks to one thread anyway
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    assert threads.default_num_threads() == 4
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    assert threads.user_num_threads() == 3
    monkeypatch.setenv('OMP_NUM_THREADS', 'x')
    assert threads.user_num_threads() is None


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'),
                    reason='lists descriptors in /proc (Linux)')
def test_no_descriptor_is_held_for_forked_workers_to_inherit(tmp_path):
    """Registering opens and closes a file: a DataLoader worker forked
    later inherits nothing that keeps the registration (or a lock) alive."""
    before = set(os.listdir('/proc/self/fd'))
    with threads.SharedCores(str(tmp_path), cores=2, load=_idle):
        assert set(os.listdir('/proc/self/fd')) == before


def test_a_search_is_registered_for_its_run_only(tmp_path, monkeypatch,
                                                 tiny_cityscapes, tiny_cfg):
    """The loop registers when its run starts and unregisters whatever
    ends it: a refused ``op_dropout`` (raised while the loop is built)
    and a failing ``before_train`` hook leave no registration behind
    (before: registered in the loop's ``__init__``, removed at the end of
    a run that had started)."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    monkeypatch.setattr(threads.tempfile, 'gettempdir', lambda: str(tmp_path))
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(threads, 'default_num_threads', lambda: 2)
    folder = tmp_path / 'mmseg_autodeeplab-searches'
    refused = Runner.from_cfg(tiny_cfg(
        tiny_cityscapes, str(tmp_path / 'a'),
        **{'train_cfg.op_dropout': dict(tau=1.0)}))
    with pytest.raises(ValueError, match='unknown key'):
        refused.train()
    assert not folder.exists() or os.listdir(folder) == []
    seen = []

    class Fails(Hook):
        def before_train(self, runner):
            seen.append(os.listdir(folder))
            raise RuntimeError('a hook failed')

    runner = Runner.from_cfg(tiny_cfg(tiny_cityscapes, str(tmp_path / 'b')))
    runner.register_hook(Fails())
    with pytest.raises(RuntimeError, match='a hook failed'):
        runner.train()
    assert seen == [[str(os.getpid())]] and os.listdir(folder) == []
