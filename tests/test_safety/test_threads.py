"""ThreadGovernor: one thread while contended, the full count when free."""
import pytest
import torch

from mmseg_autodeeplab.utils import threads


class _Clock:
    """Step times as a function of the thread count and contention."""

    def __init__(self, free, contended):
        self.free, self.contended = free, contended
        self.busy = False

    def step(self, n):
        return (self.contended if self.busy else self.free)[n]


def _run(gov, clock, steps):
    used = []
    for _ in range(steps):
        used.append(gov.threads)
        gov.step(clock.step(gov.threads))
    return used


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_free_cores_keep_the_full_count():
    gov = threads.ThreadGovernor(2, interval=10)
    clock = _Clock(free={2: 0.57, 1: 0.66}, contended={2: 13.0, 1: 0.65})
    used = _run(gov, clock, 200)
    # probes of one thread become rarer (10, 20, 40, ... steps apart)
    assert used.count(1) <= 10 and used[-1] == 2


def test_competitor_makes_it_fall_back_and_recover():
    gov = threads.ThreadGovernor(2, interval=10)
    clock = _Clock(free={2: 0.57, 1: 0.66}, contended={2: 13.0, 1: 0.65})
    _run(gov, clock, 20)
    clock.busy = True
    used = _run(gov, clock, 100)
    assert used[5:].count(2) <= 5  # a few probes at most
    slow = [t for t in used if t == 2]
    assert len(slow) <= 8
    clock.busy = False
    used = _run(gov, clock, 400)
    assert used[-1] == 2  # a later probe finds the cores free again


def test_contended_from_the_start():
    gov = threads.ThreadGovernor(2, interval=10)
    clock = _Clock(free={2: 0.57, 1: 0.66}, contended={2: 30.0, 1: 1.05})
    clock.busy = True
    used = _run(gov, clock, 60)
    assert used[:4] == [2, 2, 1, 1] and used[4:].count(2) <= 3


def test_thread_count_follows_affinity_and_ranks(monkeypatch):
    monkeypatch.setattr(threads.os, 'sched_getaffinity', lambda pid: {0, 1,
                                                                      2, 3},
                        raising=False)
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
