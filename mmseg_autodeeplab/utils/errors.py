"""The one way this package stops on a user mistake: one ``error:`` line."""
import sys


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
