"""Flicker and speed of each temporal option, in one run: warp-error ratio
(`vidtoon metrics`: output / source, 1 = as steady as the source) and frames/s.

    python benchmarks/temporal.py [VIDEO ...] [--runs 3]

Clips: the panning clip with a moving ball that tests/test_temporal.py's target
test generates (320x240, 30 frames), and samples/astronaut.mp4 (720p, 120
frames), unless VIDEOs are given. Every case runs vidtoon's real pipeline
(decode, cartoonize, encode with audio copy) into a file, which is measured
once; fps is the median of --runs runs (the slow reference runs once). The
stabiliser's own cost is also timed alone, beside the classic filter's, on
frames already in memory.

A case is a function (source, target) -> pipeline.Result; add one to CASES
for each new option. The pix2pix rows run the tiny RANDOM-weight model
(vidtoon.backends.pix2pix.testing.make_tiny_model, built into the temporary folder) on the CPU,
one torch thread, 10 steps, frames worked at 128 px on the long side: their
warp errors show each mechanism at work, not the look of the real model, and
their speed is the tiny model's (see benchmarks/gpu.py for the full size).
`--only TEXT` keeps the cases whose name contains TEXT (classic always runs:
the fps column is relative to it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))  # the clip generator and the reference cartoonizer

from clips import make_clip, panning  # noqa: E402
from reference import NaiveCartoon  # noqa: E402

from vidtoon.backends.classic.filter import ClassicBackend  # noqa: E402
from vidtoon.backends.pix2pix import Pix2PixSettings  # noqa: E402
from vidtoon.config import Job, Recipe  # noqa: E402
from vidtoon.io.reader import open_video  # noqa: E402
from vidtoon.pipeline import Result, run  # noqa: E402
from vidtoon.temporal.metrics import measure  # noqa: E402
from vidtoon.temporal.stabilize import Stabilizer  # noqa: E402

SAMPLE = ROOT / "samples" / "astronaut.mp4"


def classic(source: Path, target: Path) -> Result:
    return run(Job(source, target, overwrite=True), Recipe(backend="classic"))


def classic_stabilized(source: Path, target: Path) -> Result:
    return run(Job(source, target, overwrite=True), Recipe(backend="classic", stabilize=True))


def naive(source: Path, target: Path) -> Result:
    return run(Job(source, target, overwrite=True), Recipe(backend="classic"), backend=NaiveCartoon())


PIX2PIX = dict(steps=10, max_side=128)  # the tiny model's settings for every pix2pix row
_tiny: dict[str, Path] = {}


def pix2pix(**options: object) -> Callable[[Path, Path], Result]:
    """A case: the pix2pix backend on the tiny random model with these temporal options."""

    def case(source: Path, target: Path) -> Result:
        if "folder" not in _tiny:  # built once, next to the outputs (a temporary folder)
            import torch

            from vidtoon.backends.pix2pix.testing import make_tiny_model

            torch.set_num_threads(1)  # a tiny model gains nothing from threads (see tests/conftest.py)
            _tiny["folder"] = make_tiny_model(target.parent / "tiny-ip2p")
        settings = Pix2PixSettings(model=str(_tiny["folder"]), **PIX2PIX, **options)  # type: ignore[arg-type]
        return run(Job(source, target, overwrite=True), Recipe(backend="pix2pix", settings={"pix2pix": settings}))

    return case


# name -> (case, runs it gets at most: the tutorial cartoonizer is slow and only a reference)
CASES: dict[str, tuple[Callable[[Path, Path], Result], int | None]] = {
    "classic": (classic, None),
    "classic --stabilize": (classic_stabilized, None),
    "per-frame k-means + adaptive threshold": (naive, 1),
    "pix2pix tiny (shared noise only; default)": (pix2pix(), None),
    "pix2pix tiny --cross-frame": (pix2pix(cross_frame=True), None),
    "pix2pix tiny --reuse-latents 0.5": (pix2pix(reuse_latents=0.5), None),
    "pix2pix tiny --keyframe-every 4": (pix2pix(keyframe_every=4), None),
    "pix2pix tiny, all three": (pix2pix(cross_frame=True, reuse_latents=0.5, keyframe_every=4), None),
}


def in_memory(source: Path, runs: int) -> tuple[float, float]:
    """Milliseconds per frame of the classic filter and of the stabiliser, each by
    itself on frames already decoded (medians, interleaved)."""
    with open_video(source) as video:
        frames = np.stack([f.rgb for f in video.frames()])
    backend, stage = ClassicBackend(), Stabilizer()
    cartoons = backend(frames)
    filter_ms, stage_ms = [], []
    for _ in range(runs):
        started = time.perf_counter()
        for start in range(0, len(frames), 8):
            backend(frames[start : start + 8])
        filter_ms.append(1000 * (time.perf_counter() - started) / len(frames))
        stage.reset()
        started = time.perf_counter()
        for start in range(0, len(frames), 8):
            stage(frames[start : start + 8], cartoons[start : start + 8])
        stage_ms.append(1000 * (time.perf_counter() - started) / len(frames))
    return statistics.median(filter_ms), statistics.median(stage_ms)


def bench(source: Path, runs: int, tmp: Path, only: str | None = None) -> None:
    fps: dict[str, list[float]] = {name: [] for name in CASES if name == "classic" or not only or only in name}
    ratio: dict[str, float | None] = {}
    for run_index in range(runs):  # interleaved, so that drift in machine load hits all alike
        for name, (case, limit) in CASES.items():
            if name not in fps or limit is not None and run_index >= limit:
                continue
            target = tmp / f"{len(ratio)}.mp4"
            result = case(source, target)
            fps[name].append(result.fps)
            if name not in ratio:
                ratio[name] = measure(source, target).ratio
    with open_video(source) as video:
        print(f"\n{source.name}: {video.info}; fps median of {runs} runs")
    filter_ms, stage_ms = in_memory(source, runs)
    print(f"in memory: classic filter {filter_ms:.1f} ms per frame, stabiliser {stage_ms:.1f} ms per frame\n")
    base = statistics.median(fps["classic"])
    print(f"| {'case':<42} | {'warp error vs source':>20} | {'fps':>6} | {'fps vs classic':>14} |")
    print(f"|{'-' * 44}|{'-' * 22}|{'-' * 8}|{'-' * 16}|")
    for name, values in fps.items():
        median = statistics.median(values)
        r = f"{ratio[name]:.2f}x" if ratio[name] is not None else "n/a"
        print(f"| {name:<42} | {r:>20} | {median:6.1f} | {median / base:13.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="*")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", metavar="TEXT", help="only the cases whose name contains TEXT (and classic)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = args.videos or [
            make_clip(tmp / "panning.mp4", width=320, height=240, frames=30, fps=30, draw=panning()).path,
            SAMPLE,
        ]
        for video in videos:
            bench(video, args.runs, tmp, args.only)


if __name__ == "__main__":
    main()
