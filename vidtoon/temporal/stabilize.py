"""The stabiliser: the optional temporal stage after any backend (--stabilize).

    stage = Stabilizer()
    steady = stage(sources, cartoons)   # uint8 (N, H, W, 3) each; state kept across calls

It needs only the source frames and the backend's output, so it works after
every backend, in files and live.
"""

from __future__ import annotations

import cv2
import numpy as np

from .flow import CONFIDENCE_BLUR, STABILIZE_SHORT_SIDE, MotionTracker

BLEND = 0.8  # weight of the warped previous output where the flow is fully trusted


class Stabilizer:
    """The pipeline's temporal stage: out_t = mix(cartoon_t, warp(out_t-1), BLEND * c).

    The confidence c is computed on the SOURCE frames, never the cartoons: it is
    high where the source's flow passes the forward-backward check and the
    warped previous source frame matches the current one in colour, and zero
    where content is new (disocclusions, frame edges, cuts), so new content
    appears at once while unchanged content keeps last frame's look instead of
    shimmering. Stateful across batches; reset() before every clip.
    """

    name = "stabilize"

    def __init__(self, blend: float = BLEND, short_side: int = STABILIZE_SHORT_SIDE) -> None:
        if not 0.0 <= blend < 1.0:
            raise ValueError(f"blend must be in [0, 1), got {blend}")
        self.blend = blend
        self.short_side = short_side
        self._motion = MotionTracker(short_side)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next one passes through unchanged."""
        self._motion.reset()
        self._out: np.ndarray | None = None  # previous output, full size, RGB uint8

    def __call__(self, sources: np.ndarray, cartoons: np.ndarray) -> np.ndarray:
        """sources, cartoons: uint8 (N, H, W, 3); cartoons[i] is the backend's output
        for sources[i]. Returns the stabilised cartoons (a new array)."""
        if (sources.shape != cartoons.shape or sources.ndim != 4 or sources.shape[-1] != 3
                or sources.dtype != np.uint8 or cartoons.dtype != np.uint8):
            raise ValueError(f"stabiliser expects two uint8 (N, H, W, 3) batches of one shape, "
                             f"got {sources.shape} and {cartoons.shape} {cartoons.dtype}")
        out = np.empty_like(cartoons)
        for source, cartoon, dst in zip(sources, cartoons, out, strict=True):
            dst[:] = self._frame(np.ascontiguousarray(source), np.ascontiguousarray(cartoon))
        return out

    def _frame(self, source: np.ndarray, cartoon: np.ndarray) -> np.ndarray:
        height, width = source.shape[:2]
        motion, previous_out = self._motion(source), self._out
        if motion is None or previous_out is None or previous_out.shape != cartoon.shape:
            self._out = cartoon.copy()
            return cartoon
        # Blend at full size with the previous output warped along the source's flow.
        weight = cv2.GaussianBlur(motion.confidence, (0, 0), CONFIDENCE_BLUR) * np.float32(self.blend)
        if weight.shape != (height, width):
            weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        out = cv2.blendLinear(motion.warp(previous_out), cartoon, weight, 1.0 - weight)
        self._out = out
        return out
