"""Which containers and video encoders vidtoon writes, with their defaults.

The container comes from the output's suffix; the codec from --codec or the
container's default. Every pair here was tried with the PyAV wheel's FFmpeg.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import EncodeSettings
from ..errors import SettingsError

# suffix -> FFmpeg muxer name
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}

# muxer -> audio encoder used when the original audio cannot be copied
AUDIO_FALLBACK = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus", "avi": "libmp3lame"}


@dataclass(frozen=True)
class VideoCodec:
    name: str
    containers: tuple[str, ...]
    crf: tuple[int, int, int] | None  # (lowest, highest, default); None: no CRF mode
    preset_option: str | None  # the encoder option that --preset sets
    default_preset: str | None
    even_size: bool = True  # 4:2:0 encoders that refuse odd width/height
    min_size: int = 1  # smallest width/height the encoder survives


CODECS = {
    c.name: c
    for c in (
        VideoCodec("libx264", ("mp4", "mov", "matroska", "avi"), (0, 51, 20), "preset", "veryfast"),
        # x265 in the PyAV wheel corrupts its heap (SIGABRT) on frames under 64 px wide.
        VideoCodec("libx265", ("mp4", "mov", "matroska"), (0, 51, 24), "preset", "fast", min_size=64),
        VideoCodec("libsvtav1", ("mp4", "matroska", "webm"), (0, 63, 35), "preset", "10"),
        VideoCodec("libvpx-vp9", ("mp4", "matroska", "webm"), (0, 63, 33), "cpu-used", "6"),
        VideoCodec("mpeg4", ("mp4", "mov", "matroska", "avi"), None, None, None, even_size=False),
    )
}


@dataclass(frozen=True)
class OutputFormat:
    """The resolved encoding choices for one output file."""

    container: str
    codec: VideoCodec
    options: dict[str, str]  # encoder options (crf, preset, ...)


def container_for(path: Path) -> str:
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(CONTAINERS))
        raise SettingsError(f"{path}: unknown output type {path.suffix or '(none)'!r}; use one of {known}") from None


def resolve(path: Path, encode: EncodeSettings) -> OutputFormat:
    """Check the codec/container pair and fill in the codec's defaults."""
    container = container_for(path)
    name = encode.codec or ("libvpx-vp9" if container == "webm" else "libx264")
    codec = CODECS.get(name)
    if codec is None:
        raise SettingsError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}")
    if container not in codec.containers:
        fits = [c for c in CODECS.values() if container in c.containers]
        raise SettingsError(
            f"{name} cannot be written into {path.suffix} files; use {' or '.join(c.name for c in fits)}"
        )
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
        options[codec.preset_option] = encode.preset or codec.default_preset
    if container == "avi" and name == "libx264":
        options["bf"] = "0"  # AVI has no presentation timestamps, so no B-frame reordering
    if name == "libx265":
        options["x265-params"] = "log-level=error"  # else it prints its own banner
    if name == "libvpx-vp9":
        # Constant-quality mode needs b=0; row-mt makes it use both cores.
        options.update({"b": "0", "row-mt": "1", "deadline": "good"})
    return OutputFormat(container, codec, options)
