"""The classic backend: a real-time OpenCV cartoon filter that needs no weights
and runs on any CPU (the filter itself is in filter.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import check_int, check_number, option
from .. import BackendSpec


@dataclass(frozen=True)
class ClassicSettings:
    """The OpenCV cartoon filter (filter.py)."""

    levels: int = option(8, "--levels", "shading bands, 2-32; fewer = flatter")
    edges: float = option(1.0, "--edges", "outline strength, 0-3; 0 = none")
    smooth: int = option(2, "--smooth", "edge-preserving smoothing passes, 0-6; 0 keeps texture")

    def __post_init__(self) -> None:
        check_int("--levels", self.levels, 2, 32)
        check_number("--edges", self.edges, 0.0, 3.0)
        check_int("--smooth", self.smooth, 0, 6)


def load(settings: ClassicSettings, batch_size: int | None = None):
    from .filter import ClassicBackend

    return ClassicBackend(settings, batch_size)


SPEC = BackendSpec(
    name="classic",
    help="the OpenCV cartoon filter: no weights, real time on a CPU",
    settings=ClassicSettings,
    load=load,
)
