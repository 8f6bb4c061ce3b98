"""Expected cartoons for tests that watch a live session, where which frame the
clip's palette was fitted on depends on timing: the cartoons of every frame
under palettes fitted on each of a few frames, nothing carried over."""

from __future__ import annotations

import dataclasses

import numpy as np

from vidtoon.backends.classic import ClassicSettings
from vidtoon.backends.classic.filter import ClassicBackend


def cartoons(frames: list[np.ndarray], settings: ClassicSettings = ClassicSettings(), fitted_on=range(4),
             keep=lambda cartoon: cartoon) -> list[np.ndarray]:
    """keep(cartoon) is what is kept of each (e.g. a thumbnail, to hold many)."""
    out = []
    for fit in fitted_on:
        backend = ClassicBackend(dataclasses.replace(settings, steady=0.0))
        backend(frames[fit][None])
        out += [keep(backend(frame[None])[0]) for frame in frames]
    return out
