"""pix2pix end to end vs the model calls alone: is decoding, resizing, encoding and audio hidden?

    python benchmarks/pix2pix_end_to_end.py [--frames 24] [--width 640] [--height 360] [--max-side 256] [--runs 3] [--threads 1]

The tiny random InstructPix2Pix model (vidtoon.backends.pix2pix.testing) on the CPU, 20 steps,
frames resized to --max-side for the model (and back). torch gets --threads
threads (default 1: on a shared 2-core machine OpenMP's spin-waiting makes 2
threads erratic, see tests/conftest.py; the second core then does the I/O). "model calls alone": the backend called on the clip's
frames, already decoded into memory, in the batches the pipeline would use.
"end to end": `vidtoon cartoonize CLIP --backend pix2pix --model TINYDIR` run
in this process (cli.main), on a clip with AAC audio: decode, model, encode, audio
copy, and loading the model, which is also timed alone and shown subtracted.
The goal: end to end at most 1.15x the model calls alone.
Medians of --runs runs, the cases interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "helpers"))
from clips import make_clip  # noqa: E402  (test clips: moving gradients with stereo AAC)

from vidtoon import backends, cli  # noqa: E402
from vidtoon.backends.pix2pix import Pix2PixSettings  # noqa: E402
from vidtoon.backends.pix2pix.testing import make_tiny_model  # noqa: E402
from vidtoon.config import Recipe  # noqa: E402
from vidtoon.io.reader import open_video  # noqa: E402
from vidtoon.pipeline import batched  # noqa: E402


def model_only(recipe: Recipe, frames: list[np.ndarray]) -> tuple[float, float]:
    """(seconds loading the model, seconds in its calls) on frames in memory."""
    started = time.perf_counter()
    backend, _ = backends.load(recipe)
    backend.reset()
    loaded = time.perf_counter()
    for batch in batched(frames, backend.batch_size):
        backend(np.stack(batch))
    return loaded - started, time.perf_counter() - loaded


def end_to_end(source: Path, target: Path, model: Path, max_side: int) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(["cartoonize", str(source), "-o", str(target), "-y", "-q",
                         "--backend", "pix2pix", "--model", str(model), "--offline", "--max-side", str(max_side)])
    if code != 0:
        raise SystemExit(f"vidtoon cartoonize failed ({code}): {err.getvalue()}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--max-side", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_tiny_model(tmp / "tiny")
        clip = make_clip(tmp / "in.mp4", width=args.width, height=args.height, frames=args.frames, fps=24).path
        settings = Pix2PixSettings(model=str(model), offline=True, max_side=args.max_side)
        recipe = Recipe(backend="pix2pix", settings={"pix2pix": settings})
        with open_video(clip) as video:
            info = video.info
            frames = [f.rgb for f in video.frames()]
        model_only(recipe, frames[:1])  # warm-up: first calls allocate and pick kernels
        load, calls, whole = [], [], []
        for run in range(args.runs):
            seconds_load, seconds_calls = model_only(recipe, frames)
            load.append(seconds_load)
            calls.append(seconds_calls)
            whole.append(end_to_end(clip, tmp / f"out{run}.mp4", model, args.max_side))

    m, e, lo = statistics.median(calls), statistics.median(whole), statistics.median(load)
    work_w, work_h = settings.work_size(info.width, info.height)
    print(f"tiny random IP2P on the CPU ({torch.get_num_threads()} threads): {info}; model at {work_w}x{work_h}, "
          f"{settings.steps} steps; median of {args.runs} runs\n")
    print(f"| {'case':<46} | {'seconds':>7} | {'frames/s':>8} | {'vs model alone':>14} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 10}|{'-' * 16}|")
    rows = [
        ("model calls alone (frames in memory)", m),
        ("vidtoon cartoonize end to end", e),
        ("  the same, less loading the model", e - lo),
        ("loading the model (alone)", lo),
    ]
    for name, seconds in rows:
        print(f"| {name:<46} | {seconds:7.2f} | {len(frames) / seconds:8.2f} | {seconds / m:13.2f}x |")
    print(f"\nend to end / model calls alone: {e / m:.2f} ({(e - lo) / m:.2f} less loading; goal: at most 1.15)")


if __name__ == "__main__":
    main()
