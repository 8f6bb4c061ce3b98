"""What one batch worker does with a clip, and the events it reports.

A worker loads its backend once, then cartoonizes whole clips one at a time
(process_clip) and reports what happens as events. local.py runs workers as
spawned processes on this machine; cluster.py runs the same process_clip in
Ray actors and emits the same events, so run.py schedules both alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Job, Recipe
from ..errors import VidtoonError, describe

PROGRESS_INTERVAL = 0.25  # seconds between progress events from one worker

BackendFactory = Callable[[Recipe], Any]  # recipe -> an object of the backend call shape


@dataclass(frozen=True)
class Clip:
    """One clip to cartoonize: where it is and where its cartoon goes."""

    rel: str  # the clip's path relative to IN_DIR, '/'-separated: its name in tables and reports
    source: Path
    output: Path
    output_rel: str


@dataclass
class ClipResult:
    """What became of one clip: `status` is what this run did with it; a skipped clip carries
    the result of the run that made its output (frames, seconds, warnings, notes, worker, made)."""

    rel: str
    output_rel: str
    status: str  # done | skipped | failed | interrupted
    frames: int | None = None
    seconds: float | None = None
    backend: str | None = None
    error: str | None = None  # one line, for failed clips
    attempts: int = 0  # how many times a worker was given the clip in this run
    worker: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what a damaged input lost (salvaged frames, ...)
    input: dict[str, Any] | None = None  # size, mtime_ns, sha256 of the input as processed
    output_size: int | None = None
    made: str | None = None  # when its output was made (UTC, ISO 8601): by this run, or the earlier one a skip keeps

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.frames and self.seconds else None


# Events, from any kind of pool to the scheduler.
@dataclass(frozen=True)
class Ready:
    worker: str  # a worker has loaded its backend and waits for clips


@dataclass(frozen=True)
class LoadFailed:
    error: BaseException  # a worker could not load its backend: the batch cannot run


@dataclass(frozen=True)
class Started:
    rel: str
    total: int | None  # frames, as the container estimates


@dataclass(frozen=True)
class Advanced:
    rel: str
    done: int  # frames done so far


@dataclass(frozen=True)
class Finished:
    result: ClipResult


@dataclass(frozen=True)
class Lost:
    rel: str
    why: str  # the worker died while it had this clip


def default_factory(recipe: Recipe) -> Any:
    from .. import backends

    return backends.load(recipe)[0]


class ClipProgress:
    """The pipeline's Progress protocol, turned into throttled events."""

    def __init__(self, rel: str, send: Callable[[object], None]) -> None:
        self.rel, self._send = rel, send
        self.notes: list[str] = []
        self._done = 0
        self._last = 0.0

    def note(self, message: str) -> None:
        if not message.startswith("backend:"):  # the same for every clip; the batch says it once
            self.notes.append(message)

    def start(self, description: str, total: int | None) -> None:
        self._send(Started(self.rel, total))
        self._last = time.monotonic()

    def advance(self, frames: int) -> None:
        self._done += frames
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._send(Advanced(self.rel, self._done))

    def stop(self) -> None:
        self._send(Advanced(self.rel, self._done))


def process_clip(clip: Clip, recipe: Recipe, backend: Any, send: Callable[[object], None], worker: str) -> ClipResult:
    """Cartoonize one clip with an already loaded backend. Never raises for a bad
    clip: the error becomes one line in the result. Ctrl-C and SIGTERM still unwind."""
    from ..pipeline import run
    from .manifest import file_digest, file_stamp

    progress = ClipProgress(clip.rel, send)
    result = ClipResult(clip.rel, clip.output_rel, "failed", worker=worker, notes=progress.notes)
    try:
        # Stamp and hash before reading for the cartoon: if the input changes meanwhile,
        # the manifest holds the older stamp and the next run redoes the clip.
        stamp = file_stamp(clip.source)
        result.input = {**stamp, "sha256": file_digest(clip.source)}
        clip.output.parent.mkdir(parents=True, exist_ok=True)
        done = run(Job(clip.source, clip.output, overwrite=True), recipe, progress, backend)
        result.output_size = clip.output.stat().st_size
    except VidtoonError as e:
        result.error = _one_line(_without_prefix(str(e), clip.source))
    except OSError as e:
        result.error = _one_line(f"{e.filename}: {describe(e)}" if e.filename else describe(e))
    except Exception as e:  # noqa: BLE001 - a bug on one clip must not stop the batch
        result.error = _one_line(f"unexpected error: {type(e).__name__}: {e}")
    else:
        result.status, result.frames, result.seconds, result.backend = "done", done.frames, done.seconds, done.backend
        result.warnings = [_one_line(_without_prefix(w, clip.source)) for w in done.warnings]
    return result


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _without_prefix(message: str, source: Path) -> str:
    """Errors name the file they are about; the batch names the clip already."""
    prefix = f"{source}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def picklable_error(error: BaseException) -> BaseException:
    """The error itself when it survives pickling (vidtoon's do), else a plain stand-in."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(error).__name__}: {error}")
