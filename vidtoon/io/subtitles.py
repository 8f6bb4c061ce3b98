"""Carry the source's subtitle streams into the output, where its container takes them.

Per stream:
- copied, packets unchanged, when the container takes the codec as it is (a trial
  header into memory tells): Matroska takes every kind, mp4/mov take mov_text,
  webm takes WebVTT;
- else a TEXT subtitle (SubRip, ASS, WebVTT, mov_text, ...) is converted, cue by
  cue at its own time, into the container's text codec: mov_text for mp4/mov,
  WebVTT for webm, SubRip for mkv (formats.SUBTITLE_CODEC);
- else it is left out (picture subtitles such as DVD or Blu-ray ones into
  mp4/webm; any into avi), and one note says what was dropped.

Language and title tags go along. Packets are muxed interleaved with the
video, in time order, as the video is written (as audio.py does). A damaged
cue is skipped and counted in `warnings`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from ..errors import describe
from .formats import SUBTITLE_CODEC

KEPT_TAGS = ("language", "title")

# The ASS header FFmpeg's text decoders give; used when a decoder gives none.
_DEFAULT_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
    b"Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
    b"MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,"
    b"10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


@dataclass
class _Track:
    source: av.subtitles.stream.SubtitleStream
    output: av.subtitles.stream.SubtitleStream
    copy: bool
    last_pts: int | None = None  # muxers refuse cues that go back in time


class SubtitleTracks:
    """Reads the source's subtitle streams and muxes them into `output` on demand."""

    def __init__(self, source: Path, output: av.container.OutputContainer) -> None:
        self.notes: list[str] = []
        self._source = source
        self._output = output
        self._skipped = 0
        self._broken: str | None = None
        self._input = av.open(str(source), metadata_errors="replace")
        try:
            self._tracks: dict[int, _Track] = {}
            converted, dropped = [], []
            for stream in self._input.streams.subtitles:
                name = _codec_name(stream)
                try:
                    track, why = self._add_track(stream)
                except (av.FFmpegError, ValueError) as e:  # a damaged stream costs itself only
                    track, why = None, f", unreadable: {describe(e)}"
                if track is None:
                    dropped.append(f"{stream.index} ({name}{why})")
                    continue
                self._tracks[stream.index] = track
                if not track.copy:
                    converted.append(f"{stream.index} ({name})")
            fmt = output.format.name
            if converted:
                self.notes.append(f"subtitle stream{_s(converted)} {', '.join(converted)} converted to "
                                  f"{SUBTITLE_CODEC[fmt]} for {fmt}")
            if dropped:
                self.notes.append(f"subtitle stream{_s(dropped)} {', '.join(dropped)} left out: {fmt} cannot hold "
                                  f"{'them' if len(dropped) > 1 else 'it'}")
            streams = [t.source for t in self._tracks.values()]
            self._packets: Iterator[av.Packet] = self._input.demux(streams) if streams else iter(())
            self._pending: av.Packet | None = None
        except BaseException:
            self._input.close()
            raise

    def _add_track(self, stream: av.subtitles.stream.SubtitleStream) -> tuple[_Track | None, str]:
        """The output stream for `stream` (copied or converted), or None and why not."""
        fmt = self._output.format.name
        if stream.codec_context is None:
            return None, ""  # (named "unknown codec")
        if _takes(stream, fmt):
            return _Track(stream, self._tag(stream, self._output.add_stream_from_template(stream)), copy=True), ""
        target = SUBTITLE_CODEC.get(fmt)
        if target is None:
            return None, ""
        if not stream.codec_context.codec.text_sub:
            return None, ", pictures, not text"
        decoder = stream.codec_context
        decoder.open()  # the ASS header exists once the decoder is open (first: it is what fails on damage)
        out = self._output.add_stream(target)
        out.time_base = stream.time_base
        out.codec_context.time_base = stream.time_base
        out.codec_context.subtitle_header = decoder.subtitle_header or _DEFAULT_HEADER
        return _Track(stream, self._tag(stream, out), copy=False), ""

    @staticmethod
    def _tag(source: av.stream.Stream, out: av.stream.Stream) -> av.stream.Stream:
        for key in KEPT_TAGS:
            if source.metadata.get(key):
                out.metadata[key] = source.metadata[key]
        return out

    def mux_until(self, seconds: float | None) -> None:
        """Mux every cue that starts at or before `seconds` (None: all)."""
        while True:
            packet, self._pending = self._pending, None
            if packet is None:  # (not `or`: an empty packet is falsy)
                packet = self._next_packet()
            if packet is None:
                return
            if packet.pts is None:  # the demuxer's empty end packet
                continue
            if seconds is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            track = self._tracks[packet.stream_index]
            if track.last_pts is not None and packet.pts <= track.last_pts:
                self._skipped += 1
                continue
            track.last_pts = packet.pts
            if track.copy:
                packet.stream = track.output
                self._output.mux(packet)
            else:
                self._convert(track, packet)

    def _convert(self, track: _Track, packet: av.Packet) -> None:
        """One cue, decoded and encoded again, at the source packet's time."""
        try:
            cue = track.source.codec_context.decode2(packet)
            if cue is None or not len(cue.rects):
                return
            out = track.output.codec_context.encode_subtitle(cue)
        except (av.FFmpegError, ValueError):
            self._skipped += 1
            return
        duration = packet.duration or round(cue.end_display_time / 1000 / packet.time_base)
        out.pts = out.dts = packet.pts
        out.duration = duration
        out.time_base = packet.time_base
        out.stream = track.output
        self._output.mux(out)

    def _next_packet(self) -> av.Packet | None:
        try:
            return next(self._packets, None)
        except av.FFmpegError as e:
            self._packets = iter(())
            self._broken = f"the subtitles are damaged ({describe(e)}); the rest of them are left out"
            return None

    @property
    def warnings(self) -> list[str]:
        lost = [f"skipped {self._skipped} damaged subtitle cue{'s' * (self._skipped != 1)}"] if self._skipped else []
        if self._broken:
            lost.append(self._broken)
        return [f"{self._source}: {'; '.join(lost)}"] if lost else []

    def close(self) -> None:
        self._packets = iter(())
        self._pending = None
        self._input.close()


class NoSubtitles:
    """SubtitleTracks' twin for a source without subtitles (or an output that takes none)."""

    @property
    def notes(self) -> list[str]:
        return []

    @property
    def warnings(self) -> list[str]:
        return []

    def mux_until(self, seconds: float | None) -> None:
        pass

    def close(self) -> None:
        pass


def _takes(stream: av.stream.Stream, fmt: str) -> bool:
    """Does the muxer `fmt` take this stream's codec as it is? A header written into memory tells."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as out:
            out.add_stream_from_template(stream)
            out.start_encoding()
        return True
    except (av.FFmpegError, ValueError):
        return False


def _codec_name(stream: av.stream.Stream) -> str:
    return stream.codec_context.codec.canonical_name if stream.codec_context is not None else "unknown codec"


def _s(items: list[str]) -> str:
    return "s" if len(items) != 1 else ""
