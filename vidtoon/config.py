"""What a run is made of, as frozen objects parsed once and passed down unchanged:

    Recipe   how frames become cartoons: the backend and its settings, the
             stabiliser, --compare, the batch size, the encoder. The same for
             every clip of a batch, and all that its fingerprint covers.
    Job      where the frames come from and where they go: input, output, overwrite.

Settings classes declare their command-line options where they declare their
fields, with option(); the CLI builds its parsers from them (cli/options.py),
so an option is written once. No globals.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError

# Where an option applies: cartoonize and batch (video files), image, webcam.
FILE, IMAGE, LIVE = "file", "image", "live"
EVERYWHERE = frozenset({FILE, IMAGE, LIVE})
VIDEO = frozenset({FILE, LIVE})  # what needs a sequence of frames or an encoder


@dataclass(frozen=True)
class Flag:
    """A settings field's command-line option (see option())."""

    flag: str
    help: str
    scopes: frozenset[str]
    argparse: dict[str, Any]


def option(default: Any, flag: str, help: str, *, scopes: frozenset[str] = EVERYWHERE, **argparse_kwargs: Any) -> Any:
    """A dataclass field with a default, that the CLI offers as `flag` where `scopes` say.
    argparse_kwargs go to add_argument (type, choices, metavar, action, nargs, const);
    type defaults to the default's type, and a False default is a store_true switch."""
    meta = Flag(flag, help, frozenset(scopes), argparse_kwargs)
    return field(default=default, metadata={"cli": meta})


def cli_fields(settings_class: type) -> list[tuple[dataclasses.Field, Flag]]:
    """The fields of a settings class that are command-line options, in order."""
    return [(f, f.metadata["cli"]) for f in dataclasses.fields(settings_class) if "cli" in f.metadata]


