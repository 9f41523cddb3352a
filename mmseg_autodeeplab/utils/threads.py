"""CPU threads for a search: the cores shared evenly among the searches
running on this machine.

Why: torch's OpenMP threads spin while they wait for each other, so two
torch processes with as many threads as cores each spin on a core the other
needs (measured: docs/benchmarks.md). So every search registers itself (an
empty file named by its pid, in one folder per host) for as long as it runs
and uses ``cores // searches running`` of its affinity mask, re-read before
each iteration. When the mask holds every core of the machine, no more than
the cores other processes leave free (the 1-minute load average less its own
threads: a test run beside a search counts too); inside a smaller mask (a
cpuset, a container) the machine-wide load cannot say which cores are busy,
and is not used. No descriptor is held: forked DataLoader workers inherit
nothing. A distributed run's ranks are pinned to one thread by mmengine
(``OMP_NUM_THREADS``, as torchrun).
"""
import contextlib
import os
import os.path as osp
import tempfile

import torch

from .checks import is_integer


def default_num_threads():
    """Intra-op threads for one process: the cores of its affinity mask."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def user_num_threads():
    """The user's pinned count (``OMP_NUM_THREADS``), or None."""
    value = os.environ.get('OMP_NUM_THREADS', '').strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def load_average():
    """The 1-minute load average (runnable threads), or 0 if unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not POSIX
        return 0.0


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's live process
        pass
    return True


class SharedCores:
    """This process's share of ``cores`` among the searches registered in
    ``folder`` (default: one in the system's temporary directory), within
    the cores that other processes leave free (``load``: the load average).

    Registered while used as a context manager: the registration lasts
    exactly as long as the work it announces, whatever ends that work.
    """

    def __init__(self, folder=None, cores=None, load=None):
        self.folder = folder or osp.join(tempfile.gettempdir(),
                                         'mmseg_autodeeplab-searches')
        self.cores = cores or default_num_threads()
        self.path, self.threads, self.load = None, None, load or load_average

    def __enter__(self):
        path = osp.join(self.folder, str(os.getpid()))
        try:
            os.makedirs(self.folder, exist_ok=True)
            open(path, 'w').close()
            self.path = path
        except OSError:  # no shared folder: this search counts alone
            pass
        self.update()
        return self

    def __exit__(self, *exc):
        """Unregister: the others take the cores at their next iteration."""
        if self.path is not None:
            with contextlib.suppress(OSError):  # already gone
                os.remove(self.path)
            self.path = None

    def running(self):
        """Searches registered by live processes (at least this one); the
        files of dead ones are removed."""
        try:
            pids = [int(n) for n in os.listdir(self.folder) if n.isdigit()]
        except OSError:
            return 1
        dead = [p for p in pids if p != os.getpid() and not _alive(p)]
        for pid in dead:
            with contextlib.suppress(OSError):  # removed by another search
                os.remove(osp.join(self.folder, str(pid)))
        return max(1, len(pids) - len(dead))

    def update(self):
        """Set torch's threads to this search's share; True if it changed."""
        threads = self.cores // self.running()
        mask = default_num_threads()
        if mask >= (os.cpu_count() or mask):  # the load's cores are ours
            # the load counts this search's own threads while they run
            others = round(max(0.0, self.load() - (self.threads or 0)))
            threads = min(threads, mask - others)
        threads = max(1, threads)
        changed, self.threads = threads != self.threads, threads
        if changed:
            torch.set_num_threads(threads)
        return changed


def set_cpu_threads(cpu_threads='auto', deterministic=False):
    """Set torch's CPU threads; return a :class:`SharedCores` (to enter for
    the search's run) when they follow the searches running on this host
    (else None).

    An integer ``cpu_threads`` pins the count, as do ``OMP_NUM_THREADS`` and
    ``deterministic`` (a count that follows other processes would make a
    run depend on them); ``'auto'`` shares :func:`default_num_threads`.
    """
    if torch.cuda.is_available():
        return None
    if cpu_threads != 'auto':
        if not is_integer(cpu_threads, 1):
            raise ValueError('train_cfg.cpu_threads: expected a positive '
                             f"integer or 'auto', got {cpu_threads!r}")
        torch.set_num_threads(cpu_threads)
        return None
    threads = user_num_threads() or default_num_threads()
    if user_num_threads() or deterministic or threads <= 1:
        torch.set_num_threads(threads)
        return None
    return SharedCores(cores=threads)
