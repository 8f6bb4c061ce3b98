"""Classic-backend cartoonize vs a plain transcode of the same file, in one run.

    python benchmarks/classic_vs_transcode.py [VIDEO] [--runs 5]

Both cases run vidtoon's real pipeline (pipeline.run, as the CLI does); the
baseline hands it an identity backend, so it decodes, converts and re-encodes
with the same encoder settings and copies the audio, and the ratio isolates
what the cartoon filter costs. Two more cases hide what the pipeline would
use of the classic backend, to show what each saves: its prepare() (the
stateless part of the filter, on the decode thread), then its planes() too
(YUV planes for the encoder rather than RGB): the path before either.

Prints medians of --runs runs: frames/s, the ratio to the transcode (the median
of each run's ratio to the transcode of the same run, so that drift between
runs cancels; the goal: at least 0.60), and the process's CPU time per frame
(user + system, all threads), which other load on a shared machine disturbs
less than the wall clock does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.config import EncodeSettings, Job, Recipe
from vidtoon.io.reader import open_video
from vidtoon.io.writer import VideoWriter
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


class Hiding:
    """The classic backend with some of its optional methods hidden from the pipeline:
    without "prepare" all its work is on one thread; without "planes" its cartoons reach
    the encoder as full-size RGB, which the writer converts."""

    def __init__(self, *hidden: str) -> None:
        self._backend = backend = ClassicBackend()
        self.name, self.summary, self.batch_size = backend.name, backend.summary, backend.batch_size
        for method in {"prepare", "planes"} - set(hidden):
            setattr(self, method, getattr(backend, method))

    def __call__(self, batch: np.ndarray, prepared=None) -> np.ndarray:
        return self._backend(batch, prepared)

    def reset(self) -> None:
        self._backend.reset()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def run_once(source: Path, target: Path, backend=None) -> tuple[int, float]:
    """The real pipeline, as the CLI runs it (backend None: classic, from the recipe)."""
    result = run(Job(source, target, overwrite=True), Recipe(backend="classic"), backend=backend)
    return result.frames, result.seconds


def upscaled(source: Path, height: int, target: Path) -> Path:
    """The clip at `height` lines (Lanczos), written by vidtoon's own writer at CRF 16 with
    the timestamps and the audio kept: the same pictures and sound at a larger size."""
    with open_video(source) as video:
        width = round(video.info.width * height / video.info.height / 2) * 2
        shape = replace(video.info, width=width, height=height)
        with VideoWriter(target, shape, EncodeSettings(crf=16)) as writer:
            for frame in video.frames():
                writer.write(frame.with_rgb(cv2.resize(frame.rgb, (width, height), interpolation=cv2.INTER_LANCZOS4)))
    return target


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
    parser.add_argument("--height", type=int, help="first scale the clip to this many lines (e.g. 1080)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.height:
            args.video = upscaled(args.video, args.height, Path(tmp) / f"{args.video.stem}-{args.height}p.mp4")
        measure(args)


def measure(args: argparse.Namespace) -> None:
    classic, in_memory = ClassicBackend(), decoded(args.video)
    cases = {
        TRANSCODE: lambda out: run_once(args.video, out, Identity()),
        "cartoonize, classic backend (end to end)": lambda out: run_once(args.video, out),
        "  the same, all on one thread (no prepare)": lambda out: run_once(args.video, out, Hiding("prepare")),
        "  ... and RGB to the encoder (no planes)": lambda out: run_once(args.video, out, Hiding("prepare", "planes")),
        "classic filter alone (frames in memory)": lambda out: filter_only(in_memory, classic),
    }
    fps: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):  # interleave the cases so drift hits all alike
            for name, case in cases.items():
                before = cpu_seconds()
                frames, seconds = case(Path(tmp) / f"{i}.mp4")
                cpu[name].append((cpu_seconds() - before) / frames)
                fps[name].append(frames / seconds)
    with open_video(args.video) as video:
        print(f"{args.video.name}: {video.info}; {os.cpu_count()} CPUs; median of {args.runs} runs\n")
    print(f"| {'case':<42} | {'fps':>7} | {'vs transcode':>12} | {'CPU ms/frame':>12} |")
    print(f"|{'-' * 44}|{'-' * 9}|{'-' * 14}|{'-' * 14}|")
    ratio = {name: paired(values, fps[TRANSCODE]) for name, values in fps.items()}
    for name, values in fps.items():
        ms = 1000 * statistics.median(cpu[name])
        print(f"| {name:<42} | {statistics.median(values):7.1f} | {ratio[name]:11.2f}x | {ms:12.1f} |")
    name = "cartoonize, classic backend (end to end)"
    runs = [c / t for c, t in zip(fps[name], fps[TRANSCODE], strict=True)]
    print(f"\nclassic end to end / transcode: {ratio[name]:.2f} (runs {min(runs):.2f}-{max(runs):.2f}; goal: at least 0.60)")


def paired(values: list[float], base: list[float]) -> float:
    """The median of each run's ratio to the transcode of the same run: the machine's
    drift between runs cancels."""
    return statistics.median(v / b for v, b in zip(values, base, strict=True))


if __name__ == "__main__":
    main()
