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


class ThreadGovernor:
    """Use whichever of ``max_threads`` and one thread is faster right now.

    Call :meth:`step` after each step with its wall time. The first step at
    each count is a warm-up (oneDNN builds its primitives) and is not
    compared. After one measured step at each count the faster one is kept;
    the other is probed for one step every ``interval`` steps (doubling, up
    to ``max_interval``, while it keeps losing), and at once when steps at
    the current count become ``slowdown`` times slower than usual (a
    competitor appeared).

    Thread counts change floating-point summation order, so a governed run
    is not bitwise reproducible across machine loads; pin the count
    (``OMP_NUM_THREADS`` or ``train_cfg.cpu_threads``) when that matters.

    Args:
        max_threads (int): the count for free cores (default: this
            process's share of its affinity mask).
        interval (int): steps between probes of the other count, at first.
        max_interval (int): longest gap between probes.
        slowdown (float): ratio to the current count's median step that
            triggers an early probe.
        margin (float): the other count must be this much faster to switch.
    """

    def __init__(self, max_threads=None, interval=20, max_interval=320,
                 slowdown=2.0, margin=0.05):
        import torch
        self._torch = torch
        self.max_threads = max_threads or default_num_threads()
        self.base_interval = interval
        self.interval = interval
        self.max_interval = max_interval
        self.slowdown = slowdown
        self.margin = margin
        self.threads = self.max_threads
        torch.set_num_threads(self.threads)
        self.times = {}  # threads -> recent measured step times
        self.warm = set()
        self._since = 0
        self._probe_from = None  # count to return to after a probe
        self.switches = 0

    def _median(self, n):
        recent = self.times.get(n)
        return statistics.median(recent) if recent else None

    def _set(self, n):
        if n != self.threads:
            self._torch.set_num_threads(n)
            self.threads = n
            self.switches += 1

    def _other(self):
        return 1 if self.threads == self.max_threads else self.max_threads

    def step(self, seconds):
        """Record one step's wall time; maybe change the thread count."""
        n = self.threads
        if self.max_threads <= 1:
            return
        if n not in self.warm:  # warm-up step: not comparable...
            self.warm.add(n)
            back = self._probe_from
            if back is not None and self._median(back) is not None and \
                    seconds > 3 * self.slowdown * self._median(back):
                # ...unless hopeless: do not spend another step on it
                self._probe_from = None
                self.interval = min(2 * self.interval, self.max_interval)
                self._since = 0
                self._set(back)
            return
        usual = self._median(n)
        self.times.setdefault(n, []).append(seconds)
        del self.times[n][:-5]
        if self._probe_from is not None:  # this was a probe of count n
            back, self._probe_from = self._probe_from, None
            if seconds < (1 - self.margin) * self._median(back):
                self.interval = self.base_interval  # switched: stay here
                self.times[back] = self.times[back][-1:]
            else:
                self.interval = min(2 * self.interval, self.max_interval)
                self._set(back)
            self._since = 0
            return
        self._since += 1
        other = self._other()
        sudden = usual is not None and seconds > self.slowdown * usual
        if other not in self.times or sudden or self._since >= self.interval:
            if sudden:
                self.interval = self.base_interval
            self._probe_from = n
            self._set(other)
