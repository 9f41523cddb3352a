"""CPU threads for a search: this process's share of its cores, and one
thread while another process competes for them.

Why: torch's OpenMP threads spin while they wait for each other, so two
torch processes with as many threads as cores each spin on a core the other
needs. Measured on a 2-core machine (demo supernet weight step): 0.60 s
alone with two threads; 30-37 s beside a second copy; 1.05-1.08 s with one
thread each; GOMP_SPINCOUNT=10000 still 8.4 s (and =1000 costs 2.4x alone).
"""
import os
import random
import statistics
import time

import torch


def default_num_threads():
    """Intra-op threads for one process: the cores of its affinity mask
    divided among the local ranks of a launcher."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        cores = max(1, os.cpu_count() or 1)
    ranks = 1
    for key in ('LOCAL_WORLD_SIZE', 'SLURM_NTASKS_PER_NODE'):
        value = os.environ.get(key, '')
        if value.isdigit() and int(value) > 0:
            ranks = int(value)
            break
    return max(1, cores // ranks)


def user_num_threads():
    """The user's pinned count (``OMP_NUM_THREADS``), or None."""
    value = os.environ.get('OMP_NUM_THREADS', '').strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def set_cpu_threads(cpu_threads='auto', deterministic=False):
    """Set torch's CPU threads; return a :class:`ThreadGovernor` when they
    may adapt to the load (else None).

    An integer ``cpu_threads`` pins the count, as do ``OMP_NUM_THREADS`` and
    ``deterministic`` (a governed run is not bitwise reproducible across
    machine loads); ``'auto'`` starts from :func:`default_num_threads`.
    """
    if torch.cuda.is_available():
        return None
    if cpu_threads != 'auto':
        if not isinstance(cpu_threads, int) or \
                isinstance(cpu_threads, bool) or cpu_threads <= 0:
            raise ValueError('train_cfg.cpu_threads: expected a positive '
                             f"integer or 'auto', got {cpu_threads!r}")
        torch.set_num_threads(cpu_threads)
        return None
    pinned = user_num_threads()
    threads = pinned or default_num_threads()
    if pinned or deterministic or threads <= 1:
        torch.set_num_threads(threads)
        return None
    return ThreadGovernor(threads)


def others_running(samples=5, pause=0.01):
    """Runnable threads of OTHER processes right now (Linux; else 0), from
    ``/proc/loadavg`` (system-wide, this reader included): the median of a
    few samples. Call it while this process runs one thread."""
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

    Starts at one thread; when no other process is runnable (``busy()``
    returns 0) it tries ``max_threads`` (default: :func:`default_num_threads`)
    and keeps it if its steps are faster by ``margin``. At ``max_threads``,
    a step ``slowdown`` times slower than the fastest seen there means a
    competitor appeared: back to one thread at once. Tries are spaced
    ``interval`` steps, doubling (up to ``max_interval``) while they lose,
    with a per-process jitter so that two copies do not try together. The
    first ``warmup`` steps at each count are not compared (oneDNN builds its
    primitives then).
    """

    def __init__(self, max_threads=None, interval=20, max_interval=320,
                 slowdown=2.0, margin=0.05, warmup=2, busy=others_running):
        self.max_threads = max_threads or default_num_threads()
        self.interval = interval
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

    def _set(self, n):
        torch.set_num_threads(n)
        self.threads = n

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
