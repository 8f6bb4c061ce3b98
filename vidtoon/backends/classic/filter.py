"""The classic cartoon filter: flat colours from the clip's palette, clean ink
lines, detail that follows the frame's size, steady in video; numpy and OpenCV only.

Per frame (the look's numbers come from styles.py):

1. Working size: the short side scaled to WORK_SHARE of itself, within
   WORK_FLOOR..WORK_MAX px (frames shorter than WORK_MIN are worked at full
   size), by an exact ratio where one is close, so OpenCV's resizes stay fast.
2. Smoothing: Look.smooth bilateral passes flatten shading and texture while
   keeping object boundaries (tens of levels) sharp.
3. Colour: the smoothed picture through the clip's palette (palette.py: fitted
   on the first frame, a soft table lookup after); a median filter removes
   islands a few working pixels wide. Borders between colours soften where
   the picture moves (SOFTEN full-size px at SOFTEN_SPEED px a frame and up,
   as a camera's own motion blur softens them): hard borders shimmer as they
   move. Still parts stay crisp, and so does a still picture (picture()).
4. Ink: XDoG on the smoothed luminance, tiny fragments faded (lines.py),
   multiplied into the colour at working size.
5. Steady: the working-size cartoon is blended with the last one, warped
   along the source's motion where that motion is trusted (Look.steady; 0 at
   new content and cuts), on a cheap flow at STEADY_SHORT_SIDE px.
6. Full size: one bilinear upscale; or, for an encoder, I420 planes (planes()):
   the colour matrix at working size, and only luma upscaled.

The palette (once per clip) and step 5 are the only state; reset() forgets both.
Steps 1, 2 and the ink of step 4 need none, so prepare() can do them ahead, on
another thread (the pipeline's decode thread), and hand them to __call__/planes.
Measured: benchmarks/look.py (stills, flicker and speed per style).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from ...io.yuv import scaled_i420
from ...temporal.flow import CONFIDENCE_BLUR, Motion, MotionTracker, sample_map
from .. import check_batch
from . import ClassicSettings
from .lines import Ink
from .palette import Palette

WORK_SHARE = 0.5  # of the short side: 720p and 1080p are worked at half size
WORK_MIN = 480  # px: frames with a shorter side than this are worked at full size ...
WORK_FLOOR = 360  # ... and bigger ones never below this
WORK_MAX = 540  # px: 4K is worked at 960x540, a quarter
BILATERAL_D = 5  # px at working size
BILATERAL_SIGMA_COLOR = 24.0  # RGB levels: texture and shading (a few to ~20) flatten, boundaries (tens) stay
BILATERAL_SIGMA_SPACE = 3.0
MEDIAN = 5  # px at working size: islands narrower than ~2 working px go
SOFTEN = 3.0  # full-size px: borders of moving parts this soft, so that they do not shimmer as they move
SOFTEN_FROM = 0.3  # full-size px a frame: slower than this is still (the flow's own noise on a still shot) ...
SOFTEN_SPEED = 1.2  # ... and from this speed up a part gets the whole of SOFTEN
SOFTEN_MIN = 0.7  # working px: at least this much where the working size is small
STEADY_SHORT_SIDE = 180  # px: step 5's flow is worked out at about this size


def work_factor(width: int, height: int) -> float:
    """Full-size px per working px for a width x height frame (1: full size)."""
    short = min(width, height)
    if short < WORK_MIN:
        return 1.0
    target = min(WORK_MAX, max(WORK_FLOOR, short * WORK_SHARE))
    f = short / target
    return float(round(f)) if abs(f - round(f)) < 0.15 else f  # an exact ratio where one is near


def steady_tracker() -> MotionTracker:
    """The flow of steps 3 and 5: the cheapest that does (no forward-backward check,
    the colour match decides trust)."""
    return MotionTracker(STEADY_SHORT_SIDE, "ultrafast", check=False)


class Prepared(NamedTuple):
    """One frame's stateless work (prepare()), at working size."""

    smooth: np.ndarray  # uint8 RGB after step 2
    ink: np.ndarray | None  # step 4's uint8 RGB factor (255: no ink); None without lines


