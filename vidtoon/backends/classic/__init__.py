"""The classic backend: a real-time OpenCV cartoon filter that needs no weights
and runs on any CPU.

    styles.py    the looks (--style): every number the filter uses
    palette.py   the clip's palette, fitted once, and its lookup table
    lines.py     XDoG ink lines, their width set by the frame's size
    filter.py    ClassicBackend: the steps, per frame
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...config import VIDEO, check_int, check_number, option
from ...errors import SettingsError
from .. import BackendSpec
from .styles import DEFAULT_STYLE, STYLES, Look

_OVERRIDES = {"levels": "colours", "edges": "edges", "line_width": "line_width", "smooth": "smooth", "steady": "steady"}


@dataclass(frozen=True)
class ClassicSettings:
    """The OpenCV cartoon filter (filter.py): a style, and fine adjustments to it."""

    style: str = option(DEFAULT_STYLE, "--style", "the look: " + ", ".join(STYLES), choices=tuple(STYLES))
    levels: int | None = option(None, "--levels", "colours in the clip's palette, 2-32; fewer = flatter "
                                "(default: the style's)", type=int)
    edges: float | None = option(None, "--edges", "ink darkness, 0-3; 0 = no lines (default: the style's)", type=float)
    line_width: float | None = option(None, "--line-width", "ink width, 0.25-4 times the style's "
                                      "(which grows with the frame: ~2 px at 720p)", type=float)
    smooth: int | None = option(None, "--smooth", "edge-preserving smoothing passes, 0-6; 0 keeps texture "
                                "(default: the style's)", type=int)
    steady: float | None = option(None, "--steady", "how much of the last frame's colours and lines carry over "
                                  "along the motion, 0-0.95; 0 = every frame on its own (default 0.8)", scopes=VIDEO,
                                  type=float)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise SettingsError(f"--style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.levels is not None:
            check_int("--levels", self.levels, 2, 32)
        if self.edges is not None:
            check_number("--edges", self.edges, 0.0, 3.0)
        if self.line_width is not None:
            check_number("--line-width", self.line_width, 0.25, 4.0)
        if self.smooth is not None:
            check_int("--smooth", self.smooth, 0, 6)
        if self.steady is not None:
            check_number("--steady", self.steady, 0.0, 0.95)

    def look(self) -> Look:
        """The style's numbers with the fine options given applied over them."""
        base = STYLES[self.style]
        changes = {field: getattr(self, name) for name, field in _OVERRIDES.items() if getattr(self, name) is not None}
        if "line_width" in changes:
            changes["line_width"] *= base.line_width
        return dataclasses.replace(base, **changes)

    def describe(self) -> str:
        """'style cel' or 'style comic, 6 colours': what the note after "backend: classic" says."""
        given = [f"{name.replace('_', ' ')} {getattr(self, name):g}" for name in _OVERRIDES if getattr(self, name) is not None]
        return ", ".join([f"style {self.style}", *given])


def load(settings: ClassicSettings, batch_size: int | None = None):
    from .filter import ClassicBackend

    return ClassicBackend(settings, batch_size)


SPEC = BackendSpec(
    name="classic",
    help="the OpenCV cartoon filter: no weights, real time on a CPU",
    settings=ClassicSettings,
    load=load,
)

__all__ = ["STYLES", "ClassicSettings", "Look", "SPEC"]
