"""Everything `vidtoon info` tells about a file, stream by stream (and exact frame counts for metrics).

    media = probe("in.mkv")           # MediaInfo: video, audio, subtitle and other streams
    print(media.as_json())
    count = frame_count("in.mkv")     # FrameCount(frames, how): indexed, counted or estimated

Frame counts: MP4/MOV index every frame, so their count is exact for free.
Other containers (MKV, WebM, AVI, ...) only give a duration, and duration x
rate is an estimate (an MKV of 120 frames says 121); there the video packets
are counted, which reads the file but decodes nothing (a few ms for a short
clip), for files up to COUNT_LIMIT bytes; bigger ones keep the estimate,
labelled as one. The same packet times tell constant from variable frame rate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import InputError, describe
from .inputs import check_readable, file_size
from .reader import open_video

COUNT_LIMIT = 2 * 2**30  # bytes: files up to this size have their video packets counted
RATE_SAMPLE = 2000  # packets whose timestamps decide VFR in files too big to count

# FFmpeg's AVCOL_* codes, by their usual names (libavutil/pixfmt.h)
SPACES = {0: "gbr", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
          8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 14: "ictcp"}
RANGES = {0: "unspecified", 1: "limited", 2: "full"}
PRIMARIES = {1: "bt709", 2: "unspecified", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
             9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432 (P3)", 22: "ebu3213"}
TRANSFERS = {1: "bt709", 2: "unspecified", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             13: "srgb", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084 (PQ, HDR)", 18: "arib-std-b67 (HLG, HDR)"}


@dataclass(frozen=True)
class FrameCount:
    frames: int | None
    how: str  # "indexed" (the container's index), "counted" (packets read), "estimated" (duration x rate), "unknown"

    @property
    def exact(self) -> bool:
        return self.how in ("indexed", "counted")

    def __str__(self) -> str:
        if self.frames is None:
            return "unknown frame count"
        words = {"indexed": "exact, from the container's index", "counted": "exact, packets counted",
                 "estimated": "an estimate from duration x rate"}
        return f"{'' if self.exact else 'about '}{self.frames} frames ({words[self.how]})"


@dataclass(frozen=True)
class Rate:
    average: float | None  # frames per second
    variable: bool | None  # None: too few frames to tell
    lowest: float | None = None  # instantaneous fps, where variable
    highest: float | None = None
    sampled: bool = False  # decided on the first RATE_SAMPLE frames only

    def __str__(self) -> str:
        if not self.average:
            return "unknown frame rate"
        text = f"{self.average:.4g} fps"
        if self.variable:
            text += f" variable ({self.lowest:.3g}-{self.highest:.3g})"
        elif self.variable is False:
            text += " constant"
        return text + (f" (judged on the first {RATE_SAMPLE} frames)" if self.sampled else "")


@dataclass(frozen=True)
class VideoStreamInfo:
    index: int
    codec: str
    profile: str | None
    width: int  # as displayed: after rotation
    height: int
    pix_fmt: str
    bit_depth: int
    rate: Rate
    frames: FrameCount
    color: dict[str, str]  # space, range, primaries, transfer
    rotation: int
    sample_aspect_ratio: str | None
    bit_rate: int | None
    language: str | None
    cover: bool = False  # an attached picture (album art), not a video
    cartoonized: bool = False  # the stream vidtoon reads


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str
    profile: str | None
    channels: int
    layout: str
    sample_rate: int
    sample_format: str | None
    bit_rate: int | None
    language: str | None
    title: str | None


@dataclass(frozen=True)
class SubtitleStreamInfo:
    index: int
    codec: str
    kind: str  # text | pictures | unknown
    language: str | None
    title: str | None
    default: bool
    forced: bool


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    container: str
    duration: float | None
    size: int  # bytes
    bit_rate: int | None
    video: list[VideoStreamInfo] = field(default_factory=list)
    audio: list[AudioStreamInfo] = field(default_factory=list)
    subtitles: list[SubtitleStreamInfo] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)  # data, attachments: index, type, codec

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        for stream, video in zip(data["video"], self.video, strict=True):
            stream["frames"] = {"count": video.frames.frames, "exact": video.frames.exact, "how": video.frames.how}
        return data


def probe(path: str | Path) -> MediaInfo:
    """Every stream of `path`, as vidtoon sees it; InputError if it is not a video vidtoon reads."""
    path = Path(path)
    with open_video(path) as video:  # the same checks and errors as a cartoonize run
        main = video.info
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            timing = _video_timing(container, path)
            cover = av.stream.Disposition.attached_pic
            chosen = next(s.index for s in container.streams.video if not s.disposition & cover)
            media = MediaInfo(
                path=path,
                container=container.format.long_name or container.format.name,
                duration=container.duration / av.time_base if container.duration else main.duration,
                size=file_size(path),
                bit_rate=container.bit_rate or None,
            )
            for stream in container.streams:
                if stream.type == "video":
                    media.video.append(_video(container, stream, timing, stream.index == chosen))
                elif stream.type == "audio" and stream.codec_context is not None:
                    media.audio.append(_audio(stream))
                elif stream.type == "subtitle":
                    media.subtitles.append(_subtitle(stream))
                else:
                    name = stream.codec_context.codec.canonical_name if stream.codec_context is not None else None
                    media.other.append({"index": stream.index, "type": stream.type, "codec": name})
            return media
    except av.FFmpegError as e:
        raise InputError(f"{path}: cannot be read ({describe(e)})") from None


def frame_count(path: str | Path) -> FrameCount:
    """The first video stream's frame count: indexed, counted (files up to COUNT_LIMIT) or estimated."""
    path = Path(path)
    check_readable(path)
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            cover = av.stream.Disposition.attached_pic
            videos = [s for s in container.streams.video if not s.disposition & cover]
            if not videos:
                raise InputError(f"{path}: no video stream")
            timing = _video_timing(container, path, [videos[0]])
            return timing[videos[0].index][0]
    except av.FFmpegError as e:
        raise InputError(f"{path}: cannot be read ({describe(e)})") from None


