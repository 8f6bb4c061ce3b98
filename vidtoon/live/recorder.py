"""Recording what the live loop shows: a video file at capture times (Recorder),
and free file names for recordings and snapshots (free_path)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..config import EncodeSettings


@dataclass(frozen=True)
class Recording:
    path: Path
    frames: int
    seconds: float


class Recorder:
    """Writes shown frames into a video file at their capture times (so the
    file plays in real time even when frames were dropped). Video only."""

    TIME_BASE = Fraction(1, 1000)

    def __init__(self, path: Path, width: int, height: int, fps: float, encode: EncodeSettings) -> None:
        from ..io.reader import ColorInfo, VideoInfo
        from ..io.writer import VideoWriter

        self.path = path
        self.fps = fps
        info = VideoInfo(
            path=path, width=width, height=height, rotation=0,
            fps=Fraction(fps).limit_denominator(1001), time_base=self.TIME_BASE,
            frame_count=None, duration=None, codec="rawvideo", audio_streams=0,
            sample_aspect_ratio=None, color=ColorInfo(space=1, range=1, primaries=1, trc=1),  # BT.709, limited
        )
        self._writer = VideoWriter(path, info, encode)
        self.frames = 0
        self._failed = False  # the writer failed and has deleted its file
        self._first: float | None = None
        self._last = 0.0

    def write(self, rgb: np.ndarray, captured: float) -> None:
        from ..io.reader import Frame

        if self._first is None:
            self._first = captured
        pts = round((captured - self._first) / self.TIME_BASE)
        try:
            self._writer.write(Frame(self.frames, pts, self.TIME_BASE, rgb))
        except BaseException:
            self._failed = True
            raise
        self.frames += 1
        self._last = captured

    @property
    def seconds(self) -> float:
        """Length of the recording: first to last frame, plus one frame interval."""
        return self._last - self._first + 1 / self.fps if self._first is not None else 0.0

    def finish(self) -> Recording | None:
        """Close the file (None, and no file, if no frame was recorded)."""
        if self._failed:
            return None
        if self.frames == 0:
            self._writer.abort()
            return None
        self._writer.close()
        return Recording(self.path, self.frames, self.seconds)

    def abort(self) -> None:
        self._writer.abort()


def free_path(folder: Path, suffix: str) -> Path:
    """folder/vidtoon-DATE-TIME.suffix, with -2, -3, ... if that exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        path = Path(folder) / f"vidtoon-{stamp}{'' if n == 1 else f'-{n}'}{suffix}"
        if not path.exists():
            return path
    raise AssertionError("unreachable")
