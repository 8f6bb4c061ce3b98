"""Generate small test videos with real audio, entirely with PyAV.

Every picture is a moving colour gradient with a square whose position
encodes the frame index, so tests can tell frames apart and check order.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

VIDEO_CODEC = {".webm": "libvpx-vp9", ".avi": "mpeg4"}
AUDIO_CODEC = {".webm": "libopus", ".avi": "libmp3lame"}
SUBTITLE_CODEC = {".mp4": "mov_text", ".mov": "mov_text", ".webm": "webvtt"}  # .mkv: the SRT as it is

# Cues for clips with subtitles: (start s, end s, text).
CUES = [(0.1, 0.5, "Hello there"), (0.6, 0.9, "Second line, with a comma")]


@dataclass
class Clip:
    path: Path
    pts: list[int]  # video timestamps written, in time_base units
    time_base: Fraction
    width: int
    height: int
    audio_rates: list[int] = field(default_factory=list)


def picture(index: int, width: int, height: int) -> np.ndarray:
    """A smooth gradient that drifts with `index`, plus a marker square."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack(
        [
            127 + 100 * np.sin((x + 3 * index) / 23.0),
            127 + 100 * np.cos((y - 2 * index) / 17.0),
            127 + 100 * np.sin((x + y) / 31.0),
        ],
        axis=-1,
    )
    side = max(1, min(width, height) // 6)
    left = (index * 5) % max(1, width - side)
    rgb[: side, left : left + side] = (250, 250, 20)
    return rgb.clip(0, 255).astype(np.uint8)


def panning(seed: int = 0, speed: tuple[float, float] = (1.7, 0.45)) -> Callable[[int, int, int], np.ndarray]:
    """A draw() for make_clip: a camera pans over a textured landscape (flat
    discs, a smooth colour field, fine grain) by `speed` px per frame, sub-pixel,
    while a textured ball crosses the frame on its own path. Flicker metrics
    need both: global motion and an independently moving, occluding object."""
    rng = np.random.default_rng(seed)
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def landscape(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = height + 64, width + 256  # room for ~130 frames of panning
        land = cv2.resize(rng.uniform(40, 215, (5, 9, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[0:h, 0:w]
        for _ in range(14):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.05, 0.2) * height
            land[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(20, 235, 3)
        land += cv2.GaussianBlur(rng.normal(0, 8, (h, w, 3)).astype(np.float32), (0, 0), 0.8)
        # the ball: stripes and blotches, shaded, with an anti-aliased alpha edge
        r = max(4, height // 7)
        y, x = np.mgrid[-r - 2 : r + 3, -r - 2 : r + 3].astype(np.float32)
        stripes = 0.5 + 0.5 * np.sign(np.sin((x + 0.6 * y) / max(1.0, r / 4)))
        blotch = cv2.GaussianBlur(rng.normal(0, 1, x.shape).astype(np.float32), (0, 0), max(1.0, r / 6))
        shade = np.clip(1.1 - 0.5 * np.hypot(x + r / 3, y + r / 3) / r, 0.3, 1.0)
        ball = np.stack([200 * stripes + 30, 60 + 90 * (blotch > 0), 220 - 160 * stripes], axis=-1) * shade[..., None]
        alpha = np.clip(r + 0.5 - np.hypot(x, y), 0, 1)
        return land, np.dstack([ball, alpha]).astype(np.float32)

    def draw(index: int, width: int, height: int) -> np.ndarray:
        if (width, height) not in cache:
            cache[(width, height)] = landscape(width, height)
        land, sprite = cache[(width, height)]
        pan = np.float32([[1, 0, speed[0] * index], [0, 1, speed[1] * index]])
        frame = cv2.warpAffine(land, pan, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        # the ball: left to right at 2.6 px per frame, bobbing up and down
        side = sprite.shape[0]
        x = 2.6 * index - side / 2 + width / 8
        y = height / 2 - side / 2 + height / 4 * np.sin(index / 9.0)
        move = np.float32([[1, 0, x], [0, 1, y]])
        placed = cv2.warpAffine(sprite, move, (width, height), flags=cv2.INTER_LINEAR)
        alpha = placed[..., 3:]
        frame = frame * (1 - alpha) + placed[..., :3] * alpha
        return frame.clip(0, 255).round().astype(np.uint8)

    return draw


def tone(seconds: float, rate: int, channels: int, hz: float = 440.0) -> np.ndarray:
    """A planar float32 sine chord, (channels, samples)."""
    t = np.arange(int(seconds * rate)) / rate
    rows = [0.3 * np.sin(2 * np.pi * hz * (c + 1) * t) for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


def make_clip(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 12,
    fps: int = 12,
    vfr: bool = False,
    rotation: int = 0,
    audio: tuple[str, ...] | None = None,
    audio_rate: int = 48000,
    codec: str | None = None,
    pix_fmt: str = "yuv420p",
    draw: Callable[[int, int, int], np.ndarray] = picture,
    subtitles: list[tuple[float, float, str]] | None = None,
    subtitle_language: str = "eng",
) -> Clip:
    """Write a clip; `audio` lists one codec per audio stream (None: the
    container's usual one; () for no audio). VFR clips get uneven gaps.
    draw(index, width, height) makes each RGB picture (default: picture()).
    `subtitles`: cues (start, end, text) for one subtitle stream, made from an SRT:
    as SubRip in .mkv, mov_text in .mp4/.mov, WebVTT in .webm."""
    path = Path(path)
    suffix = path.suffix.lower()
    odd = width % 2 or height % 2  # libx264 refuses odd sizes; mpeg4 takes them
    codec = codec or ("mpeg4" if odd else VIDEO_CODEC.get(suffix, "libx264"))
    if audio is None:
        audio = (AUDIO_CODEC.get(suffix, "aac"),)
    time_base = Fraction(1, fps * 10 if vfr else fps)
    if vfr:  # gaps of 1, 2 or 3 frame intervals in a fixed pattern
        gaps = [10, 20, 10, 30, 10, 10, 20]
        pts = [sum(gaps[i % len(gaps)] for i in range(k)) for k in range(frames)]
    else:
        pts = list(range(frames))
    seconds = float((pts[-1] + (10 if vfr else 1)) * time_base)
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        tracks = []
        for k, name in enumerate(audio):
            stream = out.add_stream(name, rate=audio_rate, layout="stereo")
            tracks.append((stream, tone(seconds, audio_rate, 2, hz=330.0 * (k + 1))))
        cues = _subtitle_packets(out, suffix, subtitles, subtitle_language) if subtitles else []
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(draw(i, width, height), format="rgb24")
            frame.pts, frame.time_base = p, time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for stream, samples in tracks:
            _encode_audio(out, stream, samples)
        for packet in cues:
            out.mux(packet)
    rates = [s.rate for s, _ in tracks]
    return Clip(path, pts, time_base, width, height, rates)


def srt_text(cues: list[tuple[float, float, str]]) -> str:
    def stamp(seconds: float) -> str:
        ms = round(seconds * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(f"{i + 1}\n{stamp(a)} --> {stamp(b)}\n{text}\n" for i, (a, b, text) in enumerate(cues))


def _subtitle_packets(out: av.container.OutputContainer, suffix: str, cues: list, language: str) -> list[av.Packet]:
    """A subtitle stream in `out` made from an SRT of `cues`, and its packets (muxed after the video)."""
    source = av.open(io.BytesIO(srt_text(cues).encode()), format="srt")
    stream = source.streams.subtitles[0]
    codec = SUBTITLE_CODEC.get(suffix)
    if codec is None:
        target = out.add_stream_from_template(stream)
    else:
        stream.codec_context.open()
        target = out.add_stream(codec)
        target.time_base = target.codec_context.time_base = stream.time_base
        target.codec_context.subtitle_header = stream.codec_context.subtitle_header
    target.metadata["language"] = language
    packets = []
    for packet in source.demux(stream):
        if packet.dts is None:
            continue
        if codec is not None:
            encoded = target.codec_context.encode_subtitle(stream.codec_context.decode2(packet))
            encoded.pts = encoded.dts = packet.pts
            encoded.duration, encoded.time_base = packet.duration, packet.time_base
            packet = encoded
        packet.stream = target
        packets.append(packet)
    source.close()
    return packets


def subtitle_cues(path: Path) -> list[list[tuple[float, float, str]]]:
    """(start s, end s, text) of every cue, per subtitle stream, ASS override tags left in."""
    with av.open(str(path)) as c:
        result = []
        for stream in c.streams.subtitles:
            cues = []
            for packet in c.demux(stream):
                if packet.pts is None:
                    continue
                start = float(packet.pts * packet.time_base)
                for sub in stream.decode(packet):
                    cues.append((round(start, 3), round(start + float(packet.duration * packet.time_base), 3),
                                 sub.dialogue.decode()))
            result.append(cues)
            c.seek(0)
        return result


def _encode_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: np.ndarray) -> None:
    fmt = stream.codec_context.codec.audio_formats[0].name
    resampler = av.AudioResampler(format=fmt, layout="stereo", rate=stream.rate)
    step = 1024
    for start in range(0, samples.shape[1], step):
        chunk = np.ascontiguousarray(samples[:, start : start + step])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.rate = stream.rate
        frame.pts = start
        frame.time_base = Fraction(1, stream.rate)
        for f in resampler.resample(frame):
            out.mux(stream.encode(f))
    for f in resampler.resample(None):
        out.mux(stream.encode(f))
    out.mux(stream.encode(None))


def read_video(path: Path) -> tuple[list[int], Fraction, list[np.ndarray], int]:
    """Decoded (pts, time_base, rgb frames, display rotation) of the first video stream."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        return [f.pts for f in frames], s.time_base, [f.to_ndarray(format="rgb24") for f in frames], (
            frames[0].rotation if frames else 0
        )


def audio_packets(path: Path) -> list[list[bytes]]:
    """The raw bytes of every audio packet, per audio stream."""
    with av.open(str(path)) as c:
        streams = list(c.streams.audio)
        if not streams:
            return []
        out: list[list[bytes]] = [[] for _ in streams]
        index = {s.index: k for k, s in enumerate(streams)}
        for packet in c.demux(streams):
            if packet.dts is not None:
                out[index[packet.stream_index]].append(bytes(packet))
        return out


def noise(size: int, seed: int = 0) -> bytes:
    """`size` bytes of seeded noise: never a video. Truly random bytes are, now and
    then, probed by FFmpeg as some format (seen: a subtitle stream), which made
    tests expecting "not a readable video" flaky."""
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
