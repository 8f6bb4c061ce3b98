"""What flushing outputs to disk (fsync, io/commit.py) costs: the 720p sample
transcoded through vidtoon's pipeline with and without the two fsyncs.

    python benchmarks/fsync.py [VIDEO] [--runs 3]

The identity backend keeps the cartoon filter out of it, so the difference is
the flush alone against a short encode (the worst case: the longer the run, the
smaller its share). "without" replaces os.fsync in commit.py with a no-op.
Prints the median of --runs runs of each, taken in turns, and the time spent
inside the fsync calls themselves (steadier than the difference on a busy machine).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from classic_vs_transcode import SAMPLE, Identity

from vidtoon.config import Job, Recipe
from vidtoon.io import commit
from vidtoon.pipeline import run

FLUSHES: list[float] = []  # seconds inside the fsync calls themselves


def timed_fsync(fd: int, real=commit.os.fsync) -> None:
    started = time.perf_counter()
    real(fd)
    FLUSHES.append(time.perf_counter() - started)


def once(source: Path, target: Path, sync: bool) -> float:
    real = commit.os.fsync
    commit.os.fsync = timed_fsync if sync else (lambda fd: None)
    try:
        started = time.perf_counter()
        run(Job(source, target, overwrite=True), Recipe(backend="classic"), backend=Identity())
        return time.perf_counter() - started
    finally:
        commit.os.fsync = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:  # the disk outputs go to, not a tmpfs
        target = Path(folder) / "out.mp4"
        once(args.video, target, True)  # warm the caches
        for _ in range(args.runs):
            for sync in (False, True):
                times[sync].append(once(args.video, target, sync))
        size = target.stat().st_size
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.video.name}, {size / 1e6:.1f} MB out, median of {args.runs}")
    print(f"| without fsync | {without:.3f} s |\n| with fsync    | {with_:.3f} s |")
    print(f"| cost          | {with_ - without:+.3f} s ({(with_ / without - 1) * 100:+.1f} %) |")
    per_run = [a + b for a, b in zip(FLUSHES[::2], FLUSHES[1::2], strict=True)]
    print(f"| in fsync      | {statistics.median(per_run) * 1000:.1f} ms a run (file + folder), median |")


if __name__ == "__main__":
    main()
