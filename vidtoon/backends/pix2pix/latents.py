"""Flow-guided latent reuse for the pix2pix backend (--reuse-latents STRENGTH), in
groups of N frames (--reuse-batch N) so that the UNet batches.

A clip's frames, counted from reset() (clip index i = 0, 1, ...), fall in groups of N
consecutive frames, group g = frames [gN, gN + N), except that frame 0 is a group of its
own (group 0 is then frames 1 to N - 1). Every frame t of a group starts from the FINAL
latent of one anchor, the last frame of the group before (gN - 1, or frame 0 for group 0),
warped along the source's optical flow a -> t onto frame t's grid and noised to an intermediate
timestep, and runs only the remaining steps (ip2p.denoise(start=k)):

    k = round(steps * (1 - STRENGTH)), at most steps - 1 (at least one step runs)
    x0 = c * warp(anchor's final latent) + (1 - c) * this frame's own image latent
    latents = scheduler.add_noise(x0, clip noise, the first timestep of the run from step k)

c is the source's per-pixel confidence (temporal.flow.Motion: forward-backward check,
inside the frame, colours match) for the motion a -> t, averaged onto the latent grid.
Where it is 0 (disocclusions, new content at the edges) the warp is not used at all:
those pixels start like img2img (SDEdit) from the frame's own latent, with the same
fresh noise at the same level sigma_k as the rest. Why not pure noise there: after
add_noise every pixel must sit at one noise level for the remaining steps; pure noise
at the start level would be left half denoised, and a zero latent noised to sigma_k
comes out as flat grey. The blend happens BEFORE add_noise so one noise draw covers
both. The noise is the clip's fixed tensor: deterministic.

So the frames of a group need only the anchor, not each other: they run the same steps
from k in one batched UNet loop, and the next group needs only this group's last frame.
N = 1 is frame-by-frame reuse (each frame from the one before, one frame a UNet call).
The price of N > 1: a frame is warped from up to N frames back.

Frame 0 is a group of its own because it has no anchor and runs all steps: in a group of N
it would make N frames run all steps, and the clip's start would cost more than N = 1's.
The other groups keep to multiples of N, as the callers' batches (8, 16, ...) do, so that
a batch holds whole groups.

Frame 0 (no anchor), a change of frame size and a scene cut (temporal.flow.CUT_CONFIDENCE,
for the motion a -> t) run all steps from the clip noise. Once a
frame of a group is a cut, so is every later frame of that group (their anchor is from
before the cut); the next group's anchor is this group's last frame as usual. A group
with both kinds runs as two batched loops.

The groups follow the clip index, not the backend's calls: a call may end inside a group
(its frames run as a smaller batch, with the same results), and the anchor, the clip
index and the cut carry to the next call. The flows need only the source frames, so
look_ahead() works out a batch's motions on a CPU thread, in order, while the VAE and
the UNet work; starts() takes each when its frame comes.
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


def warped_latents(scheduler: Any, motions: list[Any], anchor: Any, own: Any, noise: Any, k: int) -> Any:
    """reused_latents() for frames whose source motions from the anchor are `motions`
    (temporal.flow.Motion): the anchor's final latent (1, 4, h, w) warped along each,
    blended by each motion's confidence with the frame's own scaled image latent (n, 4, h, w)."""
    import torch

    height, width = own.shape[2:]
    grid = np.ascontiguousarray(anchor[0].permute(1, 2, 0).float().cpu().numpy())  # once for all the frames
    # (n, h, w, C) arrays seen as NCHW: the layout (channels last) that one frame's always had
    warped = torch.from_numpy(np.stack([m.warp(grid) for m in motions])).permute(0, 3, 1, 2)
    confidence = torch.from_numpy(np.stack([np.ascontiguousarray(m.confidence_at((width, height)))
                                            for m in motions]))[:, None]
    like = dict(device=own.device, dtype=own.dtype)
    return reused_latents(scheduler, warped.to(**like), own, confidence.to(**like), noise, k)


class LatentReuse:
    """The per-clip state, in two halves. The flow's (advanced by follow(), in order, on
    the flow thread when looked ahead): the clip index of the next frame it sees, the
    anchor's source frame, a cut in the group. The latents' (on the caller's thread):
    the clip index of the next frame to denoise, the anchor's final latent.
    reset() before a clip."""

    def __init__(self, strength: float, steps: int, group: int = 1) -> None:
        from ...temporal.flow import MotionTracker  # OpenCV: only when reuse is on (benchmarks/gpu.py runs without it)

        if group < 1:
            raise ValueError(f"group must be at least 1 frame, got {group}")
        self.k, self.group = start_step(steps, strength), group
        self._motion = MotionTracker()
        self._pool: Any = None  # the flow's thread, started by the first look_ahead()
        self._ahead: list[Any] = []  # futures of the motions of the frames to come, in order
        self.reset()

    def reset(self) -> None:
        self.settle()
        self._seen, self._anchor_source, self._cut = 0, None, False  # the flow's half
        self._done, self._anchor = 0, None  # the latents' half: (1, 4, h, w) final latent of the anchor

    def snapshot(self) -> tuple[Any, ...]:
        self.settle()
        return self._seen, self._anchor_source, self._cut, self._done, self._anchor

    def restore(self, state: tuple[Any, ...]) -> None:
        """Undo a batch that failed part-way (the backend retries it)."""
        self.settle()
        self._seen, self._anchor_source, self._cut, self._done, self._anchor = state

    def opens(self, i: int) -> bool:
        """Whether clip frame i is the first of its group (0, 1, then N, 2N, ...)."""
        return i <= 1 or i % self.group == 0

    def closes(self, i: int) -> bool:
        """Whether clip frame i is the last of its group, the next group's anchor (0, then N - 1, 2N - 1, ...)."""
        return i == 0 or i % self.group == self.group - 1

    def segments(self, count: int) -> list[tuple[int, int]]:
        """The next `count` frames cut at the group boundaries: (start, stop) ranges of the batch."""
        bounds, i = [], 0
        while i < count:
            j = self._done + i
            last = 0 if j == 0 else j // self.group * self.group + self.group - 1  # the clip index that closes j's group
            stop = min(count, i + last - j + 1)
            bounds.append((i, stop))
            i = stop
        return bounds

    def follow(self, source: np.ndarray) -> Any:
        """The flow's half, for the next frame in clip order: its Motion from the anchor,
        or None where it starts from the noise (frame 0, a size change, a cut, or after
        a cut in its group)."""
        i, self._seen = self._seen, self._seen + 1
        if self.opens(i):  # a new group: a new anchor, no cut yet
            self._cut = False
        motion = None
        if self._anchor_source is not None and not self._cut:
            motion = self._motion.between(self._anchor_source, source)
            if motion is None or motion.cut:
                self._cut, motion = True, None
        if self.closes(i):  # the group's last frame: the next group's anchor
            self._anchor_source = source.copy()  # not a view into the caller's batch
        return motion

    def look_ahead(self, sources: np.ndarray) -> None:
        """Start the motions of `sources` (the next frames starts() will get, in order) on the flow thread."""
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidtoon-flow")
        self._ahead += [self._pool.submit(self.follow, frame) for frame in sources]  # one thread: in order

    def settle(self) -> None:
        """Drop the motions not taken, after the running one has finished (the flow's half is then still)."""
        from concurrent.futures import wait

        for future in self._ahead:
            future.cancel()
        wait(self._ahead)
        self._ahead = []

    def starts(self, scheduler: Any, sources: np.ndarray, image_latents: Any, noise: Any, scaling: float) -> list[tuple[int, Any]]:
        """Where the frames of one segment (within one group) start: (first step, latents)
        runs in frame order, the reused frames at step k, then those from step 0 (every frame
        from the first cut on). sources uint8 (n, H, W, 3), image_latents (n, 4, h, w)
        unscaled, noise (1, 4, h, w) standard normal; scheduler.set_timesteps has run."""
        motions = [self._ahead.pop(0).result() if self._ahead else self.follow(s) for s in sources]
        anchor = self._anchor
        if anchor is None or anchor.shape[1:] != image_latents.shape[1:]:
            motions = [None] * len(motions)
        reused = motions.index(None) if None in motions else len(motions)  # follow() makes them a prefix
        runs = []
        if reused:
            runs.append((self.k, warped_latents(scheduler, motions[:reused], anchor, image_latents[:reused] * scaling,
                                                noise, self.k)))
        if reused < len(motions):
            runs.append((0, noise.expand(len(motions) - reused, -1, -1, -1) * scheduler.init_noise_sigma))
        return runs

    def keep(self, finals: Any) -> None:
        """The segment's final latents, in order: the group's last becomes the next anchor."""
        self._done += len(finals)
        if self.closes(self._done - 1):
            self._anchor = finals[-1:]
