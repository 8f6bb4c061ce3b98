"""Frozen settings objects: parsed once (by the CLI or the Python API),
validated here, then passed down unchanged. No globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import SettingsError

BACKENDS = ("auto", "classic", "pix2pix")


@dataclass(frozen=True)
class ClassicSettings:
    """The OpenCV cartoon filter (backends/classic.py)."""

    levels: int = 8  # luminance bands of the toon shading; fewer = flatter
    edges: float = 1.0  # darkness of the soft outlines; 0 turns them off
    smooth: int = 2  # edge-preserving smoothing passes; 0 keeps texture
    stabilize: bool = False  # blend with the previous output warped by the source's flow (temporal.py)

    def __post_init__(self) -> None:
        if not 2 <= self.levels <= 32:
            raise SettingsError(f"--levels must be between 2 and 32, got {self.levels}")
        if not 0.0 <= self.edges <= 3.0:
            raise SettingsError(f"--edges must be between 0 and 3, got {self.edges}")
        if not 0 <= self.smooth <= 6:
            raise SettingsError(f"--smooth must be between 0 and 6, got {self.smooth}")
        if not isinstance(self.stabilize, bool):
            raise SettingsError(f"stabilize must be True or False, got {self.stabilize!r}")


@dataclass(frozen=True)
class EncodeSettings:
    """How the output video is encoded (see formats.py for the codec table)."""

    codec: str | None = None  # None: the container's default (libx264; libvpx-vp9 for .webm)
    crf: int | None = None  # None: the codec's default quality
    preset: str | None = None  # None: the codec's default speed/quality trade-off


@dataclass(frozen=True)
class Settings:
    """Everything one `cartoonize` run needs."""

    input: Path
    output: Path
    backend: str = "auto"  # auto | classic | pix2pix
    classic: ClassicSettings = field(default_factory=ClassicSettings)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    overwrite: bool = False  # replace an existing output file
    batch_size: int = 8  # frames handed to the backend at once
    compare: bool = False  # write original | cartoon side by side, twice as wide

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", Path(self.input))
        object.__setattr__(self, "output", Path(self.output))
        if self.backend not in BACKENDS:
            raise SettingsError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if not 1 <= self.batch_size <= 256:
            raise SettingsError(f"batch size must be between 1 and 256, got {self.batch_size}")