class ClassicBackend:
    """Per-frame cartoon filter with the shared backend call shape (batch in, batch out)."""

    name = "classic"
    BATCH_SIZE = 4  # frames per call: keeps decode and encode busy; 8 (44 MB at 720p) was ~7% more CPU, from cache misses

    def __init__(self, settings: ClassicSettings = ClassicSettings(), batch_size: int | None = None) -> None:
        self.settings = settings
        self.look = settings.look()
        self.batch_size = batch_size or self.BATCH_SIZE
        self.summary = settings.describe()
        self.palette = Palette(self.look)
        self._ink = Ink(self.look) if self.look.edges > 0 else None
        self._motion = steady_tracker() if self.look.steady else None
        self._previous: np.ndarray | None = None  # the last working-size cartoon
        self._first_motion: Motion | None = None  # a clip's first frame: its motion to the second (_peek)

    def reset(self) -> None:
        """Start a new clip: its palette is fitted afresh on its first frame, and
        nothing is carried over from the last clip's frames."""
        self.palette.reset()
        if self._motion is not None:
            self._motion.reset()
        self._previous = None
        self._first_motion = None

    def __call__(self, batch: np.ndarray, prepared: list[Prepared] | None = None) -> np.ndarray:
        """batch: uint8 (N, H, W, 3) RGB. Returns a new uint8 array of the same shape.
        prepared: prepare(batch), where it was done ahead."""
        check_batch(batch, "classic")
        return self._batch(batch, np.empty_like(batch), prepared)

    def planes(self, batch: np.ndarray, matrix: np.ndarray, prepared: list[Prepared] | None = None) -> np.ndarray:
        """The cartoons __call__ would return, as the encoder's 8-bit I420 planes: uint8
        (N, 3H/2, W) for an even H and W, by this RGB -> Y'CbCr matrix (io/yuv.py). Step 6
        then upscales luma alone, and the full-size RGB is never made (~1.4 ms less a
        720p frame, of the upscale and the writer's conversion)."""
        check_batch(batch, "classic")
        n, height, width = batch.shape[:3]
        if height % 2 or width % 2:
            raise ValueError(f"I420 planes need an even frame size, not {width}x{height}")
        return self._batch(batch, np.empty((n, height * 3 // 2, width), np.uint8), prepared, matrix)

    def prepare(self, batch: np.ndarray) -> list[Prepared]:
        """Steps 1, 2 and 4's ink of each frame, which read no state: safe on another
        thread while this backend works on earlier frames (the pipeline's decode thread
        does them beside the decoder: about a third of the filter's CPU time at 720p)."""
        check_batch(batch, "classic")
        return [self._prepare(np.ascontiguousarray(frame)) for frame in batch]

    def _prepare(self, rgb: np.ndarray) -> Prepared:
        """prepare() of one contiguous (H, W, 3) frame."""
        height, width = rgb.shape[:2]
        # 1. Working size.
        f = work_factor(width, height)
        size = (max(1, round(width / f)), max(1, round(height / f)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if f > 1 else rgb
        # 2. Smoothing.
        smooth = small
        for _ in range(self.look.smooth):
            smooth = cv2.bilateralFilter(smooth, BILATERAL_D, BILATERAL_SIGMA_COLOR, BILATERAL_SIGMA_SPACE)
        # 4. Ink: its factor, as RGB to multiply the colour by.
        if self._ink is None:
            return Prepared(smooth, None)
        gray = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY).astype(np.float32)
        ink = self._ink.factor(self._ink.response(gray, min(width, height)))
        return Prepared(smooth, cv2.cvtColor(ink, cv2.COLOR_GRAY2RGB))

    def _batch(self, batch: np.ndarray, out: np.ndarray, prepared: list[Prepared] | None,
               matrix: np.ndarray | None = None) -> np.ndarray:
        if prepared is not None and len(prepared) != len(batch):
            raise ValueError(f"{len(prepared)} prepared frames for a batch of {len(batch)}")
        if self._motion is not None and self._previous is None and len(batch) > 1:
            self._first_motion = self._peek(batch[0], batch[1])
        for i, (frame, dst) in enumerate(zip(batch, out, strict=True)):
            frame = np.ascontiguousarray(frame)
            self._frame(frame, dst, prepared[i] if prepared is not None else self._prepare(frame), matrix=matrix)
        return out

    def picture(self, rgb: np.ndarray) -> np.ndarray:
        """One (H, W, 3) picture that is not part of a clip: nothing moves, so its
        borders stay crisp; its own palette, and nothing is kept for later frames."""
        check_batch(np.asarray(rgb)[None], "classic")
        self.reset()
        out, rgb = np.empty_like(rgb), np.ascontiguousarray(rgb)
        self._frame(rgb, out, self._prepare(rgb), still=True)
        self.reset()
        return out

    def _frame(self, rgb: np.ndarray, dst: np.ndarray, prepared: Prepared, still: bool = False,
               matrix: np.ndarray | None = None) -> None:
        """Steps 3-6 of the module docstring on one (H, W, 3) RGB frame, given its steps 1-2
        and ink (prepared), into dst: RGB, or I420 planes by `matrix` where one is given."""
        height, width = rgb.shape[:2]
        f = work_factor(width, height)
        smooth = prepared.smooth
        # The source's motion since the last frame (steps 3 and 5); None: unknown.
        motion = self._motion(smooth) if self._motion is not None and not still else None
        if motion is not None and (motion.cut or self._previous is None or self._previous.shape[:2] != smooth.shape[:2]):
            motion = None
        ahead, self._first_motion = self._first_motion, None
        # 3. Colour.
        colour = self.palette(smooth)
        if min(smooth.shape[:2]) >= MEDIAN:
            colour = cv2.medianBlur(colour, MEDIAN)
        if not still:
            colour = self._soften(colour, motion or ahead, max(SOFTEN_MIN, SOFTEN / f), width)
        # 4. Ink, at working size, multiplied into the colour there: one picture to carry
        # and to upscale (the ink's soft edge is its anti-aliasing, so the upscale keeps it smooth).
        if prepared.ink is not None:
            colour = cv2.multiply(colour, prepared.ink, scale=1 / 255)
        # 5. Steady: where the source moved predictably, keep most of the last frame.
        if self._motion is not None and not still:
            colour = self._steady(motion, colour)
        # 6. Full size.
        if matrix is not None:
            scaled_i420(colour, (width, height), matrix, out=dst)
        elif f > 1:
            cv2.resize(colour, (width, height), dst=dst, interpolation=cv2.INTER_LINEAR)
        else:
            np.copyto(dst, colour)

    @staticmethod
    def _soften(colour: np.ndarray, motion: Motion | None, sigma: float, width: int) -> np.ndarray:
        """Step 3's soft borders: all of them where the motion is unknown (a clip's first
        frame, a cut, --steady 0), else by speed, SOFTEN_SPEED full-size px a frame and up."""
        if sigma <= 0:
            return colour
        moving, lowest = None, 1.0  # motion unknown: blur all of it
        if motion is not None:
            full_px = width / motion.back.shape[1]  # full-size px per px of the flow
            speed = cv2.magnitude(motion.back[..., 0], motion.back[..., 1]) * np.float32(full_px)
            moving = (speed - np.float32(SOFTEN_FROM)) * np.float32(1 / (SOFTEN_SPEED - SOFTEN_FROM))
            lowest, highest = cv2.minMaxLoc(moving)[:2]
            if highest <= 0.0:  # a still shot: nothing to blur
                return colour
        blurred = box_blur(colour, sigma)
        return blurred if lowest >= 1.0 else mix(blurred, colour, moving)  # >= 1: a pan, all of it moves

    def _peek(self, first: np.ndarray, second: np.ndarray) -> Motion | None:
        """How a clip's first frame moves, from the second when the call has both, so that
        its borders are as soft as the next frames' (a still shot's crisp), not a guess
        that the next frames would carry along and slowly undo."""
        tracker = steady_tracker()
        tracker(np.ascontiguousarray(second))
        motion = tracker(np.ascontiguousarray(first))
        return None if motion is None or motion.cut else motion

    def _steady(self, motion: Motion | None, cartoon: np.ndarray) -> np.ndarray:
        """Blend the working-size cartoon with the last one, warped along the source's
        flow, by Look.steady times the confidence in that flow (0 at new content and cuts)."""
        previous = self._previous
        if motion is not None and previous is not None and previous.shape == cartoon.shape:
            h, w = cartoon.shape[:2]
            weight = cv2.GaussianBlur(motion.confidence, (0, 0), CONFIDENCE_BLUR) * np.float32(self.look.steady)
            # fixed-point maps: the same bilinear sampling (1/32 px) at ~20% less than float maps
            fixed = cv2.convertMaps(sample_map(motion.back, (w, h)), None, cv2.CV_16SC2)
            warped = cv2.remap(previous, *fixed, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            cartoon = mix(warped, cartoon, weight)
        self._previous = cartoon
        return cartoon


def box_blur(colour: np.ndarray, sigma: float) -> np.ndarray:
    """A box blur of about this sigma (an odd n px wide: sqrt((n^2 - 1) / 12)): at sigma
    1.5, 1/7 of the cost of OpenCV's 11-tap Gaussian for uint8. Only where a border
    moves, so its shape (a ramp, not an erf) does not show."""
    n = 2 * max(1, round((np.sqrt(12 * sigma * sigma + 1) - 1) / 2)) + 1
    return cv2.blur(colour, (n, n))


def mix(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """a * weight + b * (1 - weight) for uint8 (H, W, 3) pictures; weight: float32 at any
    size (it is resized to theirs), clipped to 0..1. In 8 bits, within 1 level of
    cv2.blendLinear at ~40% of its cost: weight the size of the flow, resized as uint8."""
    h, w = a.shape[:2]
    weight8 = cv2.convertScaleAbs(cv2.max(weight, 0.0), alpha=255.0)  # rounds, saturates above 1
    if weight8.shape != (h, w):
        weight8 = cv2.resize(weight8, (w, h), interpolation=cv2.INTER_LINEAR)
    weight3 = cv2.cvtColor(weight8, cv2.COLOR_GRAY2RGB)
    return cv2.add(cv2.multiply(a, weight3, scale=1 / 255), cv2.multiply(b, cv2.bitwise_not(weight3), scale=1 / 255))


def cartoonize_image(rgb: np.ndarray, settings: ClassicSettings = ClassicSettings()) -> np.ndarray:
    """One HxWx3 uint8 RGB picture in, cartoon out (its own palette, crisp borders)."""
    return ClassicBackend(settings).picture(np.asarray(rgb))
