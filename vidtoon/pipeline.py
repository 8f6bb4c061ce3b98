"""The frame loop for a file: decode -> batch -> cartoonizer -> encode, with the audio carried along.
Where the backend can (classic), its stateless work runs on the decode thread, and
its cartoons reach the encoder as YUV planes, not RGB.

    from vidtoon.config import Job, Recipe
    from vidtoon.pipeline import run
    result = run(Job("in.mp4", "out.mp4"), Recipe(backend="classic", stabilize=True))
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .backends import Backend
from .cartoonizer import Cartoonizer
from .config import Job, Recipe
from .errors import SettingsError
from .io.files import check_output_path
from .io.inputs import too_large
from .io.reader import MAX_PIXELS, Frame, open_video
from .io.writer import VideoWriter
from .progress import NoProgress, Progress, stop_unfinished
from .stages import staged

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


def run(job: Job, recipe: Recipe = Recipe(), progress: Progress = NoProgress(), backend: Backend | None = None) -> Result:
    """Cartoonize job.input into job.output as `recipe` says. `backend` overrides
    recipe.backend with any object of the backend call shape."""
    # 1. Check the paths before any work.
    check_output_path(job.output, job.overwrite, job.input)
    started = time.perf_counter()
    with open_video(job.input) as video:
        # 2. Open the output (a temporary file until complete); this also checks the encoder choice.
        info = video.info
        shape = replace(info, width=2 * info.width) if recipe.compare else info
        if shape.width * shape.height > MAX_PIXELS:
            raise SettingsError(
                f"--compare makes frames of {too_large(shape.width, shape.height)}; leave --compare out for this video"
            )
        with VideoWriter(job.output, shape, recipe.encode, job.overwrite) as writer:
            # 3. The cartoonizer: backend, temporal stage, --compare.
            cartoonizer = ready(recipe, backend, progress)
            for note in writer.notes:
                progress.note(note)
            # 4. Batches as the backend likes them, capped by memory.
            wanted = cartoonizer.batch_size
            batch_size = max(1, min(wanted, BATCH_BYTES // (shape.width * shape.height * 3)))
            if batch_size < wanted:
                progress.note(f"frames of {shape.width}x{shape.height}: {batch_size} per batch, to bound memory")
            # 5. The loop, in three overlapping stages (stages.py): batches are decoded on
            #    one thread (with what the backend can prepare ahead), cartoonized here, and
            #    encoded on another.
            depth = max(1, min(QUEUE_DEPTH, BATCH_BYTES // (batch_size * shape.width * shape.height * 3)))

            def decode() -> Iterator[tuple[list[Frame], np.ndarray, Any]]:
                for batch in batched(video.frames(), batch_size):
                    sources = np.stack([f.rgb for f in batch])
                    yield batch, sources, cartoonizer.prepare(sources)

            # The cartoons straight as the encoder's planes where both sides can: no full-size RGB.
            matrix = writer.i420_matrix if cartoonizer.hands_planes else None

            def compute(item: tuple[list[Frame], np.ndarray, Any]) -> list[tuple[Frame, np.ndarray | None]]:
                batch, sources, prepared = item
                if matrix is not None:  # each source frame (for its timestamp) with its cartoon's planes
                    done = list(zip(batch, cartoonizer.planes(sources, matrix, prepared), strict=True))
                else:
                    cartoons = cartoonizer(sources, prepared)
                    done = [(frame.with_rgb(rgb), None) for frame, rgb in zip(batch, cartoons, strict=True)]
                progress.advance(len(done))
                return done

            def encode(frames: list[tuple[Frame, np.ndarray | None]]) -> None:
                for frame, planes in frames:
                    writer.write(frame, planes)

            progress.start(job.input.name, info.frame_count)
            try:
                staged(decode, compute, encode, finish=writer.close, depth=depth)
            except BaseException:
                stop_unfinished(progress)  # the bar shows how far it got
                raise
            progress.stop()
            frames = writer.frames_written
        warnings = (*video.warnings, *writer.warnings)
    return Result(job.output, frames, time.perf_counter() - started, cartoonizer.name, warnings)


def ready(recipe: Recipe, backend: Backend | None, progress: Progress) -> Cartoonizer:
    """The cartoonizer for `recipe` (with `backend`, if given), reset for a new clip;
    says which backend and why, and what runs after it."""
    cartoonizer, why = Cartoonizer.build(recipe, backend)
    progress.note(f"backend: {cartoonizer.name} ({why})")
    for note in cartoonizer.notes:
        progress.note(note)
    cartoonizer.reset()
    return cartoonizer


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
