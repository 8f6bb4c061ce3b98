"""How the classic look reads, in numbers and in a contact sheet, beside the anchors.

    pip install scikit-image          # its sample photos (astronaut, coffee, chelsea, rocket)
    python benchmarks/look.py [--sheet look.png] [--runs 3] [--no-video]

Pictures: scikit-image's astronaut, coffee, chelsea and rocket, two frames of
the bundled sample (720p), and the sample's frame 60 upscaled to 1080p and 4K.
Methods: vidtoon's default, each --style, the tutorial filter (per-frame
k-means + adaptive-threshold edges, tests/helpers/reference.py) and OpenCV's
cv2.stylization. Per picture and method, three crude numbers:

    palette90   colours (16 levels a channel) that cover 90% of the pixels
    flat        share of pixels whose 5x5 luminance std is under 1.5 levels
    specks/MP   dark (< 60) blobs under 12 px, per megapixel

then their means per method; then, per style, the flicker (warp error against
the source's own, `vidtoon metrics`) and the speed (fps end to end, and the
ratio to a plain transcode in the same run) on a generated panning clip with a
moving object and on the sample.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))  # the clip generator and the tutorial filter

from clips import make_clip, panning
from reference import NaiveCartoon

from vidtoon.backends.classic import STYLES, ClassicSettings
from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.config import Job, Recipe
from vidtoon.io.reader import open_video
from vidtoon.pipeline import run
from vidtoon.temporal.metrics import measure

SAMPLE = ROOT / "samples" / "astronaut.mp4"
THUMB_HEIGHT = 200


# ---- the three numbers ------------------------------------------------------------------

def palette90(rgb: np.ndarray) -> int:
    codes = (rgb >> 4).astype(np.int32)
    counts = np.sort(np.bincount((codes[..., 0] << 8 | codes[..., 1] << 4 | codes[..., 2]).ravel()))[::-1]
    return int(np.searchsorted(np.cumsum(counts), 0.9 * counts.sum()) + 1)


def flat(rgb: np.ndarray) -> float:
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(luma, (5, 5))
    var = cv2.blur(luma * luma, (5, 5)) - mean * mean
    return float((var < 1.5**2).mean())


def specks(rgb: np.ndarray) -> float:
    dark = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < 60).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    small = int((stats[1:, cv2.CC_STAT_AREA] < 12).sum())
    return small / (rgb.shape[0] * rgb.shape[1] / 1e6)


# ---- pictures and methods ---------------------------------------------------------------

def pictures() -> dict[str, np.ndarray]:
    import skimage.data

    out = {name: getattr(skimage.data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket")}
    with open_video(SAMPLE) as video:
        frames = {f.index: f.rgb for f in video.frames() if f.index in (0, 60)}
    out["sample f0"], out["sample f60"] = frames[0], frames[60]
    out["sample 1080p"] = cv2.resize(frames[60], (1920, 1080), interpolation=cv2.INTER_LANCZOS4)
    out["sample 4K"] = cv2.resize(frames[60], (3840, 2160), interpolation=cv2.INTER_LANCZOS4)
    return out


def methods() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    def classic(settings: ClassicSettings) -> Callable[[np.ndarray], np.ndarray]:
        return lambda rgb: ClassicBackend(settings).picture(rgb)

    tutorial = NaiveCartoon()
    out = {"vidtoon default": classic(ClassicSettings())}
    out.update({f"--style {name}": classic(ClassicSettings(style=name)) for name in STYLES if name != ClassicSettings().style})
    out["tutorial k-means"] = lambda rgb: tutorial(rgb[None])[0]
    out["cv2.stylization"] = lambda rgb: cv2.cvtColor(cv2.stylization(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), cv2.COLOR_BGR2RGB)
    return out


def sheet(rows: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """A contact sheet: one row per picture (source first), one column per method."""
    names = list(next(iter(rows.values())))  # the source first
    tiles = []
    for picture, outputs in rows.items():
        row = []
        for name in names:
            rgb = outputs[name]
            width = round(rgb.shape[1] * THUMB_HEIGHT / rgb.shape[0])
            tile = cv2.resize(rgb, (width, THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
            tile = cv2.copyMakeBorder(tile, 22, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
            cv2.putText(tile, f"{picture}: {name}"[:48], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
            row.append(tile)
        tiles.append(row)
    widths = [max(row[i].shape[1] for row in tiles) for i in range(len(names))]
    lines = [np.hstack([cv2.copyMakeBorder(t, 0, 0, 0, w - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
                        for t, w in zip(row, widths, strict=True)]) for row in tiles]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(lines), cv2.COLOR_RGB2BGR))


def still_table(rows: dict[str, dict[str, np.ndarray]]) -> None:
    names = [n for n in next(iter(rows.values())) if n != "source"]
    scores: dict[str, list[tuple[int, float, float]]] = {n: [] for n in ["source", *names]}
    print(f"| {'picture':<14} | {'method':<18} | {'palette90':>9} | {'flat':>5} | {'specks/MP':>9} |")
    print(f"|{'-' * 16}|{'-' * 20}|{'-' * 11}|{'-' * 7}|{'-' * 11}|")
    for picture, outputs in rows.items():
        for name in ["source", *names]:
            numbers = (palette90(outputs[name]), flat(outputs[name]), specks(outputs[name]))
            scores[name].append(numbers)
            print(f"| {picture:<14} | {name:<18} | {numbers[0]:9d} | {numbers[1]:5.2f} | {numbers[2]:9.0f} |")
    print(f"\nmeans over {len(rows)} pictures (targets for the default: palette90 <= 30, flat >= 0.60, specks <= 300/MP)\n")
    print(f"| {'method':<18} | {'palette90':>9} | {'flat':>5} | {'specks/MP':>9} |")
    print(f"|{'-' * 20}|{'-' * 11}|{'-' * 7}|{'-' * 11}|")
    for name, values in scores.items():
        p, f, s = (statistics.mean(v[i] for v in values) for i in range(3))
        print(f"| {name:<18} | {p:9.1f} | {f:5.2f} | {s:9.0f} |")


# ---- flicker and speed, per style -------------------------------------------------------

class _Identity:
    name, summary, batch_size = "identity", "", 8

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def reset(self) -> None:
        pass


def video_table(tmp: Path, runs: int) -> None:
    clips = {
        "panning clip": make_clip(tmp / "panning.mp4", width=640, height=360, frames=60, fps=30, draw=panning()).path,
        "sample (720p)": SAMPLE,
    }
    styles = {"default": ClassicSettings(), **{name: ClassicSettings(style=name) for name in STYLES}}
    print(f"\nflicker (warp error vs the source's own) and speed; fps median of {runs} runs\n")
    print(f"| {'clip':<14} | {'style':<10} | {'flicker':>8} | {'fps':>6} | {'vs transcode':>12} |")
    print(f"|{'-' * 16}|{'-' * 12}|{'-' * 10}|{'-' * 8}|{'-' * 14}|")
    for clip_name, clip in clips.items():
        fps: dict[str, list[float]] = {"transcode": [], **{name: [] for name in styles}}
        ratio: dict[str, float] = {}
        for _ in range(runs):  # interleaved, so that machine load hits every case alike
            out = tmp / "transcode.mp4"
            fps["transcode"].append(run(Job(clip, out, overwrite=True), Recipe(), backend=_Identity()).fps)
            for name, settings in styles.items():
                out = tmp / f"{name}.mp4"
                fps[name].append(run(Job(clip, out, overwrite=True), Recipe(backend="classic", settings={"classic": settings})).fps)
                if name not in ratio:
                    ratio[name] = measure(clip, out).ratio
        base = statistics.median(fps["transcode"])
        print(f"| {clip_name:<14} | {'transcode':<10} | {'':>8} | {base:6.1f} | {1:11.2f}x |")
        for name in styles:
            median = statistics.median(fps[name])
            print(f"| {clip_name:<14} | {name:<10} | {ratio[name]:7.2f}x | {median:6.1f} | {median / base:11.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, default=Path("look.png"), help="where to write the contact sheet")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-video", action="store_true", help="stills only: skip the flicker and speed table")
    args = parser.parse_args()
    cv2.setRNGSeed(0)
    rows = {}
    for picture, rgb in pictures().items():
        rows[picture] = {"source": rgb, **{name: method(rgb) for name, method in methods().items()}}
    still_table(rows)
    sheet(rows, args.sheet)
    print(f"\ncontact sheet: {args.sheet}")
    if not args.no_video:
        with tempfile.TemporaryDirectory() as tmp:
            video_table(Path(tmp), args.runs)


if __name__ == "__main__":
    main()
