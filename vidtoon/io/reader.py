"""Decode a video file into a generator of upright RGB frames (PyAV).

    with open_video("in.mp4") as video:
        print(video.info)
        for frame in video.frames():   # Frame(index, pts, time_base, rgb)
            ...

Frames keep their source timestamps, so variable frame rate survives a
round trip through the writer. Rotation metadata (phone videos) is applied to
the pixels here, so everything downstream sees the picture upright.

Damaged files give what can be decoded (see docs/errors.md, "What vidtoon does with
bad input"): a packet the decoder refuses is skipped, a file that is cut
short or whose container breaks mid-way ends there, and `reader.warnings`
says what was lost. Anything that is not a decodable video raises InputError.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError, describe
from .inputs import MAX_PIXELS as MAX_PIXELS  # (re-exported: the size limit is the reader's)
from .inputs import MAX_SIZE_TEXT as MAX_SIZE_TEXT
from .inputs import check_readable, check_size, file_size, index_end, mp4_damage, y4m_damage

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
    pix_fmt: str = "yuv420p"  # the decoded pixel format, e.g. yuv420p10le
    bit_depth: int = 8  # bits per sample: the writer keeps more than 8 where the encoder can
    subtitle_streams: int = 0

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
        check_readable(path)
        try:
            self._container = av.open(str(path), metadata_errors="replace")
        except (av.FFmpegError, UnicodeDecodeError) as e:
            damage = mp4_damage(path) or y4m_damage(path)
            reason = f": {damage}" if damage else f" ({describe(e)})"
            raise InputError(f"{path}: not a readable video{reason}") from None
        self._skipped = 0  # packets the decoder refused
        self._broken: str | None = None  # why demuxing stopped early, if it did
        self._decoded = 0
        self._end: float | None = None  # seconds: end of the last decoded frame
        try:
            # A cover picture (an mp3's or m4a's album art) is not a video.
            cover = av.stream.Disposition.attached_pic
            videos = [v for v in self._container.streams.video if not v.disposition & cover]
            if not videos:
                kinds = {s.type if not s.disposition & cover else "a cover picture" for s in self._container.streams}
                raise InputError(f"{path}: no video stream (it holds {', '.join(sorted(kinds)) or 'nothing'})")
            self._stream = videos[0]
            if self._stream.codec_context is None:
                raise InputError(f"{path}: the video is in a codec FFmpeg does not know (codec tag damaged or unsupported)")
            fmt = self._container.format.name
            if fmt == "image2" or fmt.endswith("_pipe"):  # FFmpeg's still-image demuxers
                kind = fmt.removesuffix("_pipe") if fmt != "image2" else self._stream.codec_context.name
                raise InputError(f"{path}: is a still image ({kind}), not a video; vidtoon cartoonizes video files")
            ctx = self._stream.codec_context
            check_size(path, ctx.width, ctx.height)  # the size the headers claim, before decoding
            self._stream.thread_type = "AUTO"
            self.info = self._probe(path)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and free the decoder, and its threads, now: not when the
        last reference goes (an exception's traceback can hold this reader long)."""
        if getattr(self, "_stream", None) is not None and hasattr(self, "info"):
            self._warnings = self._find_warnings()  # they need the open container
        frames = getattr(self, "_decoded_frames", None)
        if frames is not None:
            frames.close()
        self._decoded_frames = self._first = self._stream = None
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
            for frame in itertools.chain([first], self._decoded_frames):
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
                self._decoded = index
                self._end = float((pts + step) * self.info.time_base)
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
        check_size(path, width, height)
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
            pix_fmt=first.format.name,
            bit_depth=max((c.bits for c in first.format.components), default=8),
            subtitle_streams=len(self._container.streams.subtitles),
        )

    def _decode_first(self, path: Path) -> av.VideoFrame:
        """Rotation lives in per-frame side data, so decode the first frame now
        and hand it to frames() later (no seeking back: not every format can)."""
        self._decoded_frames = self._decode()
        try:
            first = next(self._decoded_frames, None)
        except av.FFmpegError as e:
            raise InputError(f"{path}: the first frame cannot be decoded ({describe(e)})") from None
        if first is None:
            if self._skipped or self._broken:
                why = self._broken or f"all {self._skipped} video packets are damaged"
                raise InputError(f"{path}: no frame can be decoded ({why})")
            raise InputError(f"{path}: the video stream has no frames")
        return first

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Decode packet by packet, so that a damaged packet costs only its own
        frames: packets the decoder refuses are skipped and counted. A demuxer
        error (the container itself is damaged) ends the stream there; the
        decoder is flushed so that the frames it holds are kept."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets, None)
            except av.FFmpegError as e:
                self._broken = f"the container is damaged: {describe(e)}"
                packet = None
            if packet is None:  # the end (PyAV's own flush packets came first unless demuxing broke)
                if self._broken:
                    try:
                        yield from self._stream.codec_context.decode(None)
                    except av.FFmpegError:
                        pass
                return
            try:
                frames = self._stream.decode(packet)
            except av.FFmpegError:
                self._skipped += 1
                continue
            yield from frames

    @property
    def warnings(self) -> list[str]:
        """What was lost, once frames() has run: damaged packets skipped, a file
        cut short or broken mid-way. Empty for a sound file."""
        return self._find_warnings() if self._stream is not None else list(self._warnings)

    def _find_warnings(self) -> list[str]:
        path, lost = self.info.path, []
        if self._skipped:
            lost.append(f"skipped {self._skipped} damaged video packet{'s' * (self._skipped != 1)}")
        if self._broken:
            lost.append(self._broken)
        declared = self._declared_end()
        cut = index_end(self._container) > file_size(path)
        if cut:
            lost.append("the file is cut short")
        elif not lost and declared is not None and self._end is not None:
            # Allow for a last frame longer than the average interval (VFR).
            slack = max(0.25, 3 / float(self.info.fps)) if self.info.fps else 0.25
            if declared - self._end > slack:
                lost.append(f"the video stops at {self._end:.2f} s but the file says it lasts {declared:.2f} s")
        if not lost:
            return []
        count = self._stream.frames or None  # exact only where the container indexes its frames
        of = f" of {count}" if cut and count and count > self._decoded else ""
        frames = "frame" if self._decoded == 1 and not of else "frames"
        return [f"{path}: {'; '.join(lost)}: salvaged {self._decoded}{of} {frames}"]

    def _declared_end(self) -> float | None:
        """Where the container says the video stream ends, in seconds."""
        stream = self._stream
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        if stream.duration and stream.time_base:
            return start + float(stream.duration * stream.time_base)
        tag = stream.metadata.get("DURATION")  # Matroska/WebM keep it as a tag: 00:00:02.500000000
        match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", tag or "")
        if match:
            hours, minutes, seconds = match.groups()
            return start + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        return None


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
