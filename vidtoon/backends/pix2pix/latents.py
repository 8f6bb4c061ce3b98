"""Flow-guided latent reuse for the pix2pix backend (--reuse-latents STRENGTH).

Frame t starts from frame t-1's FINAL latent, warped along the source's optical
flow onto frame t's grid and noised to an intermediate timestep, and runs only
the remaining steps (ip2p.denoise(start=k)):

    k = round(steps * (1 - STRENGTH)), at most steps - 1 (at least one step runs)
    x0 = c * warp(previous final latent) + (1 - c) * this frame's own image latent
    latents = scheduler.add_noise(x0, clip noise, the first timestep of the run from step k)

c is the source's per-pixel confidence (temporal.flow.Motion: forward-backward check,
inside the frame, colours match), averaged onto the latent grid. Where it is 0
(disocclusions, new content at the edges) the warp is not used at all: those
pixels start like img2img (SDEdit) from the frame's own latent, with the same
fresh noise at the same level sigma_k as the rest. Why not pure noise there:
after add_noise every pixel must sit at one noise level for the remaining steps;
pure noise at the start level would be left half denoised, and a zero latent
noised to sigma_k comes out as flat grey. The blend happens BEFORE add_noise so
one noise draw covers both. The noise is the clip's fixed tensor: deterministic.

The first frame of a clip, the first after reset(), a change of frame size and
a scene cut (temporal.flow.CUT_CONFIDENCE) run all steps from the clip noise. This is
sequential by nature (frame t needs t-1's result), so the backend denoises one
frame at a time in this mode: fewer steps per frame, but no batching of the UNet
(docs/pix2pix.md, "Latent reuse does not batch"). The flow needs only the source
frames, so look_ahead() works out a batch's flows on a CPU thread, in order, while
the model denoises the first frames; start() takes each when its frame comes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def start_step(steps: int, strength: float) -> int:
    """The first step a reused frame runs: round(steps * (1 - strength)), at most steps - 1."""
    return min(steps - 1, round(steps * (1.0 - strength)))


def reused_latents(scheduler: Any, warped: Any, own: Any, confidence: Any, noise: Any, k: int) -> Any:
    """The starting latents at timesteps[k]: the warped previous latent where confidence
    is 1, the frame's own (scaled) image latent where it is 0, blended between, then
    noised. All tensors (N, 4, h, w) except confidence (N or 1, 1, h, w) in [0, 1];
    scheduler.set_timesteps has run."""
    from .ip2p import remaining_timesteps

    clean = confidence * warped + (1 - confidence) * own
    first = remaining_timesteps(scheduler, k)[:1]  # the noise level the run from step k starts at
    return scheduler.add_noise(clean, noise.expand_as(clean), first.repeat(len(clean)))


class LatentReuse:
    """The per-clip state: the previous source frame (inside the tracker) and the
    previous frame's final latent. reset() before a clip."""

    def __init__(self, strength: float, steps: int) -> None:
        from ...temporal.flow import MotionTracker  # OpenCV: only when reuse is on (benchmarks/gpu.py runs without it)

        self.k = start_step(steps, strength)
        self._motion = MotionTracker()
        self._previous: Any = None  # (1, 4, h, w) final latent of the last frame
        self._pool: Any = None  # the flow's thread, started by the first look_ahead()
        self._ahead: list[Any] = []  # futures of the motions of the frames to come, in order

    def reset(self) -> None:
        self.settle()
        self._motion.reset()
        self._previous = None

    def snapshot(self) -> tuple[Any, Any]:
        self.settle()
        return self._motion._small, self._previous

    def restore(self, state: tuple[Any, Any]) -> None:
        """Undo a batch that failed part-way (the backend retries it)."""
        self.settle()
        self._motion._small, self._previous = state

    def look_ahead(self, sources: np.ndarray) -> None:
        """Start the flows of `sources` (the next frames start() will get, in order) on the flow thread."""
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidtoon-flow")
        self._ahead += [self._pool.submit(self._motion, frame) for frame in sources]  # one thread: in order

    def settle(self) -> None:
        """Drop the flows not taken, after the running one has finished (the tracker is then still)."""
        from concurrent.futures import wait

        for future in self._ahead:
            future.cancel()
        wait(self._ahead)
        self._ahead = []

    def start(self, scheduler: Any, source: np.ndarray, image_latent: Any, noise: Any, scaling: float) -> tuple[Any, int]:
        """(latents, first step) for one frame: source uint8 (H, W, 3), image_latent (1, 4, h, w)
        unscaled, noise (1, 4, h, w) standard normal; scheduler.set_timesteps has run."""
        import torch

        motion = self._ahead.pop(0).result() if self._ahead else self._motion(source)
        previous = self._previous
        if motion is None or previous is None or previous.shape != image_latent.shape or motion.cut:
            return noise * scheduler.init_noise_sigma, 0
        height, width = image_latent.shape[2:]
        grid = np.ascontiguousarray(previous[0].permute(1, 2, 0).float().cpu().numpy())
        warped = torch.from_numpy(motion.warp(grid)).permute(2, 0, 1)[None]
        confidence = torch.from_numpy(np.ascontiguousarray(motion.confidence_at((width, height))))[None, None]
        like = dict(device=image_latent.device, dtype=image_latent.dtype)
        latents = reused_latents(scheduler, warped.to(**like), image_latent * scaling, confidence.to(**like), noise, self.k)
        return latents, self.k

    def keep(self, final: Any) -> None:
        """The frame's final latent, the start of the next."""
        self._previous = final
