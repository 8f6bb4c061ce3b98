"""How long `vidtoon metrics` takes, with each --flow, and against an older vidtoon.

    python benchmarks/metrics.py [--runs 3] [--source VIDEO] [--before DIR]

The source is samples/astronaut.mp4 (1280x720, 4 s, 120 frames) unless given; its
classic cartoon is made once into a temporary folder. Each case is the whole
command line (`python -m vidtoon metrics SOURCE CARTOON -q`, start-up included),
and the cases run in turns, round after round, so that on a shared machine they
all see the same load; the table gives the median wall time of --runs rounds.
--before DIR adds the same command run from an older checkout's package folder
(for instance `git archive ca9a31c vidtoon | tar -x -C DIR`), on PYTHONPATH.
The last row times a mismatched pair (the cartoon cut to half its frames),
which fails on the frame counts before decoding. The load average is printed:
on a shared machine it explains a lot.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from vidtoon.config import Job, Recipe
from vidtoon.io.probe import frame_count
from vidtoon.pipeline import run

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


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    ratio = next((line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ratio")), "-")
    return time.perf_counter() - start, ratio if proc.returncode == 0 else f"exit {proc.returncode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", type=Path, default=SAMPLE)
    parser.add_argument("--before", type=Path, help="an older checkout's folder holding its vidtoon/ package")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cartoon = Path(tmp) / "cartoon.mp4"
        run(Job(args.source, cartoon), Recipe(backend="classic"))
        half = first_frames(cartoon, Path(tmp) / "half.mp4", frame_count(cartoon).frames // 2)
        metrics = [sys.executable, "-m", "vidtoon", "metrics", str(args.source)]
        here = {**os.environ, "PYTHONPATH": str(ROOT)}
        cases = {}
        if args.before:
            cases["before (--before)"] = (metrics + [str(cartoon), "-q"], {**os.environ, "PYTHONPATH": str(args.before)})
        cases["--flow medium"] = (metrics + [str(cartoon), "-q"], here)
        cases["--flow fast"] = (metrics + [str(cartoon), "-q", "--flow", "fast"], here)
        cases["mismatched counts"] = (metrics + [str(half), "-q"], here)
        print(f"{args.source.name} vs its classic cartoon; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start")
        results: dict[str, list[tuple[float, str]]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, (command, env) in cases.items():
                results[name].append(timed(command, env))
        print(f"{'case':<20}{'wall s (median)':>16}{'ratio':>8}   every run")
        for name, runs in results.items():
            walls = [w for w, _ in runs]
            print(f"{name:<20}{statistics.median(walls):>16.1f}{runs[0][1]:>8}   {', '.join(f'{w:.1f}' for w in walls)}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
