"""The one way this package stops on a user mistake: one ``error:`` line."""
import os
import os.path as osp
import sys

_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))


def error_line(message):
    """``message`` folded onto one line (tracebacks and newlines removed)."""
    return ' '.join(str(message).split())


def exit_with_error(message, code=2):
    """Print ``error: message`` (one line) on stderr and exit with ``code``.

    ``SystemExit`` rather than an exception: the callers may run inside tools
    we do not own (mmseg's train.py/test.py), where an exception would become
    a multi-screen traceback around the one line that matters.
    """
    print(f'error: {error_line(message)}', file=sys.stderr, flush=True)
    raise SystemExit(code)


def raised_by_package(exc):
    """Whether ``exc`` was raised by this package's own code. By the
    package's convention a ``ValueError`` it raises is a checked user
    mistake with a one-line message; one raised inside torch or mmengine
    is not ours to shorten (its traceback is the report)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return osp.abspath(tb.tb_frame.f_code.co_filename).startswith(
        _PACKAGE + os.sep)
