"""The ``boostnet`` console script: imports the command line, then runs it.

Kept free of heavy imports (``boostnet`` itself loads lazily), so that a Ctrl-C or SIGTERM while
NumPy, scikit-learn, numba and typer load ends with one line and exit 130 (143), not a traceback.
"""

from __future__ import annotations

import os
import signal
import sys


class _Terminated(KeyboardInterrupt):
    pass


def _terminated(signum, frame):
    raise _Terminated


def main():
    """Console-script entry point."""
    previous = None
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        from .app.cli import main as run  # noqa: PLC0415
    except KeyboardInterrupt as exc:
        sys.stderr.write("interrupted while starting; nothing done\n")
        sys.stderr.flush()
        # half-imported modules may fail at interpreter shutdown: nothing was done, leave now
        os._exit(143 if isinstance(exc, _Terminated) else 130)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    run()


if __name__ == "__main__":
    main()