def _video_timing(container: av.container.InputContainer, path: Path,
                  streams: list[av.video.stream.VideoStream] | None = None) -> dict[int, tuple[FrameCount, Rate]]:
    """Per video stream: its frame count and frame rate, from the index or the packets."""
    streams = list(container.streams.video) if streams is None else streams
    big = file_size(path) > COUNT_LIMIT
    stamps: dict[int, list[int]] = {s.index: [] for s in streams}
    indexed = {s.index for s in streams if s.frames and container.format.name.startswith("mov")}
    if streams:
        try:
            for packet in container.demux(streams):
                if packet.size and packet.pts is not None:
                    stamps[packet.stream_index].append(packet.pts)
                if big and all(len(v) >= RATE_SAMPLE for v in stamps.values()):
                    break
        except av.FFmpegError:
            big = True  # a damaged file: what was read decides the rate, the count stays an estimate
        container.seek(0)
    result = {}
    for stream in streams:
        pts = sorted(stamps[stream.index])
        average = float(stream.average_rate or stream.guessed_rate or 0) or None
        if stream.index in indexed:
            count = FrameCount(stream.frames, "indexed")
        elif not big:
            count = FrameCount(len(pts), "counted")
        else:
            duration = stream.duration * stream.time_base if stream.duration else (container.duration or 0) / av.time_base
            count = FrameCount(round(float(duration) * average), "estimated") if duration and average else FrameCount(None, "unknown")
        result[stream.index] = (count, _rate(pts, stream.time_base, average, sampled=big))
    return result


def _rate(pts: list[int], time_base: Fraction | None, average: float | None, sampled: bool) -> Rate:
    gaps = [b - a for a, b in zip(pts, pts[1:], strict=False) if b > a]
    if len(gaps) < 2 or not time_base:
        return Rate(average, None)
    low, high = min(gaps), max(gaps)
    median = sorted(gaps)[len(gaps) // 2]
    # A tick of jitter is rounding (30000/1001 fps in milliseconds: gaps of 33 and 34).
    variable = high - low > max(1, 0.01 * median)
    tick = float(time_base)
    if variable:
        return Rate(average, True, 1 / (high * tick), 1 / (low * tick), sampled)
    return Rate(average or 1 / (median * tick), False, sampled=sampled)


def _video(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
           timing: dict[int, tuple[FrameCount, Rate]], cartoonized: bool) -> VideoStreamInfo:
    ctx = stream.codec_context
    count, rate = timing[stream.index]
    first = None
    if ctx is not None:
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError:
            first = None
        container.seek(0)
    rotation = int(round(first.rotation)) % 360 if first is not None else 0
    width, height = (first.width, first.height) if first is not None else (ctx.width if ctx else 0, ctx.height if ctx else 0)
    if rotation in (90, 270):
        width, height = height, width
    fmt = first.format if first is not None else (ctx.format if ctx is not None else None)
    color = (int(first.colorspace), int(first.color_range), int(first.color_primaries), int(first.color_trc)) if first else (2, 0, 2, 2)
    sar = stream.sample_aspect_ratio
    return VideoStreamInfo(
        index=stream.index,
        codec=ctx.codec.canonical_name if ctx is not None else "unknown",
        profile=(ctx.profile or None) if ctx is not None else None,
        width=width,
        height=height,
        pix_fmt=fmt.name if fmt is not None else "unknown",
        bit_depth=max((c.bits for c in fmt.components), default=0) if fmt is not None else 0,
        rate=rate,
        frames=count,
        color={"space": SPACES.get(color[0], str(color[0])), "range": RANGES.get(color[1], str(color[1])),
               "primaries": PRIMARIES.get(color[2], str(color[2])), "transfer": TRANSFERS.get(color[3], str(color[3]))},
        rotation=rotation,
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar and sar != 1 else None,
        bit_rate=stream.bit_rate or None,
        language=_tag(stream, "language"),
        cover=bool(stream.disposition & av.stream.Disposition.attached_pic),
        cartoonized=cartoonized,
    )


def _audio(stream: av.audio.stream.AudioStream) -> AudioStreamInfo:
    ctx = stream.codec_context
    return AudioStreamInfo(
        index=stream.index,
        codec=ctx.codec.canonical_name,
        profile=ctx.profile or None,
        channels=ctx.channels or stream.layout.nb_channels,
        layout=stream.layout.name,
        sample_rate=stream.rate,
        sample_format=ctx.format.name if ctx.format is not None else None,
        bit_rate=stream.bit_rate or None,
        language=_tag(stream, "language"),
        title=_tag(stream, "title"),
    )


def _subtitle(stream: av.subtitles.stream.SubtitleStream) -> SubtitleStreamInfo:
    ctx = stream.codec_context
    kind = "unknown" if ctx is None else "text" if ctx.codec.text_sub else "pictures" if ctx.codec.bitmap_sub else "unknown"
    return SubtitleStreamInfo(
        index=stream.index,
        codec=ctx.codec.canonical_name if ctx is not None else "unknown",
        kind=kind,
        language=_tag(stream, "language"),
        title=_tag(stream, "title"),
        default=bool(stream.disposition & av.stream.Disposition.default),
        forced=bool(stream.disposition & av.stream.Disposition.forced),
    )


def _tag(stream: av.stream.Stream, key: str) -> str | None:
    value = stream.metadata.get(key)
    return value if value and value != "und" else None
