"""One backend on the GPU at a time: a job holds the GPU for its whole run, and a preview
or webcam frame of a GPU backend (pix2pix) is refused while it does, in one line, rather
than waiting minutes or loading a second copy of the model beside it. CPU backends
(classic) are never held back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .. import backends
from ..config import Recipe
from ..errors import BackendUnavailable


class GpuBusy(BackendUnavailable):
    """A job holds the GPU."""


class Gpu:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    @staticmethod
    def wanted(recipe: Recipe) -> bool:
        return recipe.backend != "auto" and backends.spec(recipe.backend).gpu

    @contextmanager
    def job(self, recipe: Recipe) -> Iterator[None]:
        """Held for a job's run (waits for a preview that holds it: a frame's time)."""
        if not self.wanted(recipe):
            yield
            return
        with self._lock:
            yield

    @contextmanager
    def frame(self, recipe: Recipe) -> Iterator[None]:
        """Held for one preview or webcam frame; GpuBusy while a job has it."""
        if not self.wanted(recipe):
            yield
            return
        if not self._lock.acquire(blocking=False):
            raise GpuBusy(f"a {recipe.backend} job is using the GPU; previews and the webcam with {recipe.backend} "
                          "wait until it ends (classic runs beside it)")
        try:
            yield
        finally:
            self._lock.release()
