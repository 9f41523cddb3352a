"""Atomic file writes: a reader never sees a half-written file."""
import json
import os
import tempfile


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically (temp file + rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp', dir=folder)
    try:
        # mkstemp creates 0600 files; give the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` via a temp file + rename.

    The rename is atomic on POSIX, so killing the process at any moment
    leaves either the old file or the new one, never a truncated one.
    """
    atomic_write_bytes(path, text.encode('utf-8'))


def atomic_write_json(path, obj):
    """Atomically write ``obj`` as indented JSON (trailing newline)."""
    atomic_write_text(path, json.dumps(obj, indent=2) + '\n')
