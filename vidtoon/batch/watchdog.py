"""The clip watchdog: no clip may hold its worker, and so the batch, forever.

An encoder that never returns (libsvtav1 hung on tiny frames) or a read from a
dead network share would otherwise stall a batch for good. Each clip in flight
has a time limit; past it the scheduler stops its worker (SIGTERM, then SIGKILL),
counts the clip as failed and goes on with a fresh worker.

The default limit is generous, so that normal work never trips it: 10 minutes,
plus 10 s a frame for the classic backend (about 40 ms a 720p frame on 2 busy
cores, so 250x that) or 5 minutes a frame for a backend that wants a GPU (it may
be running on a CPU, at tens of seconds a frame). `--clip-timeout SECONDS` sets
one limit for every clip; 0 means none.
"""

from __future__ import annotations

import time

BASE_SECONDS = 600.0  # opening, probing, the encoder's flush: everything but the frames
SECONDS_PER_FRAME = {False: 10.0, True: 300.0}  # by BackendSpec.gpu


def clip_limit(frames: int | None, gpu: bool, asked: float | None) -> float | None:
    """Seconds a clip of `frames` frames may take (None: no limit). asked: --clip-timeout."""
    if asked is not None:
        return asked or None
    return BASE_SECONDS + SECONDS_PER_FRAME[gpu] * (frames or 0)


class Watchdog:
    """The clips in flight, when each began, and which is over its limit."""

    def __init__(self, gpu: bool, asked: float | None) -> None:
        self._gpu, self._asked = gpu, asked
        self._clips: dict[str, tuple[str, float, int | None]] = {}  # rel -> (worker, began, frames)

    def began(self, rel: str, worker: str) -> None:
        self._clips[rel] = (worker, time.monotonic(), None)

    def counted(self, rel: str, frames: int | None) -> None:
        """The worker has opened the clip and knows its frames (the limit grows with them)."""
        if rel in self._clips:
            worker, began, _ = self._clips[rel]
            self._clips[rel] = (worker, began, frames)

    def ended(self, rel: str) -> None:
        self._clips.pop(rel, None)

    def overdue(self) -> list[tuple[str, str, float]]:
        """(clip, its worker, its limit) for each clip past its limit; they are forgotten."""
        now = time.monotonic()
        late = []
        for rel, (worker, began, frames) in list(self._clips.items()):
            limit = clip_limit(frames, self._gpu, self._asked)
            if limit is not None and now - began > limit:
                late.append((rel, worker, limit))
                del self._clips[rel]
        return late
