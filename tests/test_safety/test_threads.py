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


def _gov(machine, seed=0):
    # seed: the pid by default; tokens: the timing rules alone
    return threads.ThreadGovernor(2, interval=10, busy=machine.others,
                                  seed=seed, tokens=None)


def _until_two(gov, machine):
    """Step until the governor is at two threads (not in a reference)."""
    for _ in range(100):
        if gov.threads == 2:
            return
        gov.step(machine.step(gov.threads))
    raise AssertionError('never reached two threads')


def test_free_cores_use_the_full_count():
    m = _Machine(free={2: 0.57, 1: 0.66}, contended={2: 13.0, 1: 0.65})
    gov = _gov(m)
    used = _run(gov, m, 200)
    assert used[:2] == [1, 1] and used[-1] == 2
    first = used.index(2)
    assert first <= 14
    # one reference step at one thread after 4, 8, 16, 32, 64 steps
    assert used[first:].count(1) == 5
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
    _until_two(gov, m)
    m.busy = True
    used = _run(gov, m, 300)
    assert used[0] == 2 and used[1:].count(2) == 0  # one slow step, then 1
    m.busy = False
    used = _run(gov, m, 100)
    assert used[-1] == 2  # a later try finds the cores free again


def test_contended_from_the_start_never_uses_two_threads():
    m = _Machine(free={2: 0.57, 1: 0.66}, contended={2: 30.0, 1: 1.05})
    m.busy = True
    used = _run(_gov(m), m, 200)
    assert set(used) == {1}


# Step time of a process by (its threads, the other's threads); 0: alone.
# Measured shape on 2 cores: oversubscribed steps are ~20x slower.
PAIR = {(1, 0): 0.66, (2, 0): 0.57, (1, 1): 1.05, (2, 1): 6.0,
        (1, 2): 1.5, (2, 2): 12.5}


def _pair(steps, busy=lambda: 0, seeds=(0, 0), kinds=None, tokens=None):
    """Two governors stepping side by side; ``busy`` fooled (0) makes both
    try two threads at the same step; ``kinds(t)``: (kind, time factor) of
    step t. Returns each one's thread counts."""
    # same seed: the tries coincide
    govs = [threads.ThreadGovernor(2, interval=10, busy=busy, seed=seed,
                                   tokens=tokens and tokens())
            for seed in seeds]
    used = [[], []]
    for t in range(steps):
        kind, factor = kinds(t) if kinds else ('train', 1.0)
        for g in govs:
            g.begin(kind)
        now = [g.threads for g in govs]
        for i, g in enumerate(govs):
            used[i].append(now[i])
            g.step(factor * PAIR[now[i], now[1 - i]])
    return used


def _longest_together(used):
    longest = run = 0
    for a, b in zip(*used):
        run = run + 1 if a == b == 2 else 0
        longest = max(longest, run)
    return longest


def test_simultaneous_tries_are_found_out_within_a_few_steps():
    used = _pair(200)
    # they did escalate together, and each time found out within the try
    # (its first step is a warm-up, but 12.5 s is over 4x the reference)
    assert _longest_together(used) == 1
    # in all, far closer to one thread each (1.05 s) than to 12.5 s
    total = [sum(PAIR[u[t], v[t]] for t in range(200))
             for u, v in (used, used[::-1])]
    assert max(total) < 1.5 * 1.05 * 200


def test_a_new_kind_of_step_is_judged_against_its_own_reference():
    """The weight steps (16) reach two threads with the other process at
    one; then both begin the longer search steps: neither carries two
    threads into them untested."""
    def kinds(t):
        return ('weights', 1.0) if t < 16 else ('search', 1.7)

    for seeds in ((0, 1), (2, 3), (4, 4)):
        used = _pair(64, seeds=seeds, kinds=kinds)
        assert _longest_together(used) <= 1, seeds
        assert [u[16] for u in used] == [1, 1]  # a reference first


def test_core_tokens_keep_two_governed_processes_from_both_escalating(
        tmp_path, monkeypatch):
    """Tries at the same step (busy() fooled): with the CPU tokens one of
    the two gets the cores and the other stays at one thread, so no step
    is ever taken with both at two threads."""
    monkeypatch.setattr(threads.os, 'sched_getaffinity', lambda pid: {0, 1},
                        raising=False)
    used = _pair(200, tokens=lambda: threads.CoreTokens(str(tmp_path)))
    assert _longest_together(used) == 0
    assert 2 in used[0] + used[1]  # the cores are still used by one
    # a process that ends (or drops to one thread) frees them
    first = threads.CoreTokens(str(tmp_path))
    assert first.take(2) and not threads.CoreTokens(str(tmp_path)).take(1)
    first.release()
    assert threads.CoreTokens(str(tmp_path)).take(2)


def test_stale_reference_is_replaced_by_a_fresh_one():
    """Both reached two threads with a one-thread reference that was
    already slow (taken while the other was oversubscribing): the next
    one-thread reference step shows it, and one thread is kept."""
    govs = [threads.ThreadGovernor(2, interval=10, busy=lambda: 0,
                                   tokens=None) for _ in range(2)]
    for g in govs:
        g.tracks['search'] = t = threads._Track(10, 4, seed=0)
        t.times = {1: [20.0, 20.0], 2: []}
        t.seen = {1: 5, 2: 5}
        t.wait, t.threads = 4, 2
        g.begin('search')
    used = [[], []]
    for _ in range(12):
        now = [g.threads for g in govs]
        for i, g in enumerate(govs):
            used[i].append(now[i])
            g.step(PAIR[now[i], now[1 - i]], 'search')
    for u in used:
        assert u[:4] == [2, 2, 2, 2] and u[4] == 1  # the reference step
        assert u[5:] == [1] * 7  # 1.5 s at one thread beats 12.5 s


def test_kinds_are_judged_apart():
    """Validation steps (10x shorter, no faster at two threads) keep their
    own count: they neither slow the search steps' choice down nor serve
    as their reference; each kind's count is restored at its begin()."""
    m = _Machine(free={2: 0.57, 1: 0.66}, contended={2: 13.0, 1: 0.65})
    plain, with_val = _gov(m), _gov(m)
    for gov in (plain, with_val):
        _run(gov, m, 40)
        _until_two(gov, m)
    val = []
    with_val.begin('val')
    for _ in range(16):
        val.append(with_val.threads)
        with_val.step(0.05)
    # one thread first (a reference of its own), then a try that finds no
    # gain
    assert val[:2] == [1, 1] and val[2] == 2 and val[-1] == 1
    with_val.begin('train')
    assert torch.get_num_threads() == 2
    assert _run(with_val, m, 100) == _run(plain, m, 100)
    assert 0.05 not in with_val.tracks['train'].times.get(1, [])


def test_alone_costs_only_the_reference_steps():
    m = _Machine(free={2: 0.57, 1: 0.66}, contended={2: 13.0, 1: 0.65})
    used = _run(_gov(m), m, 480)
    spent = sum(m.free[n] for n in used)
    assert spent < 1.03 * 0.57 * 480 + 10 * (0.66 - 0.57)


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
