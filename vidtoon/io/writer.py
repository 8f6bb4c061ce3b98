"""Encode frames into a video file, carrying the source's audio and subtitles along.

    with VideoWriter("out.mp4", source_info, EncodeSettings()) as writer:
        for frame in frames:
            writer.write(frame)

Everything is written to a hidden temporary file beside the target (files.py),
which is renamed over the target only when the file is complete. Leaving the `with`
block through an exception (or Ctrl-C) deletes the temporary file instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from ..config import EncodeSettings
from ..errors import OutputError, SettingsError, describe
from .animation import Animation
from .audio import AudioTracks, NoAudio
from .files import commit, discard, temporary_path
from .formats import check_frame_size, pick_pix_fmt, resolve
from .reader import Frame, VideoInfo
from .subtitles import NoSubtitles, SubtitleTracks
from .yuv import rgb_to_i420, yuv_matrix

# 4:2:0 formats the writer converts to itself (yuv.py), by bits; others go through swscale.
_PLANAR_420 = {"yuv420p": 8, "yuv420p10le": 10, "yuv420p12le": 12}


class VideoWriter:
    """Encodes RGB frames into `path` (via a temporary file), with the source's audio and
    subtitles; a .gif or .webp `path` makes an animation (animation.py) without them."""

    def __init__(self, path: str | Path, source: VideoInfo, encode: EncodeSettings = EncodeSettings(),
                 overwrite: bool = True) -> None:
        """overwrite=False: the finished file never replaces one that appeared at `path` meanwhile."""
        self.path = Path(path)
        self._overwrite = overwrite
        self.format = resolve(self.path, encode)
        self.temp_path = temporary_path(self.path)
        self._source = source
        self._last_pts: int | None = None
        self._closed = False
        self.frames_written = 0
        self._notes: list[str] = []
        self.pix_fmt, depth_note = pick_pix_fmt(self.format.codec, encode.pix_fmt, source.pix_fmt, source.bit_depth)
        if depth_note:
            self._notes.append(depth_note)
        container = self.format.container
        self._animation = Animation(container, source, encode) if self.format.animation else None
        options = {"movflags": "+faststart"} if container in ("mp4", "mov") else {}
        if self._animation is not None:
            options = {"loop": "0"}  # play forever, as shared animations do
        try:
            self.temp_path.touch(exist_ok=False)  # fail early, and claim the name
        except OSError as e:
            raise OutputError(f"{self.path}: cannot be written ({describe(e)})") from None
        with self._discard_on_error("cannot be written"):
            self._output = av.open(str(self.temp_path), "w", format=self.format.container, options=options)
            self._video = self._add_video_stream()
            self._open_encoder()
            # Even 4:2:0 sizes (all 4:2:0 encoders pad to them) take the cheaper conversion (yuv.py).
            even = self._video.width % 2 == 0 and self._video.height % 2 == 0
            self._bits = _PLANAR_420.get(self.pix_fmt, 0)
            color = source.color
            self._yuv = yuv_matrix(color.space, color.range, self._bits) if even and self._bits else None
            # A source without audio may have no file to open at all (a camera).
            self._audio = NoAudio()
            self._subtitles = NoSubtitles()
            if self._animation is not None:
                self._notes.append(self._animation.note + _left_out(source, container))
            else:
                if source.audio_streams:
                    self._audio = AudioTracks(source.path, self._output, encode.audio)
                if source.subtitle_streams:
                    self._subtitles = SubtitleTracks(source.path, self._output)
            if (self._video.width, self._video.height) != (source.width, source.height) and self._animation is None:
                self._notes.append(f"odd size {source.width}x{source.height}: padded to {self._video.width}x{self._video.height}")

    @property
    def notes(self) -> list[str]:
        """Things worth telling the user once (e.g. audio had to be re-encoded, depth reduced)."""
        return [*self._notes, *self._audio.notes, *self._subtitles.notes]

    @property
    def warnings(self) -> list[str]:
        """What was lost of the source's audio and subtitles (damaged packets); complete after close()."""
        return [*self._audio.warnings, *self._subtitles.warnings]

    @property
    def i420_matrix(self) -> np.ndarray | None:
        """The RGB -> Y'CbCr matrix (yuv.py) when this writer takes 8-bit I420 planes as well
        as RGB (write(frame, planes)), so a backend may skip its full-size RGB; else None
        (other pixel formats, odd sizes that are padded, animations)."""
        padded = (self._video.width, self._video.height) != (self._source.width, self._source.height)
        return self._yuv if self._bits == 8 and self._animation is None and not padded else None

    @property
    def size(self) -> tuple[int, int]:
        """The encoded (width, height): the source's, made even where the codec needs it (an
        animation's: scaled down)."""
        return self._video.width, self._video.height

    def _add_video_stream(self) -> av.video.stream.VideoStream:
        src, codec = self._source, self.format.codec
        check_frame_size(codec, self.format.container, src.width, src.height)
        stream = self._output.add_stream(codec.name, rate=src.fps, options=self.format.options)
        pad = 1 if codec.even_size else 0
        stream.width = src.width + (src.width % 2) * pad
        stream.height = src.height + (src.height % 2) * pad
        stream.pix_fmt = self.pix_fmt
        # The source's time base, so every frame keeps its exact timestamp (VFR too).
        time_base = src.time_base
        if self._animation is not None:
            (stream.width, stream.height), time_base = self._animation.size, self._animation.time_base
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.thread_type = "FRAME"
        ctx = stream.codec_context
        color = src.color
        ctx.colorspace, ctx.color_range = color.space, color.range
        ctx.color_primaries, ctx.color_trc = color.primaries, color.trc
        if src.sample_aspect_ratio and self._animation is None:
            ctx.sample_aspect_ratio = src.sample_aspect_ratio
        return stream

    def _open_encoder(self) -> None:
        """Open the encoder now, not at the first frame, so that options or a size
        it refuses are said before any work (exit 2), not as a failed write."""
        ctx, codec = self._video.codec_context, self.format.codec
        try:
            ctx.open()
        except av.FFmpegError as e:
            options = ", ".join(f"{k}={v}" for k, v in self.format.options.items() if k in ("crf", "preset", "cpu-used"))
            raise SettingsError(
                f"{codec.name} refuses {ctx.width}x{ctx.height} {self.pix_fmt} frames with {options or 'its defaults'} "
                f"({describe(e)}); try another --codec, --pix-fmt or size"
            ) from None

    def write(self, frame: Frame, planes: np.ndarray | None = None) -> None:
        """Encode one RGB frame at its own timestamp (converted to this time base).
        planes: its picture as (3H/2, W) uint8 I420 planes of i420_matrix, instead of frame.rgb."""
        if planes is not None:
            if self.i420_matrix is None or planes.shape != (self._video.height * 3 // 2, self._video.width):
                raise ValueError(f"this writer takes no I420 planes of shape {planes.shape}")
        elif self._animation is not None:
            self._check_size(frame.rgb)
            pictures = list(self._animation.pictures(frame))
            with self._discard_on_error("writing failed"):
                for picture in pictures:
                    self._mux(self._video.encode(picture))
            self.frames_written = self._animation.kept
            return
        pts = round(frame.pts * frame.time_base / self._source.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders refuse repeated timestamps
        self._last_pts = pts
        color = self._source.color
        if planes is not None or self._yuv is not None:
            if planes is None:
                planes = rgb_to_i420(self._fit(frame.rgb), self._yuv, self._bits)
            video_frame = _planes_frame(planes, self.pix_fmt)
            video_frame.colorspace, video_frame.color_range = color.space, color.range
        else:
            video_frame = av.VideoFrame.from_ndarray(self._fit(frame.rgb), format="rgb24").reformat(
                format=self.pix_fmt,
                dst_colorspace=color.space if color.space != 2 else None,
                dst_color_range=color.range or None,
            )
        video_frame.pts = pts
        video_frame.time_base = self._source.time_base
        with self._discard_on_error("writing failed"):
            self._mux(self._video.encode(video_frame))
        self.frames_written += 1

    def _check_size(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        if (width, height) != (self._source.width, self._source.height):
            raise ValueError(
                f"frame is {width}x{height} but the video is {self._source.width}x{self._source.height}"
            )

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        """Pad odd sizes by copying the last row/column, for 4:2:0 encoders."""
        self._check_size(rgb)
        height, width = rgb.shape[:2]
        extra_h, extra_w = self._video.height - height, self._video.width - width
        if extra_h or extra_w:
            rgb = np.pad(rgb, ((0, extra_h), (0, extra_w), (0, 0)), mode="edge")
        return rgb

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is not None:
                seconds = float(stamp * packet.time_base)
                self._audio.mux_until(seconds)
                self._subtitles.mux_until(seconds)
            self._output.mux(packet)

    def close(self) -> None:
        """Flush the encoder, finish the audio, and move the file into place.
        Once: the `with` block's exit does nothing more when this already ran."""
        if self._closed:
            return
        self._closed = True
        if self.frames_written == 0:
            self._discard()
            raise OutputError(f"{self.path}: no frames were written, so no file was made")
        with self._discard_on_error("writing failed"):
            if self._animation is not None:
                for picture in self._animation.flush():
                    self._mux(self._video.encode(picture))
            self._mux(self._video.encode(None))
            self._audio.mux_until(None)
            self._subtitles.mux_until(None)
            self._output.close()
            self._audio.close()
            self._subtitles.close()
            commit(self.temp_path, self.path, self._overwrite)

    def abort(self) -> None:
        """Stop and delete everything written so far."""
        self._discard()

    @contextlib.contextmanager
    def _discard_on_error(self, what: str) -> Iterator[None]:
        """Delete the temporary file if the block fails; FFmpeg and OS errors become OutputError."""
        try:
            yield
        except (av.FFmpegError, OSError) as e:
            self._discard()
            raise OutputError(f"{self.path}: {what} ({describe(e)})") from None
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        for part in (getattr(self, "_output", None), getattr(self, "_audio", None), getattr(self, "_subtitles", None)):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        discard(self.temp_path)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _planes_frame(planes: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """A VideoFrame from (3H/2, W) Y, U, V planes; PyAV's from_ndarray takes 8 and 10 bits only."""
    if pix_fmt != "yuv420p12le":
        return av.VideoFrame.from_ndarray(planes, format=pix_fmt)
    width, height = planes.shape[1], planes.shape[0] * 2 // 3
    frame = av.VideoFrame(width, height, pix_fmt)
    flat, luma = planes.reshape(-1), width * height
    parts = (flat[:luma].reshape(height, width), *flat[luma:].reshape(2, height // 2, width // 2))
    for plane, data in zip(frame.planes, parts, strict=True):
        padded = np.zeros((data.shape[0], plane.line_size // 2), np.uint16)
        padded[:, : data.shape[1]] = data
        plane.update(padded.tobytes())
    return frame


def _left_out(source: VideoInfo, container: str) -> str:
    """', audio and subtitles left out (...)' for an animation, or ''."""
    kinds = [k for k, n in (("audio", source.audio_streams), ("subtitles", source.subtitle_streams)) if n]
    if not kinds:
        return ""
    return f"; {' and '.join(kinds)} left out ({'a GIF' if container == 'gif' else 'an animated WebP'} holds no sound or subtitles)"
