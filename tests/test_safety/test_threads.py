"""ThreadGovernor: one thread while contended, the full count when free."""
import pytest
import torch

from mmseg_autodeeplab.utils import threads


class _Machine:
    """Step times by thread count, with or without a competing process."""

    def __init__(self, free, contended):
        self.free, self.contended = free, contended
        self.busy = False

    def step(self, n):
        return (self.contended if self.busy else self.free)[n]

    def others(self):
        return 1 if self.busy else 0


def _run(gov, machine, steps):
    used = []
    for _ in range(steps):
        used.append(gov.threads)
        gov.step(machine.step(gov.threads))
    return used


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _gov(machine):
    return threads.ThreadGovernor(2, interval=10, busy=machine.others)


def test_free_cores_use_the_full_count():
    m = _Machine(free={2: 0.57, 1: 0.66}, contended={2: 13.0, 1: 0.65})
    gov = _gov(m)
    used = _run(gov, m, 200)
    assert used[:2] == [1, 1] and used[-1] == 2
    assert used[10:].count(1) == 0
    assert torch.get_num_threads() == 2


def test_no_gain_keeps_one_thread_and_tries_less_often():
    m = _Machine(free={2: 0.60, 1: 0.60}, contended={2: 13.0, 1: 0.65})
    gov = _gov(m)
    used = _run(gov, m, 300)
    tries = sum(1 for a, b in zip(used, used[1:]) if (a, b) == (1, 2))
    assert used[-1] == 1 and 1 <= tries <= 6


def test_competitor_makes_it_fall_back_and_never_try_while_busy():
    m = _Machine(free={2: 0.57, 1: 0.66}, contended={2: 13.0, 1: 0.65})
    gov = _gov(m)
    _run(gov, m, 30)
    m.busy = True
    used = _run(gov, m, 300)
    assert used[0] == 2 and used[1:].count(2) == 0  # one slow step, then 1
    m.busy = False
    used = _run(gov, m, 100)
    assert used[-1] == 2  # a later try finds the cores free again


def test_contended_from_the_start_never_uses_two_threads():
    m = _Machine(free={2: 0.57, 1: 0.66}, contended={2: 30.0, 1: 1.05})
    m.busy = True
    used = _run(threads.ThreadGovernor(2, interval=10, busy=m.others), m, 200)
    assert set(used) == {1}


def test_thread_count_follows_affinity_and_ranks(monkeypatch):
    monkeypatch.setattr(threads.os, 'sched_getaffinity',
                        lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv('LOCAL_WORLD_SIZE', raising=False)
    monkeypatch.delenv('SLURM_NTASKS_PER_NODE', raising=False)
    assert threads.default_num_threads() == 4
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    assert threads.default_num_threads() == 2
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '8')
    assert threads.default_num_threads() == 1
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    assert threads.user_num_threads() == 3
    monkeypatch.setenv('OMP_NUM_THREADS', 'x')
    assert threads.user_num_threads() is None


def test_others_running_reads_proc_loadavg():
    assert threads.others_running(samples=3, pause=0) >= 0
