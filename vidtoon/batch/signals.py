"""Signals during a batch: the first stop request counts, the rest are ignored.

A second Ctrl-C (or a SIGTERM/SIGHUP after it) that lands while the batch stops
its workers would otherwise raise again in the middle of the clean-up and leave
workers, temporary files or no report behind. With `first_signal_only()` the
first SIGINT, SIGTERM or SIGHUP acts as it would have (KeyboardInterrupt, or the
CLI's SystemExit) and every later one does nothing, so the stop runs to its end.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def first_signal_only(restore: bool = True) -> Iterator[None]:
    """Within: only the first stop signal is acted on (see the module doc). Signals
    whose handler is SIG_DFL or SIG_IGN are left as they are. restore=False keeps the
    wrapper after the block: for a process that exits after it (the CLI), so that a
    late signal cannot interrupt its last words or its exit handlers either."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    stopping: list[int] = []

    def once(signum: int, frame: object) -> None:
        # A signal nested into this handler before the append raises from inside it, so
        # this one never raises after it: exactly one stop, whatever arrives.
        if stopping:
            return
        stopping.append(signum)
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)

    wrapped = [s for s, handler in previous.items() if callable(handler)]
    for s in wrapped:
        signal.signal(s, once)
    try:
        yield
    finally:
        if restore:
            for s in wrapped:
                signal.signal(s, previous[s])


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back in this thread (none is lost: they arrive
    at the end). A process started meanwhile is born with them blocked: a worker unblocks the ones
    it handles (local.py), a helper such as multiprocessing's resource tracker keeps
    them blocked, so that a Ctrl-C or hang-up sent to the whole group cannot kill it
    before the batch has stopped."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
