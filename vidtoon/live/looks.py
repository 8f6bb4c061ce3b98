"""What a live session shows: the recipe as its backend adapts it for live use
(live_recipe), and the looks the number keys switch to (PRESETS)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import backends
from ..backends.classic import STYLES, ClassicSettings
from ..config import Recipe


@dataclass(frozen=True)
class Preset:
    """A look the number keys switch to."""

    name: str
    classic: ClassicSettings | None = None  # None: the backend and settings the session started with


# Key 1 is always what the command line asked for (any backend); 2-6 are the classic
# styles and 7-9 variants of them, cheap enough to switch to at any time (with pix2pix
# too, and 1 goes back).
PRESETS = {
    1: Preset("as started"),
    **{key: Preset(name, ClassicSettings(style=name)) for key, name in enumerate(STYLES, start=2)},
    7: Preset("poster", ClassicSettings(style="comic", levels=5)),
    8: Preset("detailed", ClassicSettings(style="cel", levels=28, line_width=0.7)),
    9: Preset("fastest", ClassicSettings(style="cel", smooth=0, steady=0.0)),
}


def live_recipe(recipe: Recipe) -> tuple[Recipe, str | None]:
    """The recipe adjusted for live use by its backend's spec, before the backend is
    built (pix2pix: its fastest settings), one frame per call; and a note for the
    user (None: nothing changed). The newest-frame policy keeps latency bounded
    whatever this returns; it only sets the frame rate."""
    name, _ = backends.choose(recipe)
    settings, note = backends.spec(name).live(recipe.settings[name])
    if note is None:
        return recipe, None
    return replace(recipe.with_backend(name, settings), batch_size=1), note
