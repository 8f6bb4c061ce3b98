"""Optical flow, warping and occlusion masks, and the flow-guided stabiliser.

Flow follows OpenCV's convention: for flow = estimator(a, b),

    a[y, x] ~ b[y + flow[y, x, 1], x + flow[y, x, 0]]

so `warp(b, estimator(a, b))` brings b onto a's pixel grid. "Frame t+1 warped
onto t" is warp(frame[t+1], estimator(frame[t], frame[t+1])).

Building blocks, shared by metrics.py, the stabiliser and the diffusion
backend (latent reuse, keyframe propagation):

    FlowEstimator   DIS optical flow (no weights) at a working size, returned at full size
    warp            backward warp of any (H, W) or (H, W, C) uint8/float32 array
    remap           the same at a sample map already made (e.g. for a result of another size)
    resize_flow     flow at another size (e.g. a latent grid), vectors rescaled
    valid_mask      not occluded: lands inside the frame, forward-backward
                    consistent, not on a motion boundary (Ruder et al. 2016,
                    the mask Lai et al. 2018 use for their warp error)

Consecutive source frames, for the stabiliser and the diffusion backend's
latent reuse and keyframes:

    MotionTracker   per new source frame, a Motion: flow back to the previous
                    frame, a confidence map, cut detection, warping of any
                    result of the previous frame (cartoon or latents);
                    between(a, b): the same for two frames further apart

The stabiliser that uses them is in stabilize.py.
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

MIN_FLOW_SIDE = 16  # px; see _padded_flow
TILE_RATIO = 4  # strips longer than this times their short side are measured in tiles

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
        flow = _padded_flow(self._dis, a, b)
        return resize_flow(flow, (width, height)) if f > 1 else flow


def _padded_flow(dis: cv2.DISOpticalFlow, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS flow, padding images DIS cannot take: it needs both sides >= 12 px and
    segfaults on strips much wider than tall, as its pyramid depth follows the
    width alone (opencv_contrib issue 1355). Edge pixels are repeated to at
    least MIN_FLOW_SIDE and half the long side, and the flow cropped back.
    Strips longer than TILE_RATIO times their short side are measured in tiles
    (_tiled_flow), so padding never costs more than a few times the frame."""
    height, width = a.shape
    long, short = max(height, width), max(MIN_FLOW_SIDE, min(height, width))
    if long <= TILE_RATIO * short:
        return _flow_padded_to(dis, a, b, max(MIN_FLOW_SIDE, (long + 1) // 2))
    if height > width:  # a tall strip: as a wide one, transposed (x and y swap back)
        flow = _tiled_flow(dis, np.ascontiguousarray(a.T), np.ascontiguousarray(b.T), short)
        return np.ascontiguousarray(flow.transpose(1, 0, 2)[..., ::-1])
    return _tiled_flow(dis, a, b, short)


def _flow_padded_to(dis: cv2.DISOpticalFlow, a: np.ndarray, b: np.ndarray, need: int) -> np.ndarray:
    height, width = a.shape
    bottom, right = max(0, need - height), max(0, need - width)
    if not (bottom or right):
        return dis.calc(a, b, None)
    pad = (0, bottom, 0, right, cv2.BORDER_REPLICATE)
    flow = dis.calc(cv2.copyMakeBorder(a, *pad), cv2.copyMakeBorder(b, *pad), None)
    return np.ascontiguousarray(flow[:height, :width])


def _tiled_flow(dis: cv2.DISOpticalFlow, a: np.ndarray, b: np.ndarray, short: int) -> np.ndarray:
    """Flow of a wide strip, tile by tile: tiles TILE_RATIO * short wide, each padded
    to half that high, of which the middle half is kept; the margins (`short` px)
    see motion across a tile's edge. Motion along the strip of more than `short`
    px per frame is not followed across tiles."""
    height, width = a.shape
    tile, step = TILE_RATIO * short, TILE_RATIO * short // 2
    margin = (tile - step) // 2
    flow = np.empty((height, width, 2), np.float32)
    for keep in range(0, width, step):
        lo = max(0, min(keep - margin, width - tile))
        stop = min(keep + step, width)
        part = _flow_padded_to(dis, a[:, lo : lo + tile], b[:, lo : lo + tile], tile // 2)
        flow[:, keep:stop] = part[:, keep - lo : stop - lo]
    return flow


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
    h, w = flow.shape[:2]
    if size is None or size == (w, h):
        return _grid(h, w) + flow
    width, height = size
    scale = (width / w, height / h)
    big = cv2.resize(flow, size, interpolation=cv2.INTER_LINEAR)
    if scale[0] == scale[1]:  # the usual integer work factor: scale and add in one pass
        return cv2.scaleAdd(big, scale[0], _grid(height, width))
    return _grid(height, width) + cv2.multiply(big, (*scale, 0.0, 0.0))


def warp(image: np.ndarray, flow: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """image sampled at x + flow(x), bilinearly: the frame that `flow` points into,
    brought onto the grid of the frame it starts from. Any channel count."""
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    return remap(image, sample_map(flow), border)


def remap(image: np.ndarray, where: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """image sampled bilinearly at `where` (a sample_map of its size). Any channel count:
    cv2.remap takes at most 4, so wider arrays (latents) go 4 channels at a time."""
    if image.ndim == 3 and image.shape[2] > 4:
        parts = [remap(image[..., c : c + 4], where, border) for c in range(0, image.shape[2], 4)]
        return np.concatenate([p.reshape(*image.shape[:2], -1) for p in parts], axis=2)
    return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=border)


def inside(flow: np.ndarray) -> np.ndarray:
    """True where x + flow(x) lands inside the frame."""
    height, width = flow.shape[:2]
    return cv2.inRange(sample_map(flow), (0.0, 0.0), (width - 1.0, height - 1.0)) > 0  # x and y at once


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


# ---- following a clip's source frames ----------------------------------------------------

STABILIZE_PRESET = "fast"  # metrics.py measures with "medium" at full size: a different flow
STABILIZE_SHORT_SIDE = 180  # px; flow and confidence are worked out at about this size
COLOR_SIGMA = 16.0  # RMS RGB difference (0-255) of the warped source at which trust falls to 1/e
CONFIDENCE_BLUR = 1.0  # px at working size: soft seams around occlusions
_MATCH = np.full((1, 3), -1 / (3 * COLOR_SIGMA * COLOR_SIGMA), np.float32)  # channels' squares -> -mse / sigma^2


CUT_CONFIDENCE = 0.4  # mean confidence below this: a scene cut (content unrelated to the last frame)


class Motion:
    """How one source frame follows the previous: `back` is the flow from the current
    frame to the previous one at working size, `confidence` (working size, float32
    in [0, 1]) says where warping the previous frame's result along it can be
    trusted: the flow passes the forward-backward check and lands inside the
    frame, and the warped previous source matches the current one in colour."""

    def __init__(self, back: np.ndarray, confidence: np.ndarray) -> None:
        self.back, self.confidence = back, confidence

    @property
    def cut(self) -> bool:
        """A scene cut: most of the frame has no trusted match in the previous one."""
        return float(self.confidence.mean()) < CUT_CONFIDENCE

    def warp(self, previous: np.ndarray) -> np.ndarray:
        """A result for the previous frame, of any size and channel count (e.g. a full-size
        cartoon, or a latent grid), brought onto the current frame's grid: the flow
        is resized to it and its vectors scaled."""
        height, width = previous.shape[:2]
        return remap(previous, sample_map(self.back, (width, height)))

    def confidence_at(self, size: tuple[int, int]) -> np.ndarray:
        """The confidence resampled to size = (width, height): averaged when smaller."""
        h, w = self.confidence.shape
        if size == (w, h):
            return self.confidence
        smaller = size[0] < w
        return cv2.resize(self.confidence, size, interpolation=cv2.INTER_AREA if smaller else cv2.INTER_LINEAR)


class MotionTracker:
    """Follows a clip's SOURCE frames one at a time; for each, the Motion from the
    previous frame (None for the first, or after a change of frame size). Flow and
    confidence are worked out with the short side near `short_side` px. Used by
    the stabiliser, latent reuse and keyframe propagation; reset() before a clip."""

    def __init__(self, short_side: int = STABILIZE_SHORT_SIDE, preset: str = STABILIZE_PRESET, check: bool = True) -> None:
        """check: also the forward-backward check (a second flow); without it, trust
        rests on the colour match alone, at half the cost."""
        self.short_side, self.check = short_side, check
        self._flow = FlowEstimator(preset)  # fed frames already at working size
        self.reset()

    def reset(self) -> None:
        self._small: np.ndarray | None = None  # previous source, working size, RGB uint8

    def __call__(self, source: np.ndarray) -> Motion | None:
        small = self._shrink(source)
        previous, self._small = self._small, small
        return self._follow(previous, small)

    def between(self, a: np.ndarray, b: np.ndarray) -> Motion | None:
        """The Motion from source frame a to source frame b, any number of frames apart
        (latent reuse in groups warps from one anchor); None when their sizes differ.
        For consecutive frames it is what __call__ gives. Leaves the tracker as it was."""
        return self._follow(self._shrink(a), self._shrink(b))

    def _shrink(self, source: np.ndarray) -> np.ndarray:
        """The source at working size (RGB uint8)."""
        height, width = source.shape[:2]
        f = work_factor(width, height, self.short_side)
        size = (max(1, round(width / f)), max(1, round(height / f)))
        return cv2.resize(source, size, interpolation=cv2.INTER_AREA) if f > 1 else np.ascontiguousarray(source)

    def _follow(self, previous: np.ndarray | None, small: np.ndarray) -> Motion | None:
        """The Motion from `previous` to `small`, both at working size."""
        if previous is None or previous.shape != small.shape:
            return None
        # 1. Flow from this frame back to the last, and the way forward for the check.
        gray, previous_gray = to_gray(small), to_gray(previous)
        back = self._flow(gray, previous_gray)
        # 2. Confidence, from the source alone: a trusted match that also looks the same.
        trusted = inside(back)
        if self.check:
            trusted &= consistent(back, self._flow(previous_gray, gray))
        diff = cv2.absdiff(warp(previous, back), small)
        # exp(-mse / COLOR_SIGMA^2), the mean over the channels by cv2.transform (numpy's is ~20x slower)
        confidence = cv2.exp(cv2.transform(cv2.multiply(diff, diff, dtype=cv2.CV_32F), _MATCH))
        return Motion(back, np.multiply(confidence, trusted, out=confidence))
