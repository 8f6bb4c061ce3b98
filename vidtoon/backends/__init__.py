"""Backends turn a batch of RGB frames into a batch of cartoon frames.

Every backend has the same call shape, so no loop ever branches on which one runs:

    backend(batch: uint8 (N, H, W, 3)) -> uint8 (N, H, W, 3)
    backend.reset()        # forget per-clip state before a new clip
    backend.name, backend.summary, backend.batch_size   # who, in words, frames per call
    backend.planes(batch, matrix)   # optional: the same cartoons as an encoder's I420 planes (classic)
    backend.prepare(batch)          # optional: stateless work, for any thread, then backend(batch, prepared)

Each backend is a package here that exports one SPEC (a BackendSpec): its
settings class (whose option() fields become CLI options), how to load it,
whether it can run here, whether it wants a GPU and how it adapts to live use.
Everything else (cli, live, batch workers, Ray) loops over REGISTRY. A new
backend is its own package plus one name in REGISTRY.

Spec modules import nothing heavy: a backend's code (pix2pix: torch) is
imported by its load().
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..config import Recipe

# Every backend, in the order `auto` tries them: the first that can run here wins.
REGISTRY = ("pix2pix", "classic")


class Backend(Protocol):
    name: str
    summary: str  # one line for the "backend: ..." note: model, device, options that matter
    batch_size: int  # frames per call it runs best with (the pipeline caps it by memory)

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def _always(settings: Any) -> tuple[bool, str]:
    return True, "runs anywhere"


def _as_is(settings: Any) -> tuple[Any, str | None]:
    return settings, None


@dataclass(frozen=True)
class BackendSpec:
    """What the rest of vidtoon knows about one backend."""

    name: str
    help: str  # a few words, for --backend's help
    settings: type  # a frozen dataclass; its option() fields are the backend's CLI options
    load: Callable[[Any, int | None], Backend]  # (settings, batch size or None: its own) -> a backend
    available: Callable[[Any], tuple[bool, str]] = _always  # can it run here, and why (cheap; for auto)
    gpu: bool = False  # wants a GPU: batch gives each worker one, Ray reserves one per actor
    live: Callable[[Any], tuple[Any, str | None]] = _as_is  # its settings for live use, and a note if changed


def spec(name: str) -> BackendSpec:
    """The spec of the backend called `name` (one of REGISTRY)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; the backends are {', '.join(REGISTRY)}")
    return importlib.import_module(f"{__name__}.{name}").SPEC


def specs() -> list[BackendSpec]:
    return [spec(name) for name in REGISTRY]


def check_batch(batch: object, name: str) -> None:
    """Raise ValueError unless `batch` is the call shape's input: uint8 (N, H, W, 3) RGB."""
    if not (isinstance(batch, np.ndarray) and batch.dtype == np.uint8 and batch.ndim == 4 and batch.shape[-1] == 3):
        shape, dtype = getattr(batch, "shape", None), getattr(batch, "dtype", type(batch))
        raise ValueError(f"{name} backend expects a uint8 (N, H, W, 3) RGB batch, got shape {shape} dtype {dtype}")


def choose(recipe: Recipe) -> tuple[str, str]:
    """The backend `recipe` runs, `auto` resolved with each backend's own settings
    (so pix2pix's --model is the model checked), and a one-line reason."""
    if recipe.backend != "auto":
        return recipe.backend, "as asked"
    passed = []
    for candidate in specs():
        ready, why = candidate.available(recipe.settings[candidate.name])
        if ready:
            return candidate.name, f"auto: {'; '.join(passed)}" if passed else why
        passed.append(f"{candidate.name} cannot run here, {why}")
    raise AssertionError("the last backend in REGISTRY runs anywhere")


def resolve(recipe: Recipe) -> tuple[Recipe, str]:
    """`recipe` with `auto` replaced by the backend chosen here, and why."""
    name, why = choose(recipe)
    return recipe.with_backend(name), why


def load(recipe: Recipe) -> tuple[Backend, str]:
    """Build the backend that `recipe` asks for; return it and why it was picked."""
    name, why = choose(recipe)
    backend = spec(name).load(recipe.settings[name], recipe.batch_size)
    return backend, f"{why}; {backend.summary}" if backend.summary else why
