"""Signal handling shared by the library's writers and the command line.

SIGTERM is treated like Ctrl-C (SIGINT): it raises :class:`Terminated`, a ``KeyboardInterrupt``,
so the same clean-up runs and the command line exits with 143 instead of 130. A signal whose
disposition was inherited as ignored (``SIG_IGN``, e.g. ``nohup``) stays ignored. While finished
work is written, :func:`deferred_signals` holds both signals back so the write completes.
"""

from __future__ import annotations

import contextlib
import signal
import threading

#: The signals boostnet treats as "stop": Ctrl-C and a polite kill.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler: a ``KeyboardInterrupt`` that remembers it was SIGTERM."""

    signum = signal.SIGTERM


def exit_code(signum: int | None) -> int:
    """The shell's exit code for a process stopped by ``signum``: 128 + the signal number."""
    return 128 + int(signum if signum is not None else signal.SIGINT)


def signum_of(exc: BaseException) -> int:
    """The signal a ``KeyboardInterrupt`` stands for (SIGTERM for :class:`Terminated`)."""
    return signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def ignored(signum: int) -> bool:
    """Whether ``signum`` is ignored (an inherited ``SIG_IGN`` is respected, never overridden)."""
    return signal.getsignal(signum) is signal.SIG_IGN


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block SIGTERM raises :class:`Terminated` (unless it is ignored)."""
    if not _main_thread() or ignored(signal.SIGTERM):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred_signals():
    """Hold SIGINT and SIGTERM back while the block runs (the write of a finished result).

    Yields the list of the signal numbers received meanwhile; the caller decides what they mean
    once the block is done (the command line exits with 130 or 143, the result written). Ignored
    signals stay ignored; outside the main thread nothing changes.
    """
    received: list[int] = []
    previous = {}
    if _main_thread():
        for s in STOP_SIGNALS:
            if not ignored(s):
                previous[s] = signal.signal(s, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
