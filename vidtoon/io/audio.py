"""Carry every audio stream of the source into the output.

Packets are copied unchanged (byte-identical) when the output container takes
the codec; a trial remux into memory tells, because some refusals (PCM into
mp4) only show when the file is closed. Otherwise the stream is re-encoded
with the container's usual codec. Packets are muxed interleaved with the
video, in time order, as the video is written.

Damaged source audio is salvaged as the video is (see reader.py): packets that
cannot be decoded or that go back in time are skipped, a container that breaks
mid-way ends the audio there, and `warnings` says so.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import describe
from .formats import AUDIO_FALLBACK

_TRIAL_PACKETS = 8


@dataclass
class _Track:
    source: av.audio.stream.AudioStream
    output: av.audio.stream.AudioStream
    copy: bool
    resampler: av.AudioResampler | None = None
    next_pts: int | None = None  # re-encode: running sample count
    last_dts: int | None = None  # copy: muxers refuse timestamps that go back


class AudioTracks:
    """Reads the source's audio and muxes it into `output` on demand."""

    def __init__(self, source: Path, output: av.container.OutputContainer, mode: str = "copy") -> None:
        """mode: "copy" (copy what the container takes) or "aac" (AAC: other codecs re-encoded)."""
        self.notes: list[str] = []  # things the user should hear about, once
        self._mode = mode
        self._source = source
        self._skipped = 0  # damaged packets left out
        self._broken: str | None = None
        self._output = output
        self._input = av.open(str(source), metadata_errors="replace")
        try:
            # A stream in a codec FFmpeg does not know can be neither copied nor re-encoded.
            self._unknown = [s.index for s in self._input.streams.audio if s.codec_context is None]
            known = [s for s in self._input.streams.audio if s.codec_context is not None]
            self._tracks = {s.index: self._add_track(s, source) for s in known}
            streams = [t.source for t in self._tracks.values()]
            self._packets: Iterator[av.Packet] = self._input.demux(streams) if streams else iter(())
            self._pending: av.Packet | None = None
        except BaseException:
            self._input.close()
            raise

    def _add_track(self, stream: av.audio.stream.AudioStream, source: Path) -> _Track:
        fmt = self._output.format.name
        name = stream.codec_context.codec.canonical_name  # mp3, not the decoder's mp3float
        wanted = self._mode == "copy" or name == "aac"  # AAC to AAC again would only lose quality
        if wanted and _can_copy(source, stream.index, fmt):
            if name == "opus" and fmt == "mp4":
                self.notes.append(
                    f"audio stream {stream.index} (opus) copied into mp4: QuickTime and older Apple devices "
                    "do not play Opus in MP4; --audio aac re-encodes it"
                )
            return _Track(stream, self._output.add_stream_from_template(stream), copy=True)
        codec = "aac" if self._mode == "aac" else AUDIO_FALLBACK[fmt]
        rate = 48000 if codec == "libopus" else stream.rate  # Opus only runs at 48 kHz
        layout = _standard_layout(stream.layout)
        out = self._output.add_stream(codec, rate=rate, layout=layout)
        encoder_format = out.codec_context.codec.audio_formats[0].name
        why = "as asked (--audio aac)" if not wanted else f"it cannot go into {fmt} as it is"
        self.notes.append(f"audio stream {stream.index} ({name}): re-encoding it to {codec}, {why}")
        resampler = av.AudioResampler(format=encoder_format, layout=layout, rate=rate)
        return _Track(stream, out, copy=False, resampler=resampler)

    def mux_until(self, seconds: float | None) -> None:
        """Mux every audio packet that starts at or before `seconds` (None: all)."""
        while True:
            packet, self._pending = self._pending, None
            if packet is None:  # (not `or`: an empty packet is falsy)
                packet = self._next_packet()
            if packet is None:
                if seconds is None:
                    self._flush_encoders()
                return
            if seconds is not None and packet.dts is not None and _seconds(packet) > seconds:
                self._pending = packet
                return
            if packet.dts is None:  # the demuxer's empty end packet; we flush ourselves
                continue
            track = self._tracks[packet.stream_index]
            if track.copy:
                if track.last_dts is not None and packet.dts <= track.last_dts:
                    self._skipped += 1
                    continue
                track.last_dts = packet.dts
                packet.stream = track.output
                self._output.mux(packet)
            else:
                self._reencode(track, packet)

    def _next_packet(self) -> av.Packet | None:
        """The next source audio packet; None at the end, or where the source breaks."""
        try:
            return next(self._packets, None)
        except av.FFmpegError as e:
            self._packets = iter(())
            self._broken = f"the audio is damaged ({describe(e)}); the rest of it is left out"
            return None

    @property
    def warnings(self) -> list[str]:
        """What was lost of the source's audio (damaged packets, an early end)."""
        lost = [f"audio stream {i} is in a codec FFmpeg does not know, so it is left out" for i in self._unknown]
        if self._skipped:
            lost.append(f"skipped {self._skipped} damaged audio packet{'s' * (self._skipped != 1)}")
        if self._broken:
            lost.append(self._broken)
        return [f"{self._source}: {'; '.join(lost)}"] if lost else []

    def _reencode(self, track: _Track, packet: av.Packet | None) -> None:
        try:
            frames = track.source.codec_context.decode(packet)
        except av.FFmpegError:
            if packet is not None:
                self._skipped += 1
            return
        for frame in frames:
            if track.next_pts is None:
                start = frame.time or 0.0
                track.next_pts = max(0, round(start * track.output.rate))
            for out in track.resampler.resample(frame):
                self._encode(track, out)

    def _encode(self, track: _Track, frame: av.AudioFrame | None) -> None:
        if frame is not None:
            frame.pts = track.next_pts
            frame.time_base = Fraction(1, track.output.rate)
            track.next_pts += frame.samples
        for packet in track.output.encode(frame):
            self._output.mux(packet)

    def _flush_encoders(self) -> None:
        for track in self._tracks.values():
            if track.copy:
                continue
            self._reencode(track, None)
            if track.next_pts is not None:
                for frame in track.resampler.resample(None):
                    self._encode(track, frame)
            self._encode(track, None)

    def close(self) -> None:
        self._packets = iter(())
        self._pending = None
        self._input.close()


class NoAudio:
    """AudioTracks' twin for a source without audio (a camera): nothing to read or mux."""

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


def _standard_layout(layout: av.AudioLayout) -> str:
    """Encoders refuse unnamed layouts ("2 channels", common with PCM): name them."""
    if not layout.name.endswith("channels"):
        return layout.name
    return {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(layout.nb_channels, "stereo")


def _seconds(packet: av.Packet) -> float:
    return float(packet.dts * packet.time_base)


def _can_copy(source: Path, index: int, fmt: str) -> bool:
    """Remux a few packets into memory to see whether `fmt` takes the codec."""
    try:
        with av.open(str(source)) as src, av.open(io.BytesIO(), "w", format=fmt) as out:
            stream = src.streams[index]
            target = out.add_stream_from_template(stream)
            muxed = 0
            for packet in src.demux(stream):
                if packet.dts is None:
                    continue
                packet.stream = target
                out.mux(packet)
                muxed += 1
                if muxed == _TRIAL_PACKETS:
                    break
        return True
    except (av.FFmpegError, ValueError):
        return False
