"""Keyframe mode (--keyframe-every K): diffuse every K-th frame, and every scene cut,
and carry the stylisation to the frames between by warping along the source's
optical flow.

    backend = KeyframeBackend(inner, every=4)   # same call shape, same name as inner

Forward only, which fits the pipeline's call shape (a batch in, as many frames
out, state kept between calls): a frame that is not a keyframe becomes the
PREVIOUS OUTPUT warped onto it along the source flow (temporal.flow.MotionTracker),
so a gap between keyframes may straddle any number of backend calls. A look-
ahead design (blending toward the next keyframe) would have to hold frames back
inside the backend, which the call shape does not allow.

Occlusion-aware: where the source's confidence is low (disocclusions, the edge
that panning uncovers, around a moving object) the warped output is not
trusted; those pixels are filled from their trusted neighbours (OpenCV's
inpainting at working size), blended in by the confidence, rather than smeared
or stale. When too much of the frame is untrusted (a scene cut: mean confidence
below temporal.flow.CUT_CONFIDENCE), the frame is diffused instead.

The keyframes of one call go to the inner backend together, in one call, so it
still batches them.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...temporal.flow import CONFIDENCE_BLUR, Motion, MotionTracker
from .. import Backend, check_batch

INPAINT_RADIUS = 3  # px at working size


class KeyframeBackend:
    """Wraps a backend: `inner` runs on keyframes only; see the module docstring."""

    def __init__(self, inner: Backend, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.inner, self.every = inner, every
        self.name = inner.name
        self.summary = f"{inner.summary}; keyframes every {every} frames and at cuts"
        # frames per call such that the inner backend still gets full batches of keyframes
        self.batch_size = inner.batch_size * every
        self._motion = MotionTracker()
        self.keyframes = 0  # frames diffused in this clip
        self.reset()

    def reset(self) -> None:
        self.inner.reset()
        self._motion.reset()
        self._out: np.ndarray | None = None  # the previous output frame
        self._since = 0  # frames since the last keyframe
        self.keyframes = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """batch: uint8 (N, H, W, 3) RGB; returns as many cartoon frames."""
        check_batch(batch, self.name)
        # 1. Which frames are keyframes (every K-th since the last one, first frame, cuts).
        motions = [self._motion(frame) for frame in batch]
        keys = []
        for i, motion in enumerate(motions):
            first = i == 0 and (self._out is None or self._out.shape != batch[0].shape)
            if first or motion is None or motion.cut or self._since + 1 >= self.every:
                keys.append(i)
                self._since = 0
            else:
                self._since += 1
        # 2. Diffuse the keyframes, all in one call.
        diffused = dict(zip(keys, self.inner(batch[keys]) if keys else [], strict=True))
        self.keyframes += len(keys)
        # 3. In order: keyframes as diffused, the rest propagated from the previous output.
        out = np.empty_like(batch)
        for i, motion in enumerate(motions):
            if i in diffused:
                out[i] = diffused[i]
            else:
                out[i] = propagate(self._out, motion)
            self._out = out[i]
        self._out = self._out.copy()  # not a view into the caller's array
        return out


def propagate(previous: np.ndarray, motion: Motion) -> np.ndarray:
    """The previous output warped onto the current frame; where the warp is not trusted,
    filled from the trusted surroundings, blended by the (softened) confidence."""
    height, width = previous.shape[:2]
    warped = motion.warp(previous)
    confidence = cv2.GaussianBlur(motion.confidence, (0, 0), CONFIDENCE_BLUR)
    small_h, small_w = confidence.shape
    untrusted = (confidence < 0.5).astype(np.uint8)
    if not untrusted.any():
        return warped
    small = cv2.resize(warped, (small_w, small_h), interpolation=cv2.INTER_AREA) if (small_w, small_h) != (width, height) else warped
    filled = cv2.inpaint(small, untrusted, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    if (small_w, small_h) != (width, height):
        filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
        confidence = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.blendLinear(warped, filled, confidence, 1.0 - confidence)
