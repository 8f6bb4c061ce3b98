"""Decode a video file into a generator of upright RGB frames (PyAV).

    with open_video("in.mp4") as video:
        print(video.info)
        for frame in video.frames():   # Frame(index, pts, time_base, rgb)
            ...

Frames keep their source timestamps, so variable frame rate survives a
round trip through the writer. Rotation metadata (phone videos) is applied to
the pixels here, so everything downstream sees the picture upright.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import InputError, describe

# cv2.rotate codes would do too; np.rot90 keeps this module free of OpenCV.
_QUARTER_TURNS = {0: 0, 90: 1, 180: 2, 270: 3}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: pixels plus where it sits in time."""

    index: int  # 0-based position in decode (display) order
    pts: int  # presentation timestamp in time_base units
    time_base: Fraction
    rgb: np.ndarray  # uint8 (H, W, 3), upright

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)

    def with_rgb(self, rgb: np.ndarray) -> Frame:
        return Frame(self.index, self.pts, self.time_base, rgb)


@dataclass(frozen=True)
class ColorInfo:
    """The source's colour tags; the writer reuses them so colours round-trip."""

    space: int = 2  # AVCOL_SPC_*; 2 = unspecified
    range: int = 0  # AVCOL_RANGE_*; 0 = unspecified, 1 = limited, 2 = full
    primaries: int = 2
    trc: int = 2


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of vidtoon needs to know about a source video."""

    path: Path
    width: int  # upright (after rotation)
    height: int
    rotation: int  # 0, 90, 180 or 270: degrees counter-clockwise applied to the pixels
    fps: Fraction | None  # average rate; None when the container does not say
    time_base: Fraction
    frame_count: int | None  # exact when the container says, else estimated
    duration: float | None  # seconds
    codec: str
    audio_streams: int
    sample_aspect_ratio: Fraction | None
    color: ColorInfo

    def __str__(self) -> str:
        fps = f"{float(self.fps):.3g} fps" if self.fps else "unknown fps"
        frames = self.frame_count if self.frame_count is not None else "?"
        audio = f"{self.audio_streams} audio" if self.audio_streams else "no audio"
        return f"{self.width}x{self.height} {self.codec}, {fps}, {frames} frames, {audio}"


def open_video(path: str | Path) -> VideoReader:
    """Open a video file for decoding; raise InputError if it is not one."""
    return VideoReader(Path(path))


class VideoReader:
    """A decoding session on one file. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        _check_readable(path)
        try:
            self._container = av.open(str(path), metadata_errors="replace")
        except (av.FFmpegError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: not a readable video ({describe(e)})") from None
        try:
            if not self._container.streams.video:
                kinds = ", ".join(sorted({s.type for s in self._container.streams})) or "nothing"
                raise InputError(f"{path}: no video stream (it holds {kinds})")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            self.info = self._probe(path)
        except BaseException:
            self._container.close()
            raise

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self) -> Iterator[Frame]:
        """Yield every frame in display order as upright RGB (once per reader)."""
        if self._first is None:
            raise RuntimeError("frames() can be iterated only once per reader")
        first, self._first = self._first, None
        turns = _QUARTER_TURNS[self.info.rotation]
        size = (first.width, first.height)
        # A frame without a timestamp gets one a frame interval after the last.
        step = _frame_interval(self.info.fps, self.info.time_base)
        last_pts: int | None = None
        index = 0
        try:
            for frame in itertools.chain([first], self._decoded):
                pts = frame.pts
                if pts is None:
                    pts = 0 if last_pts is None else last_pts + step
                # The frame's own matrix and range: swscale assumes limited BT.601 otherwise.
                # A mid-stream size change is scaled back to the first frame's size.
                rgb = frame.to_ndarray(
                    format="rgb24",
                    width=size[0],
                    height=size[1],
                    src_colorspace=frame.colorspace,
                    src_color_range=frame.color_range,
                )
                if turns:
                    rgb = np.ascontiguousarray(np.rot90(rgb, turns))
                yield Frame(index, pts, self.info.time_base, rgb)
                last_pts = pts
                index += 1
        except av.FFmpegError as e:
            raise InputError(
                f"{self.info.path}: decoding failed at frame {index} ({describe(e)})"
            ) from None

    def _probe(self, path: Path) -> VideoInfo:
        stream = self._stream
        time_base = stream.time_base or (1 / stream.average_rate if stream.average_rate else None)
        if time_base is None:
            raise InputError(f"{path}: the video stream has no time base")
        # The first decoded frame is the truth for size, rotation and colour tags.
        first = self._first = self._decode_first(path)
        rotation = int(round(first.rotation)) % 360
        if rotation not in _QUARTER_TURNS:
            raise InputError(f"{path}: unsupported rotation of {rotation} degrees")
        width, height = first.width, first.height
        sar = stream.codec_context.sample_aspect_ratio or None
        if rotation in (90, 270):
            width, height = height, width
            sar = 1 / sar if sar else None
        fps = stream.average_rate or stream.guessed_rate or None
        duration = _duration(stream, self._container)
        count = stream.frames or None
        if count is None and duration and fps:
            count = round(duration * fps)
        return VideoInfo(
            path=path,
            width=width,
            height=height,
            rotation=rotation,
            fps=Fraction(fps) if fps else None,
            time_base=Fraction(time_base),
            frame_count=count,
            duration=duration,
            codec=stream.codec_context.name,
            audio_streams=len(self._container.streams.audio),
            sample_aspect_ratio=Fraction(sar) if sar and sar != 1 else None,
            color=ColorInfo(
                int(first.colorspace), int(first.color_range), int(first.color_primaries), int(first.color_trc)
            ),
        )

    def _decode_first(self, path: Path) -> av.VideoFrame:
        """Rotation lives in per-frame side data, so decode the first frame now
        and hand it to frames() later (no seeking back: not every format can)."""
        self._decoded = self._container.decode(self._stream)
        try:
            first = next(self._decoded, None)
        except av.FFmpegError as e:
            raise InputError(f"{path}: the first frame cannot be decoded ({describe(e)})") from None
        if first is None:
            raise InputError(f"{path}: the video stream has no frames")
        return first


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror})") from None
    if not head:
        raise InputError(f"{path}: the file is empty")


def _duration(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _frame_interval(fps: Fraction | None, time_base: Fraction) -> int:
    if not fps:
        return 1
    return max(1, round(1 / (fps * time_base)))
