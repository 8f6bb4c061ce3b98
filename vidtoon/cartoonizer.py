"""Source frames in, cartoon frames out: the one object every loop uses (a video
file in pipeline.run, one picture in still, the webcam in live, and
vidtoon.cartoonize_frames).

    cartoonizer, why = Cartoonizer.build(recipe)
    cartoonizer.reset()                   # before each clip
    cartoons = cartoonizer(sources)       # uint8 (N, H, W, 3) -> uint8 (N, H, W or 2W, 3)

A backend may do part of its work ahead, where it needs no state (prepare(): classic),
so that a loop can run that part on another thread: cartoonizer(sources, prepared).

Live, a backend may offer a stream batch instead (stream(): frames in, cartoons out some
frames later, then finish()).

Per batch:
1. the backend (backends/): sources -> cartoons;
2. the temporal stage, with --stabilize (temporal/stabilize.py): it needs the
   sources as well as the cartoons, and nothing from the backend, so it runs
   after any backend;
3. --compare: each source and its cartoon side by side, twice as wide.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backends
from .backends import Backend
from .config import Recipe
from .temporal.stabilize import Stabilizer


class Cartoonizer:
    def __init__(self, backend: Backend, stabilize: bool = False, compare: bool = False,
                 batch_size: int | None = None) -> None:
        self.backend = backend
        self.stage = Stabilizer() if stabilize else None
        self.compare = compare
        self.batch_size = batch_size or backend.batch_size  # frames per call (the pipeline caps it by memory)

    @classmethod
    def build(cls, recipe: Recipe, backend: Backend | None = None) -> tuple[Cartoonizer, str]:
        """The cartoonizer `recipe` describes, with its backend loaded (or `backend`,
        any object of the backend call shape); and why that backend."""
        if backend is None:  # it was built for recipe.batch_size already (keyframes: K times that)
            backend, why = backends.load(recipe)
            return cls(backend, recipe.stabilize, recipe.compare), why
        return cls(backend, recipe.stabilize, recipe.compare, recipe.batch_size), "given"

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def notes(self) -> list[str]:
        """What runs besides the backend, for the user (one line each)."""
        return [f"temporal stage: {self.stage.name}"] if self.stage is not None else []

    def reset(self) -> None:
        """Forget the last clip (the backend's state, the stabiliser's previous frame)."""
        self.backend.reset()
        if self.stage is not None:
            self.stage.reset()

    def stream(self) -> Any:
        """For live use: the backend's stream batch, or None (then frame by frame). A
        stream takes one frame a push and hands cartoons back some frames later, each with
        the tag pushed with its frame (backends/pix2pix/stream.py); finish() them."""
        make = getattr(self.backend, "stream", None)
        return make() if make is not None else None

    def picture(self, source: np.ndarray) -> np.ndarray:
        """One (H, W, 3) picture that is not part of a clip. A backend may treat it as
        such (classic: crisp borders, since nothing moves) through its own picture()."""
        own = getattr(self.backend, "picture", None)
        cartoon = own(source)[None] if own is not None else self.backend(source[None])
        return self.finish(source[None], cartoon)[0]

    def prepare(self, sources: np.ndarray) -> Any:
        """The backend's work on `sources` that reads none of its state (its prepare()), to
        be done on any thread and handed to __call__ or planes(); None if it has none."""
        own = getattr(self.backend, "prepare", None)
        return own(sources) if own is not None else None

    def __call__(self, sources: np.ndarray, prepared: Any = None) -> np.ndarray:
        """sources: uint8 (N, H, W, 3) RGB. Returns a new uint8 array (N, H, W, 3), or (N, H, 2W, 3) with compare.
        prepared: prepare(sources), where it was done ahead."""
        # 1. The backend.
        cartoons = self.backend(sources) if prepared is None else self.backend(sources, prepared)
        return self.finish(sources, cartoons)

    @property
    def hands_planes(self) -> bool:
        """Whether the cartoons can come as an encoder's I420 planes (planes()): the backend
        makes them, and no later step needs them as RGB."""
        return hasattr(self.backend, "planes") and self.stage is None and not self.compare

    def planes(self, sources: np.ndarray, matrix: np.ndarray, prepared: Any = None) -> np.ndarray:
        """The cartoons __call__ would return, as uint8 (N, 3H/2, W) 8-bit I420 planes by
        this RGB -> Y'CbCr matrix (io/yuv.py), for an encoder; only where hands_planes."""
        if prepared is None:
            return self.backend.planes(sources, matrix)
        return self.backend.planes(sources, matrix, prepared)

    def finish(self, sources: np.ndarray, cartoons: np.ndarray) -> np.ndarray:
        """Steps 2-3, after the backend's cartoons of `sources` (a stream's, too)."""
        # 2. The temporal stage, which needs the sources too.
        if self.stage is not None:
            cartoons = self.stage(sources, cartoons)
        # 3. Side by side.
        if self.compare:
            cartoons = np.concatenate([sources, cartoons], axis=2)
        return cartoons
