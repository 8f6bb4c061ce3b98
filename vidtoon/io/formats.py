"""Which containers and video encoders vidtoon writes, with their defaults.

The container comes from the output's suffix; the codec from --codec or the
container's default. Every pair here was tried with the PyAV wheel's FFmpeg.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import EncodeSettings, check_int, check_number
from ..errors import SettingsError

# suffix -> FFmpeg muxer name
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".gif": "gif",
    ".webp": "webp",
}

# Animations for sharing: no sound, no subtitles, scaled down and at a lower rate (animation.py).
ANIMATIONS = frozenset({"gif", "webp"})

# muxer -> audio encoder used when the original audio cannot be copied
AUDIO_FALLBACK = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus", "avi": "libmp3lame"}

# muxer -> the text subtitle codec it takes (subtitles.py); avi and the animations take none
SUBTITLE_CODEC = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip", "webm": "webvtt"}


X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


@dataclass(frozen=True)
class VideoCodec:
    name: str
    containers: tuple[str, ...]
    crf: tuple[int, int, int] | None  # (lowest, highest, default); None: no CRF mode
    preset_option: str | None  # the encoder option that --preset sets
    default_preset: str | None
    even_size: bool = True  # 4:2:0 encoders that refuse odd width/height
    min_size: int = 1  # smallest width/height the encoder survives
    max_side: int | None = None  # largest width/height it takes (None: only the area limit, inputs.py)
    presets: tuple[str, ...] = ()  # the values --preset takes, tried against this build (tests/io/test_formats.py)
    # Keep a source's 10/12-bit depth by default? Not for H.264: High 10 plays almost
    # nowhere (no browser, no phone decodes it in hardware); --pix-fmt still asks for it.
    keeps_depth: bool = True


CODECS = {
    c.name: c
    for c in (
        VideoCodec("libx264", ("mp4", "mov", "matroska", "avi"), (0, 51, 20), "preset", "veryfast", keeps_depth=False,
                   max_side=16384, presets=X26X_PRESETS),
        # x265 in the PyAV wheel corrupts its heap (SIGABRT) on frames under 64 px wide.
        VideoCodec("libx265", ("mp4", "mov", "matroska"), (0, 51, 24), "preset", "fast", min_size=64,
                   presets=X26X_PRESETS),
        # SVT-AV1 hangs for ever in its final flush on frames 24 px or less high or wide (320x24, 30 frames).
        VideoCodec("libsvtav1", ("mp4", "matroska", "webm"), (0, 63, 35), "preset", "10", min_size=25,
                   max_side=16384, presets=tuple(str(n) for n in range(-2, 14))),
        VideoCodec("libvpx-vp9", ("mp4", "matroska", "webm"), (0, 63, 33), "cpu-used", "6",
                   presets=tuple(str(n) for n in range(-8, 9))),
        VideoCodec("mpeg4", ("mp4", "mov", "matroska", "avi"), None, None, None, even_size=False, keeps_depth=False,
                   max_side=8191),
        VideoCodec("gif", ("gif",), None, None, None, even_size=False, keeps_depth=False),
        VideoCodec("libwebp_anim", ("webp",), None, None, None, even_size=False, keeps_depth=False),
    )
}

DEFAULT_CODEC = {"webm": "libvpx-vp9", "gif": "gif", "webp": "libwebp_anim"}  # else libx264


@dataclass(frozen=True)
class OutputFormat:
    """The resolved encoding choices for one output file."""

    container: str
    codec: VideoCodec
    options: dict[str, str]  # encoder options (crf, preset, ...)

    @property
    def animation(self) -> bool:
        return self.container in ANIMATIONS


def container_for(path: Path) -> str:
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(CONTAINERS))
        raise SettingsError(f"{path}: unknown output type {path.suffix or '(none)'!r}; use one of {known}") from None


def resolve(path: Path, encode: EncodeSettings) -> OutputFormat:
    """Check the codec/container pair and fill in the codec's defaults."""
    container = container_for(path)
    name = encode.codec or DEFAULT_CODEC.get(container, "libx264")
    codec = CODECS.get(name)
    if codec is None:
        raise SettingsError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}")
    if container not in codec.containers:
        fits = [c for c in CODECS.values() if container in c.containers]
        raise SettingsError(
            f"{name} cannot be written into {path.suffix} files; use {' or '.join(c.name for c in fits)}"
        )
    _check_settings(encode, container, path.suffix)
    if encode.pix_fmt is not None:
        supported = pixel_formats(name)
        if encode.pix_fmt not in supported:
            raise SettingsError(f"--pix-fmt {encode.pix_fmt!r}: {name} takes {', '.join(supported)}")
    options: dict[str, str] = {}
    if codec.crf is not None:
        low, high, default = codec.crf
        crf = default if encode.crf is None else encode.crf
        if not low <= crf <= high:
            raise SettingsError(f"--crf for {name} must be between {low} and {high}, got {crf}")
        options["crf"] = str(crf)
    elif encode.crf is not None:
        raise SettingsError(f"{name} has no --crf; pick another --codec or leave --crf out")
    if encode.preset is not None and codec.preset_option is None:
        raise SettingsError(f"{name} has no --preset; leave it out")
    if codec.preset_option:
        preset = codec.default_preset if encode.preset is None else str(encode.preset)
        if preset not in codec.presets:
            raise SettingsError(f"--preset {preset!r}: {name} takes {_span(codec.presets)}")
        options[codec.preset_option] = preset
    if container == "avi" and name == "libx264":
        options["bf"] = "0"  # AVI has no presentation timestamps, so no B-frame reordering
    if name == "libx265":
        options["x265-params"] = "log-level=error"  # else it prints its own banner
    if name == "libvpx-vp9":
        # Constant-quality mode needs b=0; row-mt makes it use both cores.
        options.update({"b": "0", "row-mt": "1", "deadline": "good"})
    return OutputFormat(container, codec, options)


