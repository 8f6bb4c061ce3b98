"""vidtoon: turn real video into cartoon video.

    import vidtoon
    vidtoon.cartoonize("in.mp4", "out.mp4", levels=6)        # a whole file
    for cartoon in vidtoon.cartoonize_frames(rgb_frames):    # frame by frame
        ...
    with vidtoon.open_video("in.mp4") as video: ...          # the I/O underneath
    vidtoon.VideoWriter, vidtoon.Live                        # encode frames; the webcam loop

Nothing heavy is imported here: the video and diffusion stacks load on first use.
The package, by the path of one frame:

    config       Recipe (how frames become cartoons) and Job (from where, to where)
    io/          reading and writing video and pictures, file safety
    backends/    the cartoon backends (classic, pix2pix) behind one call shape
    cartoonizer  backend + optional stabiliser + --compare: used by every loop
    temporal/    optical flow, the stabiliser, flicker metrics
    pipeline     the loop for a file; stages: its decode/compute/encode threads
    still        one picture; live/ the webcam; batch/ folders of clips, locally or on Ray
    cli/         the `vidtoon` command: the only place that prints and exits
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import numpy as np

    from .pipeline import Result

__all__ = ["Live", "VideoWriter", "__version__", "cartoonize", "cartoonize_frames", "open_video"]

_LAZY = {  # public names whose modules load on first use
    "open_video": ("vidtoon.io.reader", "open_video"),
    "VideoWriter": ("vidtoon.io.writer", "VideoWriter"),
    "Live": ("vidtoon.live.session", "Live"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'vidtoon' has no attribute {name!r}")


def cartoonize(input: str | Path, output: str | Path, **options: Any) -> Result:
    """Cartoonize a video file into `output`, keeping its audio and timing.

    Options mirror the CLI, by their Python names: backend="auto", stabilize,
    compare, batch_size; codec, crf, preset, pix_fmt, audio, anim_size, anim_fps (encoder); overwrite=False; each
    backend's settings by field name (classic: levels, edges, smooth; pix2pix:
    model, prompt, steps, image_guidance, guidance, seed, max_side, size,
    offline, device, dtype, cross_frame, reuse_latents, reuse_batch, keyframe_every,
    fast_vae); progress (a vidtoon.progress.Progress; silent by default).
    """
    from .config import Job, Recipe
    from .pipeline import run
    from .progress import NoProgress

    progress = options.pop("progress", None) or NoProgress()
    overwrite = options.pop("overwrite", False)
    return run(Job(input, output, overwrite), Recipe.from_options(**options), progress)


def cartoonize_frames(frames: Iterable[np.ndarray], batch_size: int = 8, **options: Any) -> Iterator[np.ndarray]:
    """Cartoonize RGB uint8 (H, W, 3) frames lazily, in order, with the classic backend
    unless backend= says otherwise; the same options as cartoonize() (stabilize too)."""
    import numpy as np

    from .cartoonizer import Cartoonizer
    from .config import Recipe
    from .pipeline import batched

    options.setdefault("backend", "classic")
    cartoonizer, _ = Cartoonizer.build(Recipe.from_options(**options, batch_size=batch_size))
    cartoonizer.reset()
    for batch in batched(frames, batch_size):
        yield from cartoonizer(np.stack(batch))
