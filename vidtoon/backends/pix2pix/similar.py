"""--skip-similar THRESHOLD (on by default in the webcam): StreamDiffusion's stochastic
similarity filter. A frame that barely differs from the last frame the model ran on gets
that frame's cartoon again instead of a model run.

    backend = SimilarityFilter(inner, threshold=0.98)   # same call shape, same name as inner

Similarity is the cosine of the two frames as vectors in [-1, 1]. A frame is skipped with
probability max(0, 1 - (1 - similarity) / (1 - threshold)): never below the threshold,
more often the closer to identical, so a slow drift still gets model runs now and then.
After MAX_SKIPS skips in a row the next frame runs whatever its similarity. The draws come
from a generator seeded per clip, so a replay of the same frames skips the same ones.

A skip compares with the last frame that ran, not the last frame seen, so many small
changes add up to a run. The frames of one call that do run go to the inner backend
together, in one call.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from .. import Backend, check_batch

MAX_SKIPS = 10  # skips in a row at most (StreamDiffusion's max_skip_frame)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two uint8 frames taken as vectors in [-1, 1]."""
    x, y = (f.astype(np.float32).ravel() / 127.5 - 1.0 for f in (a, b))
    norms = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / norms if norms else float(np.array_equal(a, b))


class SimilarityFilter:
    """Wraps a backend: `inner` runs on the frames that are not skipped; see the module docstring."""

    def __init__(self, inner: Backend, threshold: float, seed: int = 0, max_skips: int = MAX_SKIPS) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.inner, self.threshold, self.seed, self.max_skips = inner, threshold, seed, max_skips
        self.name = inner.name
        self.summary = f"{inner.summary}; frames that barely changed skip the model (similarity {threshold:g})"
        self.batch_size = inner.batch_size
        self.reset()

    def reset(self) -> None:
        self.inner.reset()
        self._random = random.Random(self.seed)
        self._ran: np.ndarray | None = None  # the last frame the model ran on
        self._out: np.ndarray | None = None  # and its cartoon
        self._skips = 0
        self.skipped = 0  # frames skipped in this clip

    def skip_chance(self, frame: np.ndarray) -> float:
        if self._ran is None or self._ran.shape != frame.shape:
            return 0.0
        return max(0.0, 1.0 - (1.0 - similarity(frame, self._ran)) / (1.0 - self.threshold))

    def _skip(self, frame: np.ndarray) -> bool:
        """Whether `frame` skips the model (a draw from the clip's generator); counts it."""
        if self._random.random() < self.skip_chance(frame) and self._skips < self.max_skips:
            self._skips += 1
            self.skipped += 1
            return True
        self._ran, self._skips = frame, 0
        return False

    def stream(self) -> SkippingStream | None:
        """The inner backend's live stream batch with skips, or None where it has none."""
        inner = getattr(self.inner, "stream", None)
        stream = inner() if inner is not None else None
        return SkippingStream(self, stream) if stream is not None else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """batch: uint8 (N, H, W, 3) RGB; returns as many cartoon frames."""
        check_batch(batch, self.name)
        # 1. Which frames run: decided on the inputs alone, so those that run go in one call.
        runs = [i for i, frame in enumerate(batch) if not self._skip(frame)]
        done = dict(zip(runs, self.inner(batch[runs]) if runs else [], strict=True))
        # 2. In order: each skipped frame repeats the cartoon before it.
        out = np.empty_like(batch)
        for i in range(len(batch)):
            out[i] = done[i] if i in done else self._out
            self._out = out[i]
        self._ran = None if self._ran is None else self._ran.copy()  # not views into the caller's arrays
        self._out = self._out.copy()
        return out


class SkippingStream:
    """A stream batch (stream.py) behind the filter: a skipped frame does not enter the
    stream, it only advances the frames in flight, so the last cartoon stays on show."""

    def __init__(self, similar: SimilarityFilter, stream: Any) -> None:
        self.similar, self.stream = similar, stream

    @property
    def depth(self) -> int:
        return self.stream.depth

    @property
    def busy(self) -> bool:
        return self.stream.busy

    def reset(self) -> None:
        self.similar.reset()  # the draws and the last frame run; the inner backend too
        self.stream.reset()

    def push(self, frame: np.ndarray | None, tag: Any = None) -> list[tuple[Any, np.ndarray]]:
        if frame is not None and self.similar._skip(frame):
            frame = None
        elif frame is not None:
            self.similar._ran = frame.copy()  # not a view into the caller's array
        return self.stream.push(frame, tag)

    def drain(self) -> list[tuple[Any, np.ndarray]]:
        return self.stream.drain()
