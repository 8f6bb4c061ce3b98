"""How long `vidtoon metrics` takes, and what --flow and the threads change.

    python benchmarks/metrics.py [--runs 3] [--source VIDEO]

The source is samples/astronaut.mp4 (1280x720, 4 s, 120 frames) unless given; its
classic cartoon is made once into a temporary folder. Each row is measure() with
one flow and thread count, the median wall time of --runs runs (the CPU time of
that run beside it), and the ratio it reports. threads=1 is how metrics ran
before it used a thread pool. The last row times a mismatched pair (the cartoon
cut to half its frames), which fails on the frame counts before decoding.
The load average is printed too: on a shared machine it explains a lot.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

import av

from vidtoon.config import Job, Recipe
from vidtoon.errors import InputError
from vidtoon.pipeline import run
from vidtoon.temporal.metrics import available_cores, measure

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "astronaut.mp4"


def first_frames(source: Path, target: Path, count: int) -> Path:
    """The first `count` video packets of `source` remuxed into `target` (no re-encoding)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = src.streams.video[0]
        copy = out.add_stream_from_template(stream)
        kept = 0
        for packet in src.demux(stream):
            if packet.size and kept < count:
                packet.stream = copy
                out.mux(packet)
                kept += 1
    return target


def timed(call) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", type=Path, default=SAMPLE)
    args = parser.parse_args()
    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        cartoon = Path(tmp) / "cartoon.mp4"
        run(Job(args.source, cartoon), Recipe(backend="classic"))
        print(f"{args.source.name} vs its classic cartoon; {cores} cores; load average {os.getloadavg()[0]:.1f} at start")
        print(f"{'flow':<8}{'threads':>8}{'wall s (median)':>17}{'cpu s':>8}{'ratio':>8}   all wall s")
        for flow, threads in (("medium", 1), ("medium", cores), ("fast", cores)):
            call = functools.partial(measure, args.source, cartoon, flow=flow, threads=threads)
            runs = [timed(call) for _ in range(args.runs)]
            wall, cpu, report = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
            walls = ", ".join(f"{r[0]:.1f}" for r in runs)
            print(f"{flow:<8}{threads:>8}{wall:>17.1f}{cpu:>8.1f}{report.ratio:>8.2f}   {walls}")
        half = first_frames(cartoon, Path(tmp) / "half.mp4", 60)
        walls = []
        for _ in range(args.runs):
            start = time.perf_counter()
            try:
                measure(args.source, half)
            except InputError:
                walls.append(time.perf_counter() - start)
        print(f"mismatched counts (120 vs 60 frames) fail after {statistics.median(walls):.2f} s")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
