"""Classic-backend cartoonize vs a plain transcode of the same file, in one run.

    python benchmarks/classic_vs_transcode.py [VIDEO] [--runs 5]

Both cases run vidtoon's real pipeline (pipeline.run, as the CLI does); the
baseline hands it an identity backend, so it decodes, converts and re-encodes
with the same encoder settings and copies the audio, and the ratio isolates
what the cartoon filter costs. A third case hands the encoder the classic
backend's RGB instead of its YUV planes (planes()), to show what those save.

Prints medians of --runs runs: frames/s, the ratio to the transcode (the goal:
at least 0.60), and the process's CPU time per frame (user + system, all
threads), which other load on a shared machine disturbs less than the wall
clock does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.config import Job, Recipe
from vidtoon.io.reader import open_video
from vidtoon.pipeline import batched, run

TRANSCODE = "transcode (decode+encode, audio copy)"
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "astronaut.mp4"


class Identity:
    """A do-nothing backend: what is left is decode, colour conversion and encode."""

    name = "identity"
    summary = ""
    batch_size = 8

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def reset(self) -> None:
        pass


class ThroughRgb:
    """The classic backend without its planes(): its cartoons reach the encoder as
    full-size RGB, which the writer converts (the path before planes(), for comparison)."""

    def __init__(self, backend: ClassicBackend) -> None:
        self._backend = backend
        self.name, self.summary, self.batch_size = backend.name, backend.summary, backend.batch_size

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._backend(batch)

    def reset(self) -> None:
        self._backend.reset()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def run_once(source: Path, target: Path, backend=None) -> tuple[int, float]:
    """The real pipeline, as the CLI runs it (backend None: classic, from the recipe)."""
    result = run(Job(source, target, overwrite=True), Recipe(backend="classic"), backend=backend)
    return result.frames, result.seconds


def decoded(source: Path) -> list[np.ndarray]:
    with open_video(source) as video:
        return [f.rgb for f in video.frames()]


def filter_only(frames: list[np.ndarray], backend) -> tuple[int, float]:
    """The backend on frames decoded beforehand, in its own batch size: its time and CPU alone."""
    backend.reset()
    started = time.perf_counter()
    for batch in batched(frames, backend.batch_size):
        backend(np.stack(batch))
    return len(frames), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, nargs="?", default=SAMPLE)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    classic, in_memory = ClassicBackend(), decoded(args.video)
    cases = {
        TRANSCODE: lambda out: run_once(args.video, out, Identity()),
        "cartoonize, classic backend (end to end)": lambda out: run_once(args.video, out),
        "  the same, RGB to the encoder (no planes)": lambda out: run_once(args.video, out, ThroughRgb(ClassicBackend())),
        "classic filter alone (frames in memory)": lambda out: filter_only(in_memory, classic),
    }
    fps: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):  # interleave the cases so drift hits all alike
            for name, case in cases.items():
                before = cpu_seconds()
                frames, seconds = case(Path(tmp) / f"{run}.mp4")
                cpu[name].append((cpu_seconds() - before) / frames)
                fps[name].append(frames / seconds)
    with open_video(args.video) as video:
        print(f"{args.video.name}: {video.info}; {os.cpu_count()} CPUs; median of {args.runs} runs\n")
    base = statistics.median(fps[TRANSCODE])
    print(f"| {'case':<42} | {'fps':>7} | {'vs transcode':>12} | {'CPU ms/frame':>12} |")
    print(f"|{'-' * 44}|{'-' * 9}|{'-' * 14}|{'-' * 14}|")
    for name, values in fps.items():
        median = statistics.median(values)
        ms = 1000 * statistics.median(cpu[name])
        print(f"| {name:<42} | {median:7.1f} | {median / base:11.2f}x | {ms:12.1f} |")
    classic = statistics.median(fps["cartoonize, classic backend (end to end)"])
    print(f"\nclassic end to end / transcode: {classic / base:.2f} (goal: at least 0.60)")


if __name__ == "__main__":
    main()
