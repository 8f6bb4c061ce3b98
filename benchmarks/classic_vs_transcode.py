"""Classic-backend cartoonize vs a plain transcode of the same file, in one run.

    python benchmarks/classic_vs_transcode.py [VIDEO] [--runs 5]

Both cases run vidtoon's real pipeline (pipeline.run, as the CLI does); the
baseline hands it an identity backend, so it decodes, converts and re-encodes
with the same encoder settings and copies the audio, and the ratio isolates
what the cartoon filter costs. Prints medians of --runs runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vidtoon.backends.classic import ClassicBackend
from vidtoon.config import Settings
from vidtoon.pipeline import batched, run
from vidtoon.reader import open_video

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "astronaut.mp4"


class Identity:
    """A do-nothing backend: what is left is decode, colour conversion and encode."""

    name = "identity"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def reset(self) -> None:
        pass


def run_once(source: Path, target: Path, backend=None) -> tuple[int, float]:
    """The real pipeline, as the CLI runs it (backend None: classic, from settings)."""
    settings = Settings(input=source, output=target, backend="classic", overwrite=True)
    result = run(settings, backend=backend)
    return result.frames, result.seconds


def filter_only(source: Path, backend) -> tuple[int, float]:
    with open_video(source) as video:
        frames = [f.rgb for f in video.frames()]
    started = time.perf_counter()
    for batch in batched(frames, 8):
        backend(np.stack(batch))
    return len(frames), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, nargs="?", default=SAMPLE)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    classic = ClassicBackend()
    cases = {
        "transcode (decode+encode, audio copy)": lambda out: run_once(args.video, out, Identity()),
        "cartoonize, classic backend": lambda out: run_once(args.video, out),
        "classic filter alone (frames in memory)": lambda out: filter_only(args.video, classic),
    }
    fps: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):  # interleave the cases so drift hits all alike
            for name, case in cases.items():
                frames, seconds = case(Path(tmp) / f"{run}.mp4")
                fps.setdefault(name, [])
                fps[name].append(frames / seconds)
    with open_video(args.video) as video:
        print(f"{args.video.name}: {video.info}; median of {args.runs} runs\n")
    base = statistics.median(fps["transcode (decode+encode, audio copy)"])
    print(f"| {'case':<42} | {'fps':>7} | {'vs transcode':>12} |")
    print(f"|{'-' * 44}|{'-' * 9}|{'-' * 14}|")
    for name, values in fps.items():
        median = statistics.median(values)
        print(f"| {name:<42} | {median:7.1f} | {median / base:11.2f}x |")


if __name__ == "__main__":
    main()
