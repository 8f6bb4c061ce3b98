"""Ink lines: XDoG (Winnemöller, Kyprianidis & Olsen 2012) on the smoothed
luminance, at a width set by the frame's size.

    ink = Ink(look)
    factor = ink.factor(ink.response(gray_work, short_side))   # uint8: 255 = paper, 0 = black

1. D = G_sigma(Y) - tau G_1.6sigma(Y): negative on the dark side of an edge.
   sigma follows the frame (Look.line_width x LINE_UNIT of the short side), so
   4K and 480p of one picture get lines of the same share of the frame.
2. D is kept as a uint8 (OFFSET + SCALE D), and the ink is a table lookup of it:
   E = 1 + tanh(PHI (D - EPS)) below EPS. PHI is soft on purpose: ink with a
   hard edge shimmers as it moves (measured: 1.9x the source's flicker at
   PHI 0.7 against 1.4x at 0.25 on the sample).
3. Tiny fragments (texture: fur, grain, grass) fade out by their area instead
   of making specks; boundaries, eyes and mouths keep their ink. The fade is
   soft, so a fragment that grows past the limit appears gradually.
"""

from __future__ import annotations

import cv2
import numpy as np

from .styles import LINE_UNIT, Look

TAU = 0.98  # < 1: flat areas give D = (1 - tau) Y > 0, no line
EPS = -1.5  # grey levels of D below which ink starts: faint texture edges stay paper
PHI = 0.25  # per grey level: ink goes from none to full over ~10 levels of D (sharper ink shimmers in video)
OFFSET, SCALE = 200, 4.0  # D as uint8: OFFSET + SCALE * D (0 is D = -50, 255 is D = +13.75)
MIN_SIGMA = 0.6  # working px: below this a Gaussian is no longer one
FRAGMENT_PIXELS = 16  # working px: ink fragments this small (specks of texture) fade out, eyes and mouths stay


def _factor_table(edges: float) -> np.ndarray:
    d = (np.arange(256) - OFFSET) / SCALE
    ink = np.where(d < EPS, -np.tanh(PHI * (d - EPS)), 0.0)  # 0 (none) .. 1 (full)
    return np.round(255 * np.clip(1.0 - edges * ink, 0.0, 1.0)).astype(np.uint8)


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a 0/1 mask: count, labels, stats. 16-bit labels where
    they fit: OpenCV's 32-bit path with stats costs about 3x the CPU (it is the parallel
    one); more than 65535 fragments (a noise frame) raise, and take the 32-bit path."""
    try:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    return count, labels, stats


class Ink:
    def __init__(self, look: Look) -> None:
        self.look = look
        self._table = _factor_table(look.edges)
        self._ink_level = OFFSET + int(SCALE * EPS)  # below this, some ink: a fragment is all of its ink

    def response(self, gray: np.ndarray, short_side: int) -> np.ndarray:
        """uint8 OFFSET + SCALE D of a float32 luminance (0-255) at the working size,
        for a frame whose short side is `short_side` px at full size."""
        h, w = gray.shape
        scale = min(h, w) / short_side  # working px per full-size px
        sigma = max(MIN_SIGMA, self.look.line_width * LINE_UNIT * short_side * scale / 2)
        g1 = cv2.GaussianBlur(gray, (0, 0), sigma)
        g2 = cv2.GaussianBlur(gray, (0, 0), 1.6 * sigma)
        d = cv2.addWeighted(g1, SCALE, g2, -TAU * SCALE, OFFSET, dtype=cv2.CV_8U)
        return self._fade_fragments(d)

    def factor(self, response: np.ndarray) -> np.ndarray:
        """The ink factor (255: paper, 0: black) of a response."""
        return cv2.LUT(response, self._table)

    def _fade_fragments(self, d: np.ndarray) -> np.ndarray:
        ink = cv2.threshold(d, self._ink_level - 1, 1, cv2.THRESH_BINARY_INV)[1]  # 1 where d < _ink_level
        count, labels, stats = _components(ink)
        if count <= 1:
            return d
        area = stats[:, cv2.CC_STAT_AREA].astype(np.float32)
        keep = np.clip(area / FRAGMENT_PIXELS - 1.0, 0.0, 1.0)  # fades in between one and two times the limit
        keep[0] = 1.0  # not ink
        if keep.min() >= 1.0:
            return d
        # d * keep + OFFSET * (1 - keep), in 8 bits: within a level of D's code (a quarter of a grey level)
        weight = np.take(np.round(255 * keep).astype(np.uint8), labels)
        return cv2.add(cv2.multiply(d, weight, scale=1 / 255), cv2.convertScaleAbs(cv2.bitwise_not(weight), alpha=OFFSET / 255))
