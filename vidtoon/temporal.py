"""Optical flow, warping and occlusion masks.

Flow follows OpenCV's convention: for flow = estimator(a, b),

    a[y, x] ~ b[y + flow[y, x, 1], x + flow[y, x, 0]]

so `warp(b, estimator(a, b))` brings b onto a's pixel grid. "Frame t+1 warped
onto t" is warp(frame[t+1], estimator(frame[t], frame[t+1])).

Building blocks, shared by metrics.py and meant for reuse by the diffusion
backend (latent reuse, keyframe propagation):

    FlowEstimator   DIS optical flow (no weights) at a working size, returned at full size
    warp            backward warp of any (H, W) or (H, W, C) uint8/float32 array
    resize_flow     flow at another size (e.g. a latent grid), vectors rescaled
    valid_mask      not occluded: lands inside the frame, forward-backward
                    consistent, not on a motion boundary (Ruder et al. 2016,
                    the mask Lai et al. 2018 use for their warp error)
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

# Ruder et al. 2016 (artistic style transfer for videos), eqs. 5 and 6; flow in px.
FB_RELATIVE = 0.01  # forward-backward: |w + w^|^2 <= 0.01 (|w|^2 + |w^|^2) + 0.5
FB_ABSOLUTE = 0.5
MB_RELATIVE = 0.01  # motion boundary: |grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002
MB_ABSOLUTE = 0.002


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray of an RGB or gray uint8 image (DIS takes one 8-bit channel)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def work_factor(width: int, height: int, short_side: int | None) -> int:
    """Integer downscale factor bringing the short side near `short_side` (None: 1).
    Integer ratios keep OpenCV's area/linear resizes fast and exactly aligned."""
    if not short_side:
        return 1
    return max(1, round(min(width, height) / short_side))


class FlowEstimator:
    """Dense optical flow with OpenCV's DIS at a working resolution, returned at
    the input's resolution in its pixels: float32 (H, W, 2)."""

    def __init__(self, preset: str = "medium", short_side: int | None = None) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {', '.join(PRESETS)}")
        self.preset = preset
        self.short_side = short_side
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def __str__(self) -> str:
        where = f", short side ~{self.short_side} px" if self.short_side else ", full size"
        return f"DIS {self.preset}{where}"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from a to b (uint8 RGB or gray, same size)."""
        a, b = to_gray(a), to_gray(b)
        height, width = a.shape
        f = work_factor(width, height, self.short_side)
        if f > 1:
            size = (max(1, round(width / f)), max(1, round(height / f)))
            a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
            b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
        flow = self._dis.calc(a, b, None)
        return resize_flow(flow, (width, height)) if f > 1 else flow


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Flow (h, w, 2) resampled to size = (width, height), vectors scaled to the new pixels."""
    h, w = flow.shape[:2]
    width, height = size
    if (width, height) == (w, h):
        return flow
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    # cv2, not numpy: broadcasting over a last axis of 2 is ~20x slower
    return cv2.multiply(out, (width / w, height / h, 0.0, 0.0))


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float32 pixel coordinates (x, y); read-only, cached per size."""
    grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
    grid.flags.writeable = False
    return grid


def sample_map(flow: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Where each pixel samples from, (H, W, 2) float32 x, y: its own coordinates
    plus the flow; with size = (width, height), for an image of that size."""
    if size is not None:
        flow = resize_flow(flow, size)
    return _grid(*flow.shape[:2]) + flow


def warp(image: np.ndarray, flow: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """image sampled at x + flow(x), bilinearly: the frame that `flow` points into,
    brought onto the grid of the frame it starts from. Any channel count."""
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    where = sample_map(flow)
    if image.ndim == 3 and image.shape[2] > 4:  # remap takes at most 4 channels
        parts = [warp(image[..., c : c + 4], flow, border) for c in range(0, image.shape[2], 4)]
        return np.concatenate([p.reshape(*image.shape[:2], -1) for p in parts], axis=2)
    return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=border)


def inside(flow: np.ndarray) -> np.ndarray:
    """True where x + flow(x) lands inside the frame."""
    height, width = flow.shape[:2]
    where = sample_map(flow)
    x, y = where[..., 0], where[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def squared_norm(vectors: np.ndarray) -> np.ndarray:
    """Per-pixel sum of squares over the channels of an (H, W, C<=4) float32 array
    (cv2.transform: numpy's reduction over a short last axis is ~20x slower)."""
    return cv2.transform(vectors * vectors, np.ones((1, vectors.shape[2]), np.float32))


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Forward-backward check: following `forward` then `backward` returns home.
    forward: a -> b, backward: b -> a, both on their own frame's grid."""
    back = warp(backward, forward)
    limit = FB_RELATIVE * (squared_norm(forward) + squared_norm(back)) + FB_ABSOLUTE
    return squared_norm(forward + back) <= limit


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """True where the flow changes sharply (object outlines): warps there are unreliable."""
    # central differences, (f(x+1) - f(x-1)) / 2, of u and v together
    gx = cv2.Sobel(flow, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    gy = cv2.Sobel(flow, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    return squared_norm(gx) + squared_norm(gy) > MB_RELATIVE * squared_norm(flow) + MB_ABSOLUTE


def valid_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels of frame a whose match in frame b can be trusted (bool (H, W))."""
    return inside(forward) & consistent(forward, backward) & ~motion_boundaries(forward)
