"""Encode frames into a video file, carrying the source's audio along.

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
from .audio import AudioTracks, NoAudio
from .files import commit, discard, temporary_path
from .formats import resolve
from .reader import Frame, VideoInfo
from .yuv import rgb_to_i420, yuv_matrix


class VideoWriter:
    """Encodes RGB frames into `path` (via a temporary file), with the source's audio."""

    def __init__(self, path: str | Path, source: VideoInfo, encode: EncodeSettings = EncodeSettings()) -> None:
        self.path = Path(path)
        self.format = resolve(self.path, encode)
        self.temp_path = temporary_path(self.path)
        self._source = source
        self._last_pts: int | None = None
        self._closed = False
        self.frames_written = 0
        options = {"movflags": "+faststart"} if self.format.container in ("mp4", "mov") else {}
        try:
            self.temp_path.touch(exist_ok=False)  # fail early, and claim the name
        except OSError as e:
            raise OutputError(f"{self.path}: cannot be written ({describe(e)})") from None
        with self._discard_on_error("cannot be written"):
            self._output = av.open(str(self.temp_path), "w", format=self.format.container, options=options)
            self._video = self._add_video_stream()
            # Even sizes (all 4:2:0 encoders pad to them) take the cheaper conversion (yuv.py).
            even = self._video.width % 2 == 0 and self._video.height % 2 == 0
            self._yuv = yuv_matrix(source.color.space, source.color.range) if even else None
            # A source without audio may have no file to open at all (a camera).
            self._audio = AudioTracks(source.path, self._output) if source.audio_streams else NoAudio()

    @property
    def notes(self) -> list[str]:
        """Things worth telling the user once (e.g. audio had to be re-encoded)."""
        return self._audio.notes

    @property
    def warnings(self) -> list[str]:
        """What was lost of the source's audio (damaged packets); complete after close()."""
        return self._audio.warnings

    @property
    def size(self) -> tuple[int, int]:
        """The encoded (width, height): the source's, made even where the codec needs it."""
        return self._video.width, self._video.height

    def _add_video_stream(self) -> av.video.stream.VideoStream:
        src, codec = self._source, self.format.codec
        if min(src.width, src.height) < codec.min_size:
            raise SettingsError(
                f"{codec.name} needs frames at least {codec.min_size}x{codec.min_size}, "
                f"this video is {src.width}x{src.height}; use --codec libx264"
            )
        stream = self._output.add_stream(codec.name, rate=src.fps, options=self.format.options)
        pad = 1 if codec.even_size else 0
        stream.width = src.width + (src.width % 2) * pad
        stream.height = src.height + (src.height % 2) * pad
        stream.pix_fmt = "yuv420p"
        # The source's time base, so every frame keeps its exact timestamp (VFR too).
        stream.time_base = src.time_base
        stream.codec_context.time_base = src.time_base
        stream.thread_type = "FRAME"
        ctx = stream.codec_context
        color = src.color
        ctx.colorspace, ctx.color_range = color.space, color.range
        ctx.color_primaries, ctx.color_trc = color.primaries, color.trc
        if src.sample_aspect_ratio:
            ctx.sample_aspect_ratio = src.sample_aspect_ratio
        return stream

    def write(self, frame: Frame) -> None:
        """Encode one RGB frame at its own timestamp (converted to this time base)."""
        pts = round(frame.pts * frame.time_base / self._source.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders refuse repeated timestamps
        self._last_pts = pts
        rgb = self._fit(frame.rgb)
        color = self._source.color
        if self._yuv is not None:
            video_frame = av.VideoFrame.from_ndarray(rgb_to_i420(rgb, self._yuv), format="yuv420p")
            video_frame.colorspace, video_frame.color_range = color.space, color.range
        else:
            video_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=color.space if color.space != 2 else None,
                dst_color_range=color.range or None,
            )
        video_frame.pts = pts
        video_frame.time_base = self._source.time_base
        with self._discard_on_error("writing failed"):
            self._mux(self._video.encode(video_frame))
        self.frames_written += 1

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        """Pad odd sizes by copying the last row/column, for 4:2:0 encoders."""
        height, width = rgb.shape[:2]
        if (width, height) != (self._source.width, self._source.height):
            raise ValueError(
                f"frame is {width}x{height} but the video is {self._source.width}x{self._source.height}"
            )
        extra_h, extra_w = self._video.height - height, self._video.width - width
        if extra_h or extra_w:
            rgb = np.pad(rgb, ((0, extra_h), (0, extra_w), (0, 0)), mode="edge")
        return rgb

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is not None:
                self._audio.mux_until(float(stamp * packet.time_base))
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
            self._mux(self._video.encode(None))
            self._audio.mux_until(None)
            self._output.close()
            self._audio.close()
            commit(self.temp_path, self.path)

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
        for part in (getattr(self, "_output", None), getattr(self, "_audio", None)):
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
