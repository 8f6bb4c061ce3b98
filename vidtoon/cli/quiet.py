"""Keep the one-line contract: what the libraries print goes to a log kept in
memory, not to the terminal, and a broken stderr never stops a run.

    quiet_libraries()   SVT-AV1's banner: off; Python warnings (torch, diffusers),
                        transformers' and diffusers' loggers: kept in LOG
    tolerant(stream)    a stream whose write and flush failures are ignored
                        (stderr on a full disk, a closed pipe)

--traceback leaves all of it as the libraries do, raw.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections import deque
from typing import TextIO

LOG: deque[str] = deque(maxlen=200)  # the libraries' last messages, for a debugger

# Read by the libraries when they start: SVT-AV1 at its first encoder; the
# Hugging Face ones at import (which vidtoon does lazily, after this).
_ENVIRONMENT = {
    "SVT_LOG": "0",  # fatal only; its banner and warnings are 11+ lines per encoder
    "TRANSFORMERS_VERBOSITY": "critical",
    "DIFFUSERS_VERBOSITY": "critical",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        LOG.append(f"{record.name}: {record.getMessage()}".rstrip())


_KEEP = _Keep()


def quiet_libraries() -> None:
    """Keep the libraries' messages off stderr (see the module docstring)."""
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    keep = _KEEP
    for name in ("py.warnings", "transformers", "diffusers", "torch", "huggingface_hub"):
        logger = logging.getLogger(name)
        if keep not in logger.handlers:  # main() may run many times in one process (tests)
            logger.addHandler(keep)
        logger.propagate = False
    logging.captureWarnings(True)
    warnings.simplefilter("default")  # each warning once per place, into LOG
    # FFmpeg's own log is off already (PyAV installs no printer). x264 prints its
    # "[error]" lines itself, to fd 2, only for a preset, tune or profile it does not
    # know: formats.py refuses those first.


class _Tolerant:
    """Wraps a text stream; writes that fail (ENOSPC, EPIPE, closed) are dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def tolerant(stream: TextIO) -> TextIO:
    return _Tolerant(stream)  # type: ignore[return-value]


def write_stdout(text: str) -> None:
    """print(text), a full disk made an OutputError (a closed pipe is main's to handle)."""
    from ..errors import OutputError, describe

    try:
        print(text)
    except BrokenPipeError:
        raise
    except OSError as e:
        drop_stdout()
        raise OutputError(f"stdout: cannot be written ({describe(e)})") from None


def drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's own flush at exit does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