def check_int(option: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(f"{option} must be a whole number, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{option} must be between {low} and {high}, got {value}")


def check_number(option: str, value: object, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise SettingsError(f"{option} must be a number, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{option} must be between {low:g} and {high:g}, got {value}")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SettingsError(f"{name} must be True or False, got {value!r}")


_CODEC_HELP = (
    "video encoder: libx264 (default), libx265, libsvtav1, libvpx-vp9 (default for .webm), mpeg4; "
    ".gif and .webp outputs take gif and libwebp_anim"
)


@dataclass(frozen=True)
class EncodeSettings:
    """How the output video is encoded (see io/formats.py for the codec table)."""

    codec: str | None = option(None, "--codec", _CODEC_HELP, scopes=VIDEO)  # None: the container's default
    crf: int | None = option(
        None, "--crf", "constant quality, lower is better (default per codec: x264 20, x265 24, av1 35, vp9 33)",
        scopes=VIDEO, type=int,
    )
    preset: str | None = option(
        None, "--preset", "encoder speed preset (x264/x265: ultrafast..veryslow, default veryfast/fast; "
        "av1: 0-13; vp9 cpu-used: 0-8)", scopes=VIDEO,
    )
    pix_fmt: str | None = option(
        None, "--pix-fmt", "pixel format of the video, e.g. yuv420p, yuv420p10le, yuv444p (default: 4:2:0 at the "
        "source's bit depth where the codec keeps it: x265 and AV1 keep 10-bit, x264 writes 8-bit)", scopes=VIDEO,
    )  # None: chosen per source (formats.pick_pix_fmt)
    audio: str = option(
        "copy", "--audio", "copy: the original audio packets where the container takes them, else re-encoded; "
        "aac: AAC for players that need it (Apple's), AAC streams still copied (default copy)",
        scopes={FILE}, choices=("copy", "aac"),
    )
    anim_size: int = option(480, "--anim-size", "long side in px of a .gif or .webp animation (never enlarged)",
                            scopes=VIDEO)
    anim_fps: float = option(12.0, "--anim-fps", "most frames per second of a .gif or .webp animation", scopes=VIDEO)


@dataclass(frozen=True)
class Recipe:
    """How frames become cartoons. `settings` holds each backend's settings by
    name; backends left out get their defaults. `backend` may be "auto" until
    backends.choose() resolves it (the batch does so before fingerprinting)."""

    backend: str = "auto"  # auto, or a name from backends.REGISTRY
    settings: Mapping[str, Any] = field(default_factory=dict)
    stabilize: bool = option(
        False, "--stabilize",
        "blend each frame with the previous output warped along the source's motion, so still content "
        "does not shimmer (default off)", scopes=VIDEO, action=argparse.BooleanOptionalAction,
    )
    compare: bool = option(False, "--compare", "write the original and the cartoon side by side", scopes={FILE, IMAGE})
    batch_size: int | None = option(
        None, "--batch-size", "frames per backend call (default: classic 4; pix2pix 16 on a GPU, 4 on a CPU, "
        "halved on out-of-memory)", scopes={FILE}, type=int,
    )
    encode: EncodeSettings = field(default_factory=EncodeSettings)

    def __post_init__(self) -> None:
        from . import backends

        names = backends.REGISTRY
        if self.backend != "auto" and self.backend not in names:
            raise SettingsError(f"unknown backend {self.backend!r}; choose one of auto, {', '.join(names)}")
        given = dict(self.settings)
        for name, value in given.items():
            if name not in names:
                raise SettingsError(f"settings for an unknown backend {name!r}; the backends are {', '.join(names)}")
            kind = backends.spec(name).settings
            if not isinstance(value, kind):
                raise SettingsError(f"settings for {name} must be a {kind.__name__}, got {type(value).__name__}")
        complete = {name: given.get(name) or backends.spec(name).settings() for name in names}
        object.__setattr__(self, "settings", complete)
        check_bool("stabilize", self.stabilize)
        check_bool("compare", self.compare)
        if self.batch_size is not None:
            check_int("--batch-size", self.batch_size, 1, 256)

    @classmethod
    def from_options(cls, **options: Any) -> Recipe:
        """A recipe from keyword options by their Python names, as vidtoon.cartoonize
        takes them: the fields here, EncodeSettings' (codec, crf, preset, pix_fmt, audio, ...) and each
        backend's settings fields (levels, model, steps, ...). Unknown names: SettingsError."""
        from . import backends

        encode = {f.name: options.pop(f.name) for f in dataclasses.fields(EncodeSettings) if f.name in options}
        settings = {}
        for spec in backends.specs():
            names = [f.name for f in dataclasses.fields(spec.settings) if f.name in options]
            settings[spec.name] = spec.settings(**{name: options.pop(name) for name in names})
        allowed = {f.name for f in dataclasses.fields(cls)} - {"settings", "encode"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise SettingsError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        return cls(settings=settings, encode=EncodeSettings(**encode), **options)

    @property
    def active(self) -> Any:
        """The settings of the backend this recipe runs (resolve "auto" first)."""
        if self.backend == "auto":
            raise ValueError("the backend is still 'auto'; resolve it with backends.choose() first")
        return self.settings[self.backend]

    def with_backend(self, name: str, settings: Any = None) -> Recipe:
        """This recipe with another backend (and, if given, that backend's settings)."""
        changed = dict(self.settings)
        if settings is not None:
            changed[name] = settings
        return dataclasses.replace(self, backend=name, settings=changed)

    def describe(self) -> dict[str, Any]:
        """Everything that can change an output, as plain data: every field, but of
        the backends' settings only the active one's, so that changing another
        backend's options changes nothing here (the batch fingerprints this)."""
        active = self.active  # (raises while the backend is still "auto")
        data = dataclasses.asdict(self)
        data["settings"] = {self.backend: dataclasses.asdict(active)}
        return data


@dataclass(frozen=True)
class Job:
    """Where one run reads and writes."""

    input: Path
    output: Path
    overwrite: bool = False  # replace an existing output file

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", Path(self.input))
        object.__setattr__(self, "output", Path(self.output))
