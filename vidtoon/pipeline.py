"""The frame loop: decode -> batch -> backend -> encode, with the audio carried along.

    from vidtoon.config import Settings
    from vidtoon.pipeline import run
    result = run(Settings(input="in.mp4", output="out.mp4"))
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from . import backends
from .backends import Backend
from .config import Settings
from .errors import SettingsError
from .progress import NoProgress, Progress
from .reader import MAX_PIXELS, MAX_SIZE_TEXT, Frame, open_video
from .stages import staged
from .temporal import temporal_stage
from .writer import VideoWriter

T = TypeVar("T")

# At most this many bytes of RGB frames in one batch, whatever --batch-size asks:
# 43 frames of 1080p, 10 of 4K, 2 of 8K. Memory then depends on neither the
# video's length nor its frame size times the batch size.
BATCH_BYTES = 256 * 2**20

# Batches waiting between two stages, at most; fewer where BATCH_BYTES would be
# exceeded, so what waits in one queue is bounded by the same cap as a batch.
QUEUE_DEPTH = 2


@dataclass(frozen=True)
class Result:
    output: Path
    frames: int
    seconds: float
    backend: str
    warnings: tuple[str, ...] = ()  # what was lost from a damaged input (salvaged, not refused)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run(settings: Settings, progress: Progress = NoProgress(), backend: Backend | None = None) -> Result:
    """Cartoonize settings.input into settings.output. `backend` overrides
    settings.backend with any object of the backend call shape."""
    # 1. Check the paths before any work.
    check_paths(settings)
    started = time.perf_counter()
    with open_video(settings.input) as video:
        # 2. Open the output (a temporary file until complete); this also checks the encoder choice.
        shape = replace(video.info, width=2 * video.info.width) if settings.compare else video.info
        if shape.width * shape.height > MAX_PIXELS:
            raise SettingsError(
                f"--compare makes frames of {shape.width}x{shape.height}, larger than vidtoon writes, "
                f"{MAX_SIZE_TEXT}; leave --compare out for this video"
            )
        with VideoWriter(settings.output, shape, settings.encode) as writer:
            # 3. Pick and build the backend.
            backend = ready_backend(settings, backend, progress)
            stage = temporal_stage(settings, backend.name)  # optional, fresh for this clip
            if stage is not None:
                progress.note(f"temporal stage: {stage.name}")
            for note in writer.notes:
                progress.note(note)
            if writer.size != (shape.width, shape.height):
                width, height = writer.size
                progress.note(f"odd size {shape.width}x{shape.height}: padded to {width}x{height}")
            # A backend may size its own batches (pix2pix: to the GPU's memory); memory caps them all.
            wanted = getattr(backend, "batch_size", None) or settings.batch_size
            batch_size = max(1, min(wanted, BATCH_BYTES // (shape.width * shape.height * 3)))
            if batch_size < wanted:
                progress.note(f"frames of {shape.width}x{shape.height}: {batch_size} per batch, to bound memory")
            # 4. The loop, in three overlapping stages (stages.py): batches are decoded on
            #    one thread, go through the backend here, and are encoded on another.
            depth = max(1, min(QUEUE_DEPTH, BATCH_BYTES // (batch_size * shape.width * shape.height * 3)))

            def decode() -> Iterator[tuple[list[Frame], np.ndarray]]:
                for batch in batched(video.frames(), batch_size):
                    yield batch, np.stack([f.rgb for f in batch])

            def compute(item: tuple[list[Frame], np.ndarray]) -> list[Frame]:
                batch, sources = item
                cartoons = backend(sources)
                if stage is not None:  # 4b. e.g. --stabilize: needs the sources too
                    cartoons = stage(sources, cartoons)
                if settings.compare:
                    cartoons = [np.hstack([frame.rgb, rgb]) for frame, rgb in zip(batch, cartoons, strict=True)]
                done = [frame.with_rgb(rgb) for frame, rgb in zip(batch, cartoons, strict=True)]
                progress.advance(len(done))
                return done

            def encode(frames: list[Frame]) -> None:
                for frame in frames:
                    writer.write(frame)

            progress.start(settings.input.name, video.info.frame_count)
            try:
                staged(decode, compute, encode, finish=writer.close, depth=depth)
            finally:
                progress.stop()
            frames = writer.frames_written
        warnings = (*video.warnings, *writer.warnings)
    return Result(settings.output, frames, time.perf_counter() - started, backend.name, warnings)


def ready_backend(settings: Settings, backend: Backend | None, progress: Progress) -> Backend:
    """The backend `settings` asks for (or the one given), reset for a new clip; says which and why."""
    if backend is None:
        backend, why = backends.load(settings)
    else:
        why = "given"
    progress.note(f"backend: {backend.name} ({why})")
    backend.reset()
    return backend


def check_paths(settings: Settings) -> None:
    """Refuse to overwrite the input, or an existing output unless asked to."""
    source, target = settings.input, settings.output
    if target.exists() or target.is_symlink():
        if target.is_dir():
            raise SettingsError(f"{target}: is a directory; give an output file name")
        if source.exists() and target.exists() and target.samefile(source):
            raise SettingsError(f"{target}: is the input file; choose another output name")
        if not settings.overwrite:
            raise SettingsError(f"{target}: already exists; add --overwrite (-y) to replace it")
    if not target.parent.is_dir():
        raise SettingsError(f"{target.parent}: no such directory for the output")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Group an iterable into lists of `size` (the last may be shorter), lazily."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
