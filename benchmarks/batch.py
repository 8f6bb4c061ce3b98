"""Batch throughput: the same folder of clips with --jobs 1, --jobs 2 and --ray (local), in one run.

    python benchmarks/batch.py [--clips 8] [--runs 3] [--size 640x360] [--frames 72]

Generates the clips (moving pictures with AAC audio, 24 fps), then runs the
real command line, `vidtoon batch IN -o OUT --backend classic --force`, once per
case per round, cases interleaved so that drift hits all alike. Wall time is the
whole command as a user sees it: start-up, worker processes (or Ray's start and
actors), every clip, the report. Prints medians of --runs rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "helpers"))

from clips import make_clip  # noqa: E402

CASES = {
    "--jobs 1": ["--jobs", "1"],
    "--jobs 2": ["--jobs", "2"],
    "--ray (local), 2 actors": ["--ray", "--jobs", "2"],
}


def run_case(source: Path, out: Path, extra: list[str]) -> float:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "vidtoon", "batch", str(source), "-o", str(out), "--backend", "classic", "--force", "-q", *extra]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(extra)} failed ({proc.returncode}): {proc.stderr}")
    counts = json.loads((out / "report.json").read_text())["counts"]
    assert counts["done"] == len(list(source.iterdir())), counts
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--frames", type=int, default=72)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in"
        source.mkdir()
        for i in range(args.clips):
            make_clip(source / f"clip{i}.mp4", width=width, height=height, frames=args.frames, fps=24)
        for round_ in range(args.runs):
            for case, (name, extra) in enumerate(CASES.items()):
                seconds[name].append(run_case(source, Path(tmp) / f"out-{round_}-{case}", extra))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{args.clips} clips of {width}x{height}, {args.frames} frames each (24 fps, AAC audio), "
        f"classic backend, {cpus} CPUs; median of {args.runs} runs\n"
    )
    base = statistics.median(seconds["--jobs 1"])
    print(f"| {'case':<24} | {'total s':>7} | {'clips/s':>7} | {'vs --jobs 1':>11} |")
    print(f"|{'-' * 26}|{'-' * 9}|{'-' * 9}|{'-' * 13}|")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"| {name:<24} | {median:7.1f} | {args.clips / median:7.2f} | {base / median:10.2f}x |")


if __name__ == "__main__":
    main()
