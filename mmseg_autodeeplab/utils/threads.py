"""CPU threads for a search: this process's share of its cores, and one
thread while another process competes for them.

Why: torch's OpenMP threads spin while they wait for each other. When two
torch processes with as many threads as cores share those cores, each thread
spins on a core its partner needs. Measured on this project's 2-core machine
(demo supernet weight step, F=4, L=4, 64x64, batch 2): 0.60 s alone with two
threads; 30-37 s (median; single steps up to 109 s) beside a second copy;
1.05-1.08 s with one thread each; limiting the spin (GOMP_SPINCOUNT=10000)
still 8.4 s, and GOMP_SPINCOUNT=1000 costs 2.4x alone. So:

* the starting count is the cores in the process's affinity mask, divided
  among the local ranks of a launcher (``LOCAL_WORLD_SIZE``); the user's
  ``OMP_NUM_THREADS`` (or ``train_cfg.cpu_threads``) wins, and then nothing
  adapts;
* :class:`ThreadGovernor` keeps whichever of that count and one thread is
  faster right now, probing the other now and then.
"""
import os
import statistics


def available_cores():
    """Cores this process may run on (its affinity mask)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def local_world_size():
    """Processes sharing this machine under a launcher (1 without one)."""
    for key in ('LOCAL_WORLD_SIZE', 'SLURM_NTASKS_PER_NODE'):
        value = os.environ.get(key, '')
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def default_num_threads():
    """Intra-op threads for one process: its share of the available cores."""
    return max(1, available_cores() // local_world_size())


def user_num_threads():
    """The user's pinned count (``OMP_NUM_THREADS``), or None."""
    value = os.environ.get('OMP_NUM_THREADS', '').strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def others_running(samples=5, pause=0.01):
    """Runnable threads of OTHER processes right now (Linux; else 0).

    ``/proc/loadavg``'s fourth field counts runnable threads system-wide,
    this reader included; the median of a few samples damps noise. Call it
    while this process runs one thread (no OpenMP workers spinning).
    """
    import time
    counts = []
    for _ in range(samples):
        try:
            with open('/proc/loadavg') as f:
                running = int(f.read().split()[3].split('/')[0])
        except (OSError, ValueError, IndexError):
            return 0
        counts.append(running - 1)
        time.sleep(pause)
    return max(0, int(statistics.median(counts)))


class ThreadGovernor:
    """Use ``max_threads`` while the cores are free, one thread otherwise.

    Starts at one thread (cheap when contended, and a few steps at most
    when not); when no other process is runnable it tries ``max_threads``
    and keeps it if its steps are faster by ``margin``. At ``max_threads``,
    a step ``slowdown`` times slower than the fastest seen there means a
    competitor appeared: back to one thread at once. Tries are spaced
    ``interval`` steps, doubling (up to ``max_interval``) while they lose,
    with a per-process jitter so that two copies do not try together.
    The first ``warmup`` steps at each count are not compared (oneDNN
    builds its primitives then).

    Thread counts change floating-point summation order, so a governed run
    is not bitwise reproducible across machine loads; pin the count
    (``OMP_NUM_THREADS`` or ``train_cfg.cpu_threads``) when that matters.

    Args:
        max_threads (int): the count for free cores (default: this
            process's share of its affinity mask).
        interval (int): steps between tries of ``max_threads``, at first.
        max_interval (int): longest gap between tries.
        slowdown (float): see above.
        margin (float): how much faster ``max_threads`` must be to be kept.
        warmup (int): steps not compared after each first switch.
        busy (callable): returns the number of other runnable threads.
    """

    def __init__(self, max_threads=None, interval=20, max_interval=320,
                 slowdown=2.0, margin=0.05, warmup=2, busy=others_running):
        import random

        import torch
        self._torch = torch
        self.max_threads = max_threads or default_num_threads()
        self.base_interval = self.interval = interval
        self.max_interval = max_interval
        self.slowdown = slowdown
        self.margin = margin
        self.warmup = warmup
        self.busy = busy
        self._jitter = random.Random(os.getpid())
        self.threads = 1
        torch.set_num_threads(1)
        self.times = {1: [], self.max_threads: []}
        self.seen = {1: 0, self.max_threads: 0}
        self._wait = self.warmup
        self.switches = 0

    def _set(self, n):
        if n != self.threads:
            self._torch.set_num_threads(n)
            self.threads = n
            self.switches += 1

    def _schedule(self, grow):
        if grow:
            self.interval = min(2 * self.interval, self.max_interval)
        gap = self.interval * self._jitter.uniform(0.7, 1.3)
        self._wait = max(1, int(round(gap)))

    def step(self, seconds):
        """Record one step's wall time; maybe change the thread count."""
        n, top = self.threads, self.max_threads
        if top <= 1:
            return
        self.seen[n] += 1
        if self.seen[n] <= self.warmup:
            return  # oneDNN is still building primitives for this count
        self.times[n] = (self.times[n] + [seconds])[-5:]
        if n == top:
            best = min(self.times[top])
            one = min(self.times[1]) if self.times[1] else None
            lost = one is not None and len(self.times[top]) >= 2 and \
                min(self.times[top][-2:]) > (1 - self.margin) * one
            if seconds > self.slowdown * best or lost:
                self._set(1)  # a competitor appeared, or no gain
                self._schedule(grow=lost)
            return
        self._wait -= 1
        if self._wait <= 0:
            if self.busy() == 0:
                self.times[top] = []  # judge the cores as they are now
                self._set(top)
            else:
                self._schedule(grow=False)
