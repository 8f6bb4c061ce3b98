"""The live stream batch (StreamDiffusion's Stream Batch): camera frames at staggered
denoising steps, all of them in one UNet call a frame.

    stream = backend.stream()                 # Pix2PixBackend.stream(); None with --cross-frame
    for tag, cartoon in stream.push(frame, tag):   # each camera frame; push(None) only advances
        ...                                   # in clip order, a few frames after their own frame
    finished = stream.drain()                 # the frames still in flight, when the source ends

Frame by frame, a frame's S steps are S UNet calls of one frame each, and the next frame
waits for them. In the stream each push adds the new frame at its first step and runs ONE
UNet call over every frame in flight, each at its own timestep; the frame that took its
last step is decoded and comes out. So a frame costs one UNet call of a bigger batch (what
a GPU runs at nearly the same speed) instead of S of one, and its cartoon comes out S - 1
frames after it: the latency StreamDiffusion trades for the throughput.

It stays exact. Every frame in flight owns a copy of the scheduler, positioned at its own
step (multistep schedulers keep their history per frame), and its own generator seeded as
the backend seeds them, so after the one UNet call each frame steps alone on its slice,
as the backend's loop would have stepped it. A frame's cartoon is the one the backend gives
it alone, up to the float rounding of other batch shapes (tests/backends/test_stream.py).

With --reuse-latents a frame enters at step k instead, from the final latent of the newest
FINISHED frame warped along the source motion (latents.py's blend and noise), so only S - k
steps are in flight. That anchor is S - k frames back once the stream runs, where the
backend's frame-by-frame reuse takes the frame before, which a stream cannot have yet.
A frame with no anchor (the first, after a cut or a change of size) starts at step 0 and
is run out at once, with every frame in flight: otherwise the frames pushed while it runs
would find only anchors from before it, S frames back, and start from the noise too (on
fast motion, for ever). The push then takes S UNet calls, and the next frames follow it.
A frame never comes out before the frames pushed before it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import BackendUnavailable


@dataclass
class _Flight:
    """One frame in flight."""

    number: int  # pushes since reset(), frames only
    tag: Any  # handed back with its cartoon
    source: np.ndarray  # the camera frame (the next anchor's source)
    scheduler: Any  # this frame's own copy, at its own step
    timesteps: list[Any]  # the timesteps it runs, in order
    at: int  # the next of them
    latents: Any  # (1, 4, h, w)
    image_latents: Any  # (1, 4, h, w), unscaled
    generator: Any


class Stream:
    """Frames of a Pix2PixBackend at staggered steps; see the module docstring."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        reuse = backend.reuse
        self.k = reuse.k if reuse is not None else 0
        self._tracker = None
        if reuse is not None:
            from ...temporal.flow import MotionTracker

            self._tracker = MotionTracker()
        self.reset()

    @property
    def depth(self) -> int:
        """Frames in flight once the stream runs (steps from k), so a cartoon comes out depth - 1 frames late."""
        return self.backend.settings.steps - self.k

    @property
    def busy(self) -> bool:
        """Whether frames are in flight or done but waiting for earlier ones."""
        return bool(self._flying or self._finished)

    def reset(self) -> None:
        """A new clip: nothing in flight, no anchor, the backend's noise drawn afresh."""
        self.backend.reset()
        self._flying: list[_Flight] = []
        self._finished: dict[int, tuple[Any, np.ndarray]] = {}  # by number, until the earlier ones are out
        self._pushed = self._out = 0
        self._anchor: _Flight | None = None  # the newest finished frame: its source and final latent
        self.calls = self.samples = 0  # UNet calls and the samples in them, since reset()

    def push(self, frame: np.ndarray | None, tag: Any = None) -> list[tuple[Any, np.ndarray]]:
        """Add a uint8 (H, W, 3) frame (None: none, only advance the frames in flight) and
        run one step of every frame in flight. Returns (tag, cartoon) of the frames that are
        done, in the order they were pushed."""
        import torch

        with torch.inference_mode():
            if frame is not None:
                if self._flying and self._flying[0].source.shape != frame.shape:  # one batch holds one size
                    self._run_out()
                if not self._enter(frame, tag) and self.k:  # no anchor: run it out, the next frames follow it
                    self._run_out()
            if self._flying:
                self._step()
        return self._ready()

    def drain(self) -> list[tuple[Any, np.ndarray]]:
        """Run the frames in flight to the end; their (tag, cartoon), in order."""
        import torch

        with torch.inference_mode():
            self._run_out()
        return self._ready()

    def _run_out(self) -> None:
        while self._flying:
            self._step()

    def run(self, frames: np.ndarray) -> np.ndarray:
        """A whole clip through the stream, one push a frame, then drained: uint8 (N, H, W, 3)
        cartoons in order, what a camera sees (benchmarks, tests)."""
        self.reset()
        done = [cartoon for frame in frames for _, cartoon in self.push(frame)]
        return np.stack(done + [cartoon for _, cartoon in self.drain()])

    def _enter(self, frame: np.ndarray, tag: Any) -> int:
        """The new frame's image latent and where it starts: the clip noise at step 0, or
        the anchor's warped result at step k. Returns the step."""
        import torch

        from . import ip2p
        from .latents import warped_latents

        b = self.backend
        image_latents = b.encode_frames(frame[None])
        b.scheduler.set_timesteps(b.settings.steps, device=b.device)
        scheduler = copy.deepcopy(b.scheduler)  # the backend's own stays untouched, ready for the next copy
        noise = b._clip_noise(image_latents.shape[1:])
        start, latents = 0, noise * scheduler.init_noise_sigma
        motion = self._motion_from_anchor(frame, image_latents)
        if motion is not None:
            own = image_latents * b.parts.vae.config.scaling_factor
            start, latents = self.k, warped_latents(scheduler, [motion], self._anchor.latents, own, noise, self.k)
        generator = torch.Generator("cpu").manual_seed(b._step_seed())
        self._flying.append(_Flight(self._pushed, tag, frame.copy(), scheduler, list(ip2p.begin(scheduler, start)), 0,
                                    latents, image_latents, generator))
        self._pushed += 1
        return start

    def _motion_from_anchor(self, frame: np.ndarray, image_latents: Any) -> Any:
        """The source motion anchor -> frame, or None where the frame starts from the noise."""
        if self._tracker is None or self._anchor is None:
            return None
        if self._anchor.latents.shape[1:] != image_latents.shape[1:]:
            return None
        motion = self._tracker.between(self._anchor.source, frame)
        return None if motion is None or motion.cut else motion

    def _step(self) -> None:
        """One UNet call over every frame in flight, each at its own timestep, then each
        frame's own scheduler step; the frames done are decoded."""
        import torch

        from . import ip2p

        b, s, flying = self.backend, self.backend.settings, self._flying
        times = [f.timesteps[f.at] for f in flying]
        scaled = torch.cat([f.scheduler.scale_model_input(f.latents, t) for f, t in zip(flying, times, strict=True)])
        embeds, image_latents = ip2p.conditioning(b._prompt_embeds(), torch.cat([f.image_latents for f in flying]),
                                                  s.image_guidance)
        try:
            noise = ip2p.predict(b.unet, scaled, torch.stack(times), image_latents, embeds, s.guidance, s.image_guidance)
        except torch.cuda.OutOfMemoryError:
            h, w = (8 * side for side in scaled.shape[2:])
            raise BackendUnavailable(f"out of GPU memory with {len(flying)} {w}x{h} frames in flight; lower --max-side "
                                     "or --steps") from None
        self.calls, self.samples = self.calls + 1, self.samples + len(embeds)
        for i, (f, t) in enumerate(zip(flying, times, strict=True)):
            kwargs = ip2p.step_kwargs_for(f.scheduler, [f.generator])
            f.latents = f.scheduler.step(noise[i : i + 1], t, f.latents, **kwargs, return_dict=False)[0]
            f.at += 1
        done = [f for f in flying if f.at == len(f.timesteps)]
        if not done:
            return
        self._flying = [f for f in flying if f.at < len(f.timesteps)]
        height, width = done[0].source.shape[:2]
        cartoons = b.decode_frames(torch.cat([f.latents for f in done]), height, width)
        for f, cartoon in zip(done, cartoons, strict=True):
            self._finished[f.number] = (f.tag, cartoon)
        newest = max(done, key=lambda f: f.number)
        if self._anchor is None or newest.number > self._anchor.number:
            self._anchor = newest

    def _ready(self) -> list[tuple[Any, np.ndarray]]:
        out = []
        while self._out in self._finished:
            out.append(self._finished.pop(self._out))
            self._out += 1
        return out
