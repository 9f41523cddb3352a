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
import tempfile
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


class CoreTokens:
    """One ``flock`` token per CPU, in a folder shared by every process on
    the host: a governed process holds ``n`` tokens of its affinity mask
    while it runs more than one thread.

    Why: a step taken while two processes both oversubscribe the cores can
    last minutes (seen: 175 s for a 1 s step), so finding it out after the
    step is too late; two governed processes (two seeds started together)
    can never both hold the cores. Tokens die with their process.
    """

    def __init__(self, folder=None):
        self.folder = folder or os.path.join(
            tempfile.gettempdir(), 'mmseg_autodeeplab-cpu-tokens')
        self._fds = []

    @property
    def held(self):
        return bool(self._fds)

    def take(self, n):
        """Hold ``n`` free tokens of this process's CPUs, or none (False)."""
        import fcntl
        try:
            cpus = sorted(os.sched_getaffinity(0))
            os.makedirs(self.folder, exist_ok=True)
        except (AttributeError, OSError):
            return True  # no affinity or no folder: the timing rules alone
        for cpu in cpus:
            if len(self._fds) == n:
                break
            try:
                fd = os.open(os.path.join(self.folder, f'cpu{cpu}'),
                             os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fds.append(fd)
            except OSError:
                os.close(fd)
        if len(self._fds) < n:
            self.release()
            return False
        return True

    def release(self):
        while self._fds:
            os.close(self._fds.pop())


class _Track:
    """One kind of step: its thread count, its recent step times by thread
    count and when to probe next (kinds are never compared)."""

    def __init__(self, interval, check, seed):
        self.jitter = random.Random(seed)
        self.threads = 1
        self.times = {}  # threads -> recent step times, newest last
        self.seen = {}  # threads -> steps taken (for the warm-up)
        self.interval = interval  # steps between tries of more threads
        self.check = check  # steps at max threads between references
        self.wait = None  # steps to the next probe (None: not yet set)
        self.probe = 0  # steps left in a try of more threads
        self.reference = False  # this step is a one-thread reference


class ThreadGovernor:
    """Use ``max_threads`` while they are faster, one thread otherwise,
    judged against a reference taken at one thread close in time.

    Why close in time: two processes that start together and both try more
    threads at once are both slow; a reference taken earlier (or while the
    other was already at ``max_threads``) cannot tell them that. So:

    * a try of ``max_threads`` (every ``interval`` steps at one thread,
      with a per-process jitter, and only when ``busy()`` sees no other
      runnable process) lasts ``probe`` steps and is kept only if each step
      is faster by ``margin`` than the one-thread steps just before it;
      a lost try doubles ``interval`` (up to ``max_interval``);
    * at ``max_threads``, one step in ``check`` (doubling up to
      ``max_check`` while ``max_threads`` keeps winning) is taken at one
      thread: a fresh reference; if the ``max_threads`` steps just before it
      were not faster by ``margin``, one thread is kept;
    * a step ``slowdown`` times slower than the median of the last ones at
      ``max_threads`` means a competitor appeared: one thread at once;
    * more than one thread needs the CPUs' :class:`CoreTokens` (``tokens``;
      None: none needed), so two governed processes never both
      oversubscribe the cores, even when they try at the same moment.

    Each kind of step (the loop's ``'weights'``, ``'search'`` (weights +
    α/β) and ``'val'``) has its own count and timings: :meth:`begin` before
    a step sets its count, :meth:`step` after it records its time; a new
    kind starts at one thread and, if ``max_threads`` was in use, tries it
    after its first one-thread steps. The first
    ``warmup`` steps of a kind at a count are not compared (oneDNN builds its
    primitives then), unless ``warmup_slack`` times slower than the
    one-thread reference (a competitor, not a warm-up).
    """

    def __init__(self, max_threads=None, interval=20, max_interval=320,
                 check=4, max_check=64, probe=2, slowdown=2.0, margin=0.05,
                 warmup=1, warmup_slack=4.0, busy=others_running,
                 seed=None, tokens='auto'):
        self.max_threads = max_threads or default_num_threads()
        self.interval, self.max_interval = interval, max_interval
        self.check, self.max_check = check, max_check
        self.probe = probe
        self.slowdown, self.margin = slowdown, margin
        self.warmup, self.warmup_slack = warmup, warmup_slack
        self.busy = busy
        # None: the timing rules alone (tests of the decisions)
        self.tokens = CoreTokens() if tokens == 'auto' else tokens
        # per process (and kind): two copies do not try together
        self.seed = os.getpid() if seed is None else seed
        self.tracks = {}
        self.kind = 'train'
        torch.set_num_threads(1)
        self._track(self.kind)  # starts at one thread

    @property
    def threads(self):
        """The thread count of the current kind of step."""
        return self._track(self.kind).threads

    def begin(self, kind):
        """Before a step of ``kind``: use that kind's thread count."""
        self.kind = kind
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def _set(self, track, n):
        track.threads = n
        top, tracks = self.max_threads, self.tracks.values()
        want = any(t.threads == top or t.reference for t in tracks)
        if self.tokens is None:
            pass
        elif not want:
            self.tokens.release()
        elif not self.tokens.held and not self.tokens.take(top):
            for t in tracks:  # another governed process holds the cores
                if t.threads == top or t.reference:
                    t.threads, t.reference, t.probe = 1, False, 0
                    t.wait = self._gap(t, t.interval)
        torch.set_num_threads(track.threads)

    @staticmethod
    def _gap(track, steps):
        return max(1, int(round(steps * track.jitter.uniform(0.7, 1.3))))

    def _track(self, kind):
        if kind not in self.tracks:
            track = self.tracks[kind] = _Track(self.interval, self.check,
                                               f'{self.seed}:{kind}')
            if torch.get_num_threads() == self.max_threads:
                # one thread first all the same: a try without a one-thread
                # reference of its own kind could not see a competitor
                track.wait = 1
        return self.tracks[kind]

    def _to_one(self, track, lost):
        """Back to one thread; a lost try waits longer for the next."""
        self._set(track, 1)
        track.probe = 0
        if lost:
            track.interval = min(2 * track.interval, self.max_interval)
        track.wait = self._gap(track, track.interval)

    def step(self, seconds, kind=None):
        """Record the wall time of a step of ``kind`` (default: the one
        begun); maybe change that kind's thread count."""
        if kind is not None:
            self.begin(kind)
        track, top = self._track(self.kind), self.max_threads
        n = track.threads
        if top <= 1:
            return
        if track.wait is None:
            track.wait = track.check if n == top else self._gap(
                track, track.interval)
        track.seen[n] = track.seen.get(n, 0) + 1
        ones = track.times.get(1, [])
        ref = min(ones[-3:]) if ones else None  # the latest at one thread
        if track.seen[n] <= self.warmup:
            if n == top and ref is not None and \
                    seconds > self.warmup_slack * ref:
                self._to_one(track, lost=True)  # contended, not warming up
            return
        times = track.times.setdefault(n, [])
        times.append(seconds)
        del times[:-5]
        if n == 1:
            if track.reference:  # the fresh one-thread reference is in
                track.reference = False
                tops = track.times.get(top, [])[-2:]
                if tops and min(tops) < (1 - self.margin) * seconds:
                    track.check = min(2 * track.check, self.max_check)
                    track.wait = track.check
                    self._set(track, top)
                else:  # not faster than one thread right now
                    track.times[top] = []
                    track.wait = self._gap(track, track.interval)
                return
            track.wait -= 1
            if track.wait <= 0:
                if self.busy() == 0:
                    track.times[top] = []  # judge the cores as they are now
                    track.probe = self.probe
                    self._set(track, top)
                else:
                    track.wait = self._gap(track, track.interval)
            return
        if track.probe:  # a try: every step must beat one thread
            track.probe -= 1
            if ref is None or seconds >= (1 - self.margin) * ref:
                self._to_one(track, lost=True)
            elif not track.probe:
                track.wait = track.check
            return
        before = times[-4:-1]
        if before and seconds > self.slowdown * statistics.median(before):
            self._to_one(track, lost=False)  # a competitor appeared
            track.times[top] = []
            return
        track.wait -= 1
        if track.wait <= 0:  # one step at one thread: a fresh reference
            track.reference = True
            self._set(track, 1)
