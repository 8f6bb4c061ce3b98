"""What a live session shows: the recipe as its backend adapts it for live use
(live_recipe), and the looks the number keys switch to (PRESETS)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import backends
from ..backends.classic import ClassicSettings
from ..config import Recipe


@dataclass(frozen=True)
class Preset:
    """A look the number keys switch to."""

    name: str
    classic: ClassicSettings | None = None  # None: the backend and settings the session started with


# Key 1 is always what the command line asked for (any backend); 2-9 are classic
# looks, cheap enough to switch to at any time (with pix2pix too, and 1 goes back).
PRESETS = {
    1: Preset("as started"),
    2: Preset("flat", ClassicSettings(levels=4, edges=1.0, smooth=4)),
    3: Preset("bold ink", ClassicSettings(levels=6, edges=2.5, smooth=2)),
    4: Preset("soft, no outlines", ClassicSettings(levels=8, edges=0.0, smooth=3)),
    5: Preset("detailed", ClassicSettings(levels=16, edges=0.7, smooth=1)),
    6: Preset("poster", ClassicSettings(levels=3, edges=1.5, smooth=5)),
    7: Preset("sketch", ClassicSettings(levels=24, edges=3.0, smooth=0)),
    8: Preset("pastel", ClassicSettings(levels=10, edges=0.4, smooth=6)),
    9: Preset("fastest", ClassicSettings(levels=8, edges=1.0, smooth=0)),
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
