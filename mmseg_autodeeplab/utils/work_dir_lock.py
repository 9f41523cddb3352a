"""One owner per output folder: an exclusive OS lock held for a tool's
lifetime by every tool that writes into a search work_dir (or a cost table).

Why ``flock`` on a file rather than a pid file: the kernel drops the lock
when its process dies (``kill -9`` included), so a killed run never leaves a
stale lock that someone must delete by hand. The lock file itself stays (it
is never unlinked: removing it while another process opens it would let two
processes each lock a different file); its text names the holder (pid, host,
start time, command) for the refusal message.

NFS: ``flock`` on Linux NFS clients is emulated with POSIX byte-range locks
held by the server's lock manager, so it works across hosts when the mount
supports locking; on a mount with ``nolock`` (or a lock manager that is not
running) each host only sees its own locks. Reading tools take no lock:
every file a search writes is written atomically (temp file + rename).
"""
import datetime
import errno
import json
import os
import shlex
import socket
import sys
import time

try:
    import fcntl
except ImportError:  # not POSIX: no lock, with a warning
    fcntl = None

#: name of the lock file inside a locked folder
LOCK_NAME = '.search.lock'


class WorkDirBusy(ValueError):
    """Another live process holds the lock (one-line message)."""


def _holder_text(path, tries=20):
    """The holder's record, or '' (it may be between lock and write)."""
    for _ in range(tries):
        try:
            with open(path, encoding='utf-8') as f:
                text = f.read().strip()
        except OSError:
            text = ''
        if text:
            return text
        time.sleep(0.05)
    return ''


def describe_holder(path):
    """``pid P on host H, started T: COMMAND`` from a lock file."""
    try:
        info = json.loads(_holder_text(path))
        return (f'pid {info["pid"]} on host {info["host"]}, started '
                f'{info["started"]}: {info["command"]}')
    except (ValueError, KeyError, TypeError):
        return 'a process that has not written its name yet'


class OutputLock:
    """An exclusive ``flock`` on ``lock_file`` (created with its folder).

    Args:
        lock_file (str): the lock file (e.g. ``WORK_DIR/.search.lock``).
        what (str): what is locked, for the message (``work_dir 'X'``).
        advice (str): what a refused user can do.
        command (list[str], optional): the holder's command line (default
            ``sys.argv``).
    """

    def __init__(self, lock_file, what, advice, command=None):
        self.lock_file = os.fspath(lock_file)
        self.what, self.advice = what, advice
        self.command = list(sys.argv if command is None else command)
        self._fd = None
        self.held = False

    def acquire(self, wait=False, on_wait=None):
        """Take the lock; without ``wait`` a held lock raises
        :class:`WorkDirBusy` at once, with it ``on_wait(holder)`` is called
        and the lock awaited."""
        self.held = True  # (also when locks are unavailable: warned once)
        if fcntl is None:
            print(f'warning: {self.what}: no file locks on this platform; '
                  'two runs on it are not detected', file=sys.stderr)
            return self
        os.makedirs(os.path.dirname(os.path.abspath(self.lock_file)),
                    exist_ok=True)
        # O_CREAT without O_TRUNC: a refused run must not touch the file
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = describe_holder(self.lock_file)
                if not wait:
                    raise WorkDirBusy(
                        f'{self.what} is in use by another run ({holder}); '
                        f'{self.advice}') from None
                if on_wait is not None:
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP,
                                   errno.ENOSYS):
                    raise
                # e.g. an NFS mount with nolock: run, but say so
                print(f'warning: {self.what}: the file system refuses locks '
                      f'({e.strerror}); two runs on it are not detected',
                      file=sys.stderr)
                os.close(fd)
                return self
            started = datetime.datetime.now(datetime.timezone.utc)
            record = json.dumps(dict(
                pid=os.getpid(), host=socket.gethostname(),
                started=started.strftime('%Y-%m-%d %H:%M:%S UTC'),
                command=' '.join(shlex.quote(a) for a in self.command)))
            os.ftruncate(fd, 0)
            os.pwrite(fd, (record + '\n').encode('utf-8'), 0)
        except BaseException:
            os.close(fd)
            self.held = False
            raise
        self._fd = fd
        return self

    def release(self):
        """Drop the lock (closing the descriptor releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.held = False

    def __del__(self):  # an exception skipped release(): not held forever
        self.release()

    def __enter__(self):
        return self if self.held else self.acquire()

    def __exit__(self, *exc):
        self.release()


def work_dir_lock(work_dir, flag='--work-dir', command=None):
    """The lock of a search work_dir (or another tool's output folder);
    ``flag`` is the option that chooses another one."""
    work_dir = os.fspath(work_dir)
    return OutputLock(
        os.path.join(work_dir, LOCK_NAME), f'{flag} {work_dir!r}',
        f'wait for it to finish, or choose another {flag}', command)


def table_lock(path, command=None):
    """The lock of a cost table file (``PATH.lock`` beside it)."""
    return OutputLock(
        os.fspath(path) + '.lock', f'cost table {os.fspath(path)!r}',
        'wait for it to finish, or choose another output path', command)
