"""One picture through the cartoonizer: an image file, or one frame of a video, to an image file.

    vidtoon image photo.jpg -o cartoon.png --backend pix2pix --steps 10
    vidtoon image clip.mp4 -o frame30.png --frame 30
    vidtoon cartoonize clip.mp4 -o out.mp4 --preview-frame 30   # writes out.png

So a user can try settings in seconds before a long run. The cartoonizer is the
one `cartoonize` would use, with the same recipe, so frame N comes out as it
would in the video (pix2pix: the same seed and noise).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .backends import Backend
from .config import Job, Recipe
from .io.images import check_image_path, read_picture, write_image
from .progress import NoProgress, Progress


@dataclass(frozen=True)
class StillResult:
    output: Path
    seconds: float
    backend: str


def cartoonize_still(job: Job, recipe: Recipe = Recipe(), frame: int = 0, progress: Progress = NoProgress(),
                     backend: Backend | None = None) -> StillResult:
    """Cartoonize job.input (an image, or frame `frame` of a video) into job.output."""
    from .pipeline import ready

    check_image_path(job.output, job.overwrite, job.input)
    started = time.perf_counter()
    rgb = read_picture(job.input, frame)
    cartoonizer = ready(recipe, backend, progress)
    write_image(job.output, cartoonizer.picture(rgb))
    return StillResult(job.output, time.perf_counter() - started, cartoonizer.name)
