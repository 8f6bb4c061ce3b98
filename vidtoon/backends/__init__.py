"""Backends turn a batch of RGB frames into a batch of cartoon frames.

Every backend has the same call shape, so the frame loop never branches on
which one runs:

    backend(batch: uint8 (N, H, W, 3)) -> uint8 (N, H, W, 3)
    backend.reset()   # forget per-clip state before a new clip

Modules are imported only when their backend is chosen (pix2pix pulls torch).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..config import Settings
from ..errors import BackendUnavailable


class Backend(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def check_batch(batch: object, name: str) -> None:
    """Raise ValueError unless `batch` is the call shape's input: uint8 (N, H, W, 3) RGB."""
    if not (isinstance(batch, np.ndarray) and batch.dtype == np.uint8 and batch.ndim == 4 and batch.shape[-1] == 3):
        shape, dtype = getattr(batch, "shape", None), getattr(batch, "dtype", type(batch))
        raise ValueError(f"{name} backend expects a uint8 (N, H, W, 3) RGB batch, got shape {shape} dtype {dtype}")


def choose(requested: str, model: str | None = None) -> tuple[str, str]:
    """Resolve `auto` to a backend name, with a one-line reason (`model`: pix2pix's --model)."""
    if requested != "auto":
        return requested, "as asked"
    from . import pix2pix

    ready, why = pix2pix.availability(model or pix2pix.MODEL_ID)
    if ready:
        return "pix2pix", why
    return "classic", f"auto: pix2pix cannot run here, {why}"


def load(settings: Settings) -> tuple[Backend, str]:
    """Build the backend that `settings` asks for; return it and why it was picked."""
    name, why = choose(settings.backend, settings.pix2pix.model)
    if name == "classic":
        from .classic import ClassicBackend

        return ClassicBackend(settings.classic), why
    if name == "pix2pix":
        from . import pix2pix

        backend = pix2pix.load(settings)
        if settings.pix2pix.keyframe_every > 1:
            from ..keyframes import KeyframeBackend

            backend = KeyframeBackend(backend, settings.pix2pix.keyframe_every)
        return backend, f"{why}; {backend.summary}"
    raise BackendUnavailable(f"unknown backend {name!r}")
