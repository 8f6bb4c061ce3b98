"""Pictures of a warp-error report, drawn with OpenCV (no plotting library):

    plot(report)    per-frame warp error of source and output, one line each
    sheet(report)   contact sheet: source | output | output's unexplained change
    save_image(path, image)   PNG/JPEG, written atomically

Images are BGR uint8, as OpenCV writes them.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..io import images
from .metrics import WarpReport

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (40, 40, 40)
GRID = (225, 225, 225)
SOURCE_COLOUR = (180, 110, 30)  # blue-ish (BGR)
OUTPUT_COLOUR = (20, 100, 240)  # orange
RESIDUAL_RANGE = 64.0  # RMS 0-255 difference shown as the brightest colour
OCCLUDED = (90, 40, 20)  # dark blue: pixels the mask left out


def check_image_path(path: Path, overwrite: bool) -> None:
    """Refuse, before any work, a --plot/--sheet path that cannot or should not be written."""
    images.check_image_path(path, overwrite, suffixes=IMAGE_SUFFIXES)


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Encode (BGR) by the suffix and write atomically."""
    images.write_bgr(Path(path), image)


# ---- the per-frame plot ------------------------------------------------------------------

def plot(report: WarpReport, size: tuple[int, int] = (960, 480)) -> np.ndarray:
    """Line chart of warp error per frame pair, source and output, with their means."""
    width, height = size
    left, right, top, bottom = 90, 20, 56, 46
    image = np.full((height, width, 3), 255, np.uint8)
    series = {
        "source": ([p.source for p in report.pairs], SOURCE_COLOUR, report.source_error),
        "output": ([p.output for p in report.pairs], OUTPUT_COLOUR, report.output_error),
    }
    values = [v for data, _, _ in series.values() for v in data if v is not None]
    y_step = _nice_step(max(values, default=0.0) or 1e-6, 5)
    y_max = y_step * math.ceil((max(values, default=0.0) or 1e-6) / y_step)
    last = max(1, len(report.pairs) - 1)
    x_step = max(1, int(_nice_step(last, 8)))

    def at(x: float, y: float) -> tuple[int, int]:
        px = left + (width - left - right) * x / last
        py = height - bottom - (height - top - bottom) * y / y_max
        return round(px), round(py)

    # grid and axis labels
    for k in range(0, round(y_max / y_step) + 1):
        y = k * y_step
        cv2.line(image, at(0, y), at(last, y), GRID, 1)
        _text(image, f"{y:.2e}" if y else "0", (8, at(0, y)[1] + 4))
    for x in range(0, last + 1, x_step):
        cv2.line(image, at(x, 0), (at(x, 0)[0], at(x, 0)[1] + 5), INK, 1)
        _text(image, str(x), (at(x, 0)[0] - 6, height - bottom + 22))
    cv2.rectangle(image, at(0, y_max), at(last, 0), INK, 1)
    _text(image, "frame t (pair t, t+1)", (width - right - 190, height - 6))
    ratio = f"{report.ratio:.2f}x" if report.ratio is not None else "n/a"
    _text(image, f"warp error per frame (MSE, RGB 0-1): output / source = {ratio}", (left, 22), 0.6)
    # the lines (broken where a pair could not be compared), dashed means
    for row, (name, (data, colour, mean)) in enumerate(series.items()):
        for run in _runs(data):
            points = np.array([at(x, y) for x, y in run], np.int32)
            if len(points) == 1:
                cv2.circle(image, tuple(points[0]), 2, colour, -1, cv2.LINE_AA)
            cv2.polylines(image, [points], False, colour, 2, cv2.LINE_AA)
        if not math.isnan(mean):
            _dashed(image, at(0, mean), at(last, mean), colour)
        label = f"{name}: mean {mean:.2e}" if not math.isnan(mean) else f"{name}: n/a"
        x0, y0 = width - right - 250, 20 + 18 * row
        cv2.line(image, (x0, y0 - 4), (x0 + 24, y0 - 4), colour, 2, cv2.LINE_AA)
        _text(image, label, (x0 + 30, y0))
    return image


def _nice_step(span: float, ticks: int) -> float:
    """1, 2 or 5 times a power of ten, giving about `ticks` steps over span."""
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _runs(values: list[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive (x, y) stretches without gaps."""
    runs: list[list[tuple[int, float]]] = [[]]
    for x, y in enumerate(values):
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def _dashed(image: np.ndarray, a: tuple[int, int], b: tuple[int, int], colour: tuple[int, int, int]) -> None:
    for x in range(a[0], b[0], 12):
        cv2.line(image, (x, a[1]), (min(x + 6, b[0]), a[1]), colour, 1, cv2.LINE_AA)


def _text(image: np.ndarray, text: str, at: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(image, text, at, FONT, scale, INK, 1, cv2.LINE_AA)


# ---- the contact sheet -------------------------------------------------------------------

def sheet(report: WarpReport) -> np.ndarray:
    """Rows of source | output | residual thumbnails for the report's samples.
    The residual is the output's change from t to t+1 that the source's motion
    does not explain (black: none, bright: RESIDUAL_RANGE or more); dark blue
    pixels were masked as occluded."""
    if not report.samples:
        raise ValueError("the report holds no samples; measure(..., samples=N) keeps them")
    gap, label = 6, 22
    h, w = report.samples[0].source.shape[:2]
    header = 30
    image = np.full((header + len(report.samples) * (h + label + gap), 3 * w + 4 * gap, 3), 255, np.uint8)
    for col, title in enumerate(("source", "output", "output change not explained by motion")):
        _text(image, title, (gap + col * (w + gap), 20), 0.5)
    for row, sample in enumerate(report.samples):
        y = header + row * (h + label + gap)
        pair = report.pairs[sample.frame]
        _text(image, f"frame {sample.frame}: warp error source {_short(pair.source)}, "
                     f"output {_short(pair.output)}", (gap, y + 15))
        y += label
        tiles = (_bgr(sample.source), _bgr(sample.output), _residual(sample.residual))
        for col, tile in enumerate(tiles):
            x = gap + col * (w + gap)
            image[y : y + h, x : x + w] = tile
    return image


def _residual(residual: np.ndarray) -> np.ndarray:
    scaled = np.clip(residual * (255.0 / RESIDUAL_RANGE), 0, 255).astype(np.uint8)
    tile = cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)
    tile[residual < 0] = OCCLUDED
    return tile


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _short(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"
