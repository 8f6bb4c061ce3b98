"""The clip's palette: a few colours fitted once, and a lookup table that maps
every RGB colour to them.

    palette = Palette(look)
    flat = palette(smoothed_rgb)      # fits on the first frame, then only maps

Fitting is k-means in CIELAB with chroma weighted up (CHROMA_WEIGHT), so hues
get colours of their own instead of the palette going to shades of the
largest grey area. It happens on a clip's first frame, and again only when a
frame's colours no longer fit (a scene cut, a camera settling its exposure):
never per frame, so colours do not swim.

Mapping is a table over the RGB cube (BITS per channel), each cell holding
its palette colour: a soft blend of the nearest ones, so a pixel near the
border between two colours glides between them instead of popping, and the
border's width is set by Look.softness. One np.take per frame.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .styles import Look

BITS = 6  # per channel: 262144 cells, 1 MiB of table; finer than any visible step
CELLS = 1 << BITS
CHROMA_WEIGHT = 2.5  # a and b count this much more than L when fitting and assigning
BLEND = 40.0  # temperature of the soft assignment, in weighted Lab units squared, at softness 1
SAMPLES = 8000  # about this many pixels of the working image, on a grid, are what the palette is fitted on
ITERATIONS = 12
CHROMA_PULL = 3.0  # Lab chroma at which a sample counts twice as much as a grey one
POOR_FIT = 30.0  # weighted Lab units: samples this far from the bulk's colours, and among
POOR_SHARE = 0.02  # the worst fitted 2%, get colours of their own
MISFIT = 40.0  # weighted Lab units: a pixel this far from every palette colour is not shown by it
REFIT_SHARE = 0.2  # refit when at least this share of a frame is misfit ...
REFIT_RATIO = 3.0  # ... and that is this many times the share on the frame fitted (a cut, a fade from black)
ERROR_STEP = 4  # the misfit share from every 4th pixel of every 4th row
PAPER = (252, 128, 132)  # Lab of the sketch style's paper: a warm white
PAPER_TONE = 0.25  # how much of the picture's darkness shows on the paper
_SHIFT = (np.arange(256) >> (8 - BITS)).astype(np.uint8)
_WEIGHT = np.float32([1.0, CHROMA_WEIGHT, CHROMA_WEIGHT])
_CELL_PARTS = np.stack([_SHIFT.astype(np.float32) * (1 << s) for s in (2 * BITS, BITS, 0)], axis=-1).reshape(256, 1, 3)
_SUM = np.ones((1, 3), np.float32)


@lru_cache(maxsize=1)
def _cells_lab() -> np.ndarray:
    """(CELLS^3, 3) float32 Lab (OpenCV's 8-bit scale) of every cell's centre."""
    grid = ((np.arange(CELLS) + 0.5) * (256 / CELLS)).astype(np.uint8)
    r, g, b = np.meshgrid(grid, grid, grid, indexing="ij")
    rgb = np.stack([r, g, b], axis=-1).reshape(-1, 1, 3)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float32)


def cell_index(rgb: np.ndarray) -> np.ndarray:
    """The table cell of every pixel of a uint8 (H, W, 3) RGB image (intp, for np.take).
    Each channel's share of the index from one table, summed by cv2.transform: in
    float32, exact for 18-bit integers, and ~1/3 the cost of numpy's shifts and ors."""
    return cv2.transform(cv2.LUT(rgb, _CELL_PARTS), _SUM).astype(np.intp)


def distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(len(x), len(c)) squared distances |x|^2 - 2 x.c + |c|^2, as one matrix product of
    [x, |x|^2, 1] and [-2c, 1, |c|^2] (a third of the cost of the sum of three arrays)."""
    ones_x, ones_c = np.ones((len(x), 1), np.float32), np.ones((len(c), 1), np.float32)
    xa = np.hstack([x, np.einsum("ij,ij->i", x, x)[:, None], ones_x])
    ca = np.hstack([-2 * c, ones_c, np.einsum("ij,ij->i", c, c)[:, None]])
    d2 = xa @ ca.T
    return np.maximum(d2, 0.0, out=d2)


def kmeans(x: np.ndarray, k: int, weights: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """k centres of the rows of x, each row counting `weights` (k-means++ start,
    Lloyd iterations); deterministic."""
    w = np.ones(len(x), np.float32) if weights is None else weights
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, min(k, len(x))):
        p = d2 * w
        pick = rng.choice(len(x), p=p / p.sum()) if p.sum() > 0 else rng.integers(len(x))
        centres.append(x[pick])
        d2 = np.minimum(d2, ((x - x[pick]) ** 2).sum(axis=1))
    c = np.array(centres, np.float32)
    for _ in range(ITERATIONS):
        labels = distances(x, c).argmin(axis=1)
        mass = np.bincount(labels, weights=w, minlength=len(c))
        sums = np.stack([np.bincount(labels, weights=w * x[:, i], minlength=len(c)) for i in range(x.shape[1])], axis=1)
        c = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1e-9)[:, None], c).astype(np.float32)
    return np.unique(np.round(c, 3), axis=0)  # duplicates where the frame has fewer colours


def fit(x: np.ndarray, k: int) -> np.ndarray:
    """k colours for the samples x (weighted Lab). Coloured samples count more than
    greys (CHROMA_PULL), so skin, hair and clothes get colours of their own rather
    than the palette going to shades of a large grey background; k-means for the
    bulk, then the last few for what it fits worst, so that a small object of its
    own colour (a green ball on an orange suit) keeps it."""
    chroma = np.hypot(x[:, 1] - 128 * CHROMA_WEIGHT, x[:, 2] - 128 * CHROMA_WEIGHT) / CHROMA_WEIGHT
    weights = 1.0 + chroma / CHROMA_PULL
    extra = k // 4 if k >= 8 else 0
    centres = kmeans(x, k - extra, weights)
    if extra:
        error = distances(x, centres).min(axis=1)
        poor = x[error > max(POOR_FIT**2, np.quantile(error, 1 - POOR_SHARE))]  # the worst fitted few
        if len(poor) >= extra:
            centres = np.unique(np.vstack([centres, kmeans(poor, extra, seed=1)]), axis=0)
    return centres


class Palette:
    """The clip's colours and the table that maps to them; reset() before a clip."""

    def __init__(self, look: Look) -> None:
        self.look = look
        self.fits = 0  # how many times a palette was fitted in this clip (1 for a steady clip)
        self.reset()

    def reset(self) -> None:
        self.centres: np.ndarray | None = None  # weighted Lab, (K, 3)
        self._table: np.ndarray | None = None  # uint32 per cell: R, G, B, distance to the palette
        self._fit_misfit = 0.0
        self.fits = 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB, smoothed: the same picture in palette colours."""
        if self._table is None:
            self._fit(rgb)
        mapped = np.take(self._table, cell_index(rgb)).view(np.uint8).reshape(*rgb.shape[:2], 4)
        if self._misfit(mapped[::ERROR_STEP, ::ERROR_STEP, 3]) > max(REFIT_SHARE, REFIT_RATIO * self._fit_misfit):
            self._fit(rgb)
            mapped = np.take(self._table, cell_index(rgb)).view(np.uint8).reshape(*rgb.shape[:2], 4)
        return cv2.cvtColor(mapped, cv2.COLOR_RGBA2RGB)  # (a copy without the error byte, far faster than numpy's)

    @staticmethod
    def _misfit(error: np.ndarray) -> float:
        """The share of pixels the palette cannot show: farther than MISFIT from every colour."""
        return float((error > MISFIT).mean())

    def _fit(self, rgb: np.ndarray) -> None:
        step = max(1, round(np.sqrt(rgb.shape[0] * rgb.shape[1] / SAMPLES)))
        sample = rgb[::step, ::step].reshape(-1, 1, 3)
        lab = cv2.cvtColor(np.ascontiguousarray(sample), cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float32)
        self.centres = fit(lab * _WEIGHT, self.look.colours)
        self._table, cell_error = self._build(self.centres)
        # the fit's own share of misfits, from the table (what __call__ measures later)
        self._fit_misfit = self._misfit(cell_error[cell_index(np.ascontiguousarray(sample))])
        self.fits += 1

    def _build(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The table for these centres, and each cell's distance to the nearest one."""
        look = self.look
        cells = _cells_lab() * _WEIGHT  # built once (~20 ms), shared by every palette
        # (K, cells), not (cells, K): numpy reduces across K rows ~5x faster than along a short last axis
        d2 = distances(centres.astype(np.float32), cells)
        nearest = d2.min(axis=0)
        if look.softness > 0:  # in place: each (K, cells) temporary is 16 MiB of fresh pages
            weights = np.exp(np.multiply(np.subtract(nearest, d2, out=d2), np.float32(1 / (BLEND * look.softness)), out=d2), out=d2)
        else:
            weights = (d2 == nearest).astype(np.float32)
        weights /= weights.sum(axis=0)
        lab = (centres.T @ weights).T / _WEIGHT
        if look.paper:
            # light paper tones: the palette's lightness, lifted toward white
            lab = np.stack([PAPER[0] - PAPER_TONE * (PAPER[0] - lab[:, 0]), np.full(len(lab), PAPER[1]),
                            np.full(len(lab), PAPER[2])], axis=1)
        else:
            lab[:, 1:] = 128 + (lab[:, 1:] - 128) * look.saturation
        rgb = cv2.cvtColor(lab.clip(0, 255).round().astype(np.uint8).reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(-1, 3)
        error = np.sqrt(nearest).clip(0, 255)
        table = np.empty((len(cells), 4), np.uint8)
        table[:, :3] = rgb
        table[:, 3] = error.round().astype(np.uint8)
        return table.view(np.uint32).ravel(), error
