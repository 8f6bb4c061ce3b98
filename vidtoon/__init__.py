"""vidtoon: turn real video into cartoon video.

    import vidtoon
    vidtoon.cartoonize("in.mp4", "out.mp4", levels=6)        # a whole file
    for cartoon in vidtoon.cartoonize_frames(rgb_frames):    # frame by frame
        ...

Nothing heavy is imported here: the video and diffusion stacks load on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import numpy as np

    from .pipeline import Result

__all__ = ["__version__", "cartoonize", "cartoonize_frames"]


def cartoonize(input: str | Path, output: str | Path, **options: Any) -> Result:
    """Cartoonize a video file into `output`, keeping its audio and timing.

    Options mirror the CLI: backend="auto", levels, edges, smooth, stabilize
    (classic backend), codec, crf, preset (encoder), overwrite=False, batch_size=8,
    compare=False (original | cartoon side by side),
    model, prompt, steps, image_guidance, guidance, seed, max_side, size,
    offline, device, dtype, cross_frame, reuse_latents, keyframe_every
    (pix2pix backend; batch_size applies to it too),
    progress (a vidtoon.progress.Progress; silent by default).
    """
    from dataclasses import fields

    from .config import ClassicSettings, EncodeSettings, Pix2PixSettings, Settings
    from .errors import SettingsError
    from .pipeline import run
    from .progress import NoProgress

    progress = options.pop("progress", None) or NoProgress()
    classic = {k: options.pop(k) for k in ("levels", "edges", "smooth", "stabilize") if k in options}
    encode = {k: options.pop(k) for k in ("codec", "crf", "preset") if k in options}
    pix2pix = {f.name: options[f.name] for f in fields(Pix2PixSettings) if f.name in options}
    options = {k: v for k, v in options.items() if k not in pix2pix or k == "batch_size"}  # it sizes every backend's batches
    try:
        settings = Settings(
            input=input,
            output=output,
            classic=ClassicSettings(**classic),
            encode=EncodeSettings(**encode),
            pix2pix=Pix2PixSettings(**pix2pix),
            **options,
        )
    except TypeError as e:
        raise SettingsError(f"cartoonize(): {e}") from None
    return run(settings, progress)


def cartoonize_frames(frames: Iterable[np.ndarray], batch_size: int = 8, **classic: Any) -> Iterator[np.ndarray]:
    """Cartoonize RGB uint8 (H, W, 3) frames with the classic backend, lazily, in order."""
    import numpy as np

    from .backends.classic import ClassicBackend
    from .config import ClassicSettings

    from .pipeline import batched
    from .temporal import Stabilizer

    settings = ClassicSettings(**classic)
    backend = ClassicBackend(settings)
    stage = Stabilizer() if settings.stabilize else None
    for batch in batched(frames, batch_size):
        sources = np.stack(batch)
        cartoons = backend(sources)
        yield from cartoons if stage is None else stage(sources, cartoons)