def _span(values: tuple[str, ...]) -> str:
    """'-2 to 13' for a run of numbers, else the names."""
    if all(v.lstrip("-").isdigit() for v in values):
        return f"{values[0]} to {values[-1]}"
    return ", ".join(values) + " (fastest to slowest)"


def check_frame_size(codec: VideoCodec, container: str, width: int, height: int) -> None:
    """Refuse, before any work, frames the encoder cannot take: SettingsError."""
    small, large = min(width, height) < codec.min_size, codec.max_side is not None and max(width, height) > codec.max_side
    if not (small or large):
        return
    fits = [c.name for c in CODECS.values() if container in c.containers and c.min_size <= min(width, height)
            and (c.max_side is None or max(width, height) <= c.max_side) and c.name not in ("gif", "libwebp_anim")]
    hint = f"use --codec {' or '.join(fits)}" if fits else "scale the video first"
    if small:
        limit = f"needs frames at least {codec.min_size}x{codec.min_size}"
    else:
        limit = f"takes frames at most {codec.max_side} px wide and high"
    raise SettingsError(f"{codec.name} {limit}, these are {width}x{height}; {hint}")


def _check_settings(encode: EncodeSettings, container: str, suffix: str) -> None:
    if encode.audio not in ("copy", "aac"):
        raise SettingsError(f"--audio must be copy or aac, got {encode.audio!r}")
    if encode.audio == "aac" and container == "webm":
        raise SettingsError(f"{suffix} files cannot hold AAC; leave --audio out (WebM takes Opus and Vorbis)")
    check_int("--anim-size", encode.anim_size, 16, 4096)
    check_number("--anim-fps", encode.anim_fps, 1, 50)  # GIF delays are centiseconds; under 2 players slow down
    if encode.pix_fmt is not None and not isinstance(encode.pix_fmt, str):
        raise SettingsError(f"--pix-fmt must be a pixel format name, got {encode.pix_fmt!r}")


def pixel_formats(codec: str) -> list[str]:
    """The pixel formats an encoder of this FFmpeg build takes."""
    import av

    return [f.name for f in av.codec.Codec(codec, "w").video_formats or ()]


def pick_pix_fmt(codec: VideoCodec, asked: str | None, source_fmt: str, source_depth: int) -> tuple[str, str | None]:
    """The encoder's pixel format for a source of `source_depth` bits, and a note when
    the depth goes down. 4:2:0 unless --pix-fmt says otherwise; the source's depth
    (10 or 12 bits) where the codec keeps depth and this build's encoder takes it."""
    if asked is not None:
        return asked, None
    if codec.name == "gif":
        return "pal8", None
    if codec.name == "libwebp_anim":
        return "bgra", None  # libwebp converts to its own YUV (sharper than swscale's)
    if source_depth <= 8:
        return "yuv420p", None
    supported = pixel_formats(codec.name)
    if codec.keeps_depth:
        for depth in range(min(source_depth, 12), 8, -1):
            if f"yuv420p{depth}le" in supported:
                note = None if depth == source_depth else f"the source is {source_depth}-bit ({source_fmt}); {codec.name} writes {depth}-bit"
                return f"yuv420p{depth}le", note
    keeping = [c.name for c in CODECS.values() if c.keeps_depth and any(f.startswith("yuv420p1") for f in pixel_formats(c.name))]
    why = "8-bit only in this build" if codec.keeps_depth else "8-bit by default"
    hint = f"--codec {' or '.join(keeping)} keep{'s' * (len(keeping) == 1)} it" if keeping else "no encoder here keeps it"
    if not codec.keeps_depth and "yuv420p10le" in supported:
        hint += " (or --pix-fmt yuv420p10le, which few players play)"
    return "yuv420p", f"colour depth reduced: the source is {source_depth}-bit ({source_fmt}), {codec.name} writes {why}; {hint}"
