"""Classic cartoon filter: real-time video abstraction with numpy + OpenCV only.

Follows Winnemöller, Olsen & Gooch, "Real-Time Video Abstraction" (SIGGRAPH 2006):

1. RGB -> CIELAB float32 (L in 0..100).
2. Edge-preserving smoothing: a few bilateral-filter passes.
3. Soft luminance quantisation: Q = q + (dq/2) tanh(phi_q (L - q)), a staircase with
   smooth risers, so a slowly changing pixel glides between bands instead of popping.
   Chroma is kept from the smoothed image with a fixed saturation boost.
4. Soft DoG outlines: D = G_se(L) - tau G_1.6se(L), E = 1 where D > 0 else 1 + tanh(phi_e D).
5. Lab(Q, a, b) -> RGB, times the edge factor.

Every step is a fixed, smooth per-pixel function of the frame (no randomness, no
per-frame palette fitting, no hard thresholds), which is what keeps video temporally
stable. For speed the colour path (steps 1-3, 5) and the DoG run at a working resolution
whose short side is ~360 px; only the final upscale, the outline nonlinearity and the
multiply run at full resolution. All lookup tables are built once in __init__.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import check_batch
from . import ClassicSettings

WORK_SHORT_SIDE = 360  # px; bigger frames are abstracted ~this size (1/2 of 720p, 1/3 of 1080p)

# bilateral filter, in working-resolution px and Lab units. OpenCV measures colour
# distance as |dL| + |da| + |db|, so 15 keeps object boundaries (tens of units) while
# flattening shading and texture (a few units); iterating passes flattens further.
BILATERAL_D = 5
BILATERAL_SIGMA_COLOR = 15.0
BILATERAL_SIGMA_SPACE = 2.0

# soft quantisation: sharpness of each riser in band units (phi_q * dq; phi_q = 0.48 per
# L unit at 8 levels). 6 gives clearly flat bands with risers ~1/3 band wide and a max
# slope dQ/dL of ~3, so small noise is at most tripled on a riser and damped on the flats.
PHI_Q_BANDS = 6.0
QUANT_LUT_SIZE = 4096  # entries over L in [0, 100]: step 0.025 L
SATURATION = 1.15  # fixed chroma boost: the "palette" never depends on the frame

# DoG outlines on the smoothed L, at working resolution (lines come out ~2-3 px wide at 720p).
SIGMA_E = 1.0  # px
TAU = 0.96  # < 1: flat areas give D = (1 - tau) L > 0, i.e. no line; lower = fewer texture lines
PHI_E = 1.0  # per L unit; soft falloff so faint texture gives grey, not flickering black
# D is mapped to uint8 (idx = 255 + EDGE_SCALE * D, saturated) so the nonlinearity is a
# cv2.LUT at full resolution; 255 / EDGE_SCALE = 3 / PHI_E covers tanh down to -0.995.
EDGE_SCALE = 85.0 * PHI_E


def _quant_lut(levels: int) -> np.ndarray:
    """Soft staircase Q(L) sampled on QUANT_LUT_SIZE + 1 points over L in [0, 100]."""
    L = np.linspace(0.0, 100.0, QUANT_LUT_SIZE + 1)
    dq = 100.0 / levels
    phi = PHI_Q_BANDS / dq
    # q = nearest band boundary; the tanh riser sits on it and saturates at the band
    # centres q +- dq/2. Dividing by tanh(phi dq/2) makes the pieces meet exactly there.
    q = np.round(L / dq) * dq
    Q = q + (dq / 2) * np.tanh(phi * (L - q)) / np.tanh(phi * dq / 2)
    return np.clip(Q, dq / 2, 100.0 - dq / 2).astype(np.float32)


def _edge_lut(edges: float) -> np.ndarray:
    """uint8 edge factor 255 * (1 - edges (1 - E(D))) indexed by idx = 255 + EDGE_SCALE * D."""
    D = (np.arange(256) - 255.0) / EDGE_SCALE  # idx 255 stands for every D >= 0
    E = 1.0 + np.tanh(PHI_E * D)
    factor = np.clip(1.0 - edges * (1.0 - E), 0.0, 1.0)
    return np.round(255.0 * factor).astype(np.uint8)


class ClassicBackend:
    """Per-frame cartoon filter with the shared backend call shape (batch in, batch out)."""

    name = "classic"
    summary = ""  # nothing to add to "backend: classic"
    BATCH_SIZE = 8  # frames per call: enough to keep the decode and encode threads busy

    def __init__(self, settings: ClassicSettings = ClassicSettings(), batch_size: int | None = None) -> None:
        self.settings = settings
        self.batch_size = batch_size or self.BATCH_SIZE
        self._qlut = _quant_lut(settings.levels)
        self._elut = _edge_lut(settings.edges)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """batch: uint8 (N, H, W, 3) RGB. Returns a new uint8 array of the same shape."""
        check_batch(batch, "classic")
        out = np.empty_like(batch)
        for frame, dst in zip(batch, out, strict=True):
            self._frame(np.ascontiguousarray(frame), dst)
        return out

    def reset(self) -> None:
        """Forget per-clip state. There is none: each frame is filtered independently."""

    def _frame(self, rgb: np.ndarray, dst: np.ndarray) -> None:
        """Cartoonize one contiguous HxWx3 uint8 RGB frame into dst (same shape)."""
        s = self.settings
        H, W = rgb.shape[:2]
        # integer downscale factor: OpenCV's area/linear resizes are much faster at exact ratios
        f = max(1, round(min(H, W) / WORK_SHORT_SIDE))
        w, h = max(1, round(W / f)), max(1, round(H / f))
        small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA) if f > 1 else rgb

        lab = cv2.cvtColor(small.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)
        for _ in range(s.smooth):
            lab = cv2.bilateralFilter(lab, BILATERAL_D, BILATERAL_SIGMA_COLOR, BILATERAL_SIGMA_SPACE)
        L = cv2.extractChannel(lab, 0)

        # colour: quantised L, boosted chroma, back to RGB (Lab2RGB clips to [0, 1])
        idx = (L * np.float32(QUANT_LUT_SIZE / 100) + np.float32(0.5)).astype(np.int32)
        lab[..., 0] = np.take(self._qlut, idx, mode="clip")
        lab = cv2.multiply(lab, (1.0, SATURATION, SATURATION, 0.0))
        colour = cv2.convertScaleAbs(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), alpha=255.0)
        if f > 1:
            colour = cv2.resize(colour, (W, H), interpolation=cv2.INTER_LINEAR)
        if s.edges == 0:
            np.copyto(dst, colour)
            return

        # outlines: DoG at working res, saturated to a uint8 index, upscaled, then the
        # tanh falloff at full res (a LUT), so lines stay crisp after the upscale
        g1 = cv2.GaussianBlur(L, (0, 0), SIGMA_E)
        g2 = cv2.GaussianBlur(L, (0, 0), 1.6 * SIGMA_E)
        d_idx = cv2.addWeighted(g1, EDGE_SCALE, g2, -TAU * EDGE_SCALE, 255.0, dtype=cv2.CV_8U)
        if f > 1:
            d_idx = cv2.resize(d_idx, (W, H), interpolation=cv2.INTER_LINEAR)
        factor = cv2.cvtColor(cv2.LUT(d_idx, self._elut), cv2.COLOR_GRAY2RGB)
        cv2.multiply(colour, factor, dst=dst, scale=1 / 255)


def cartoonize_image(rgb: np.ndarray, settings: ClassicSettings = ClassicSettings()) -> np.ndarray:
    """One HxWx3 uint8 RGB frame in, cartoon out (what ClassicBackend does per frame)."""
    return ClassicBackend(settings)(np.asarray(rgb)[None])[0]
