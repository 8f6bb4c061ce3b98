"""UNet evaluations per frame for each pix2pix speed option, and the CPU fps beside the default.

    python benchmarks/unet_evals.py            # tiny random model, CPU, one thread: about 2 minutes

A "UNet sample" is one latent through the UNet once: per frame and step, 3 under the full
guidance ([text | image | none]), 2 at --image-guidance 1, 1 with guidance off. The count is
taken by a forward hook on the UNet while the backend runs the frames (a pan, so that
--reuse-latents finds its motion), and so is the mean UNet batch: samples per UNet call
(frames / call: that over the guidance branches). With --reuse-latents the first frame runs
all steps (a group of its own, whatever --reuse-batch), the rest from step k: over F frames that
is steps x branches x (1 - STRENGTH x (F - 1) / F) samples a frame, tending to half on a long
clip; a frame too far from its anchor (a cut) runs all steps again.
fps: the median of --runs runs through the backend, all cases in turns in the same process.
The two webcam rows take pix2pix.live()'s settings and hand the backend one frame a call:
frame by frame (each frame's steps its own UNet calls), or through the stream batch
(stream.py: one UNet call a frame over every frame in flight, drained at the end).

The tiny model's UNet is cheap next to its VAE and the flow, so the fps move less than the
counts; on a GPU at 512 px the UNet is nearly all of the cost (benchmarks/gpu.py --options).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pix2pix_batched_vs_naive import test_frames  # noqa: E402 - the same pan as the batching benchmark

from vidtoon.backends.pix2pix import Pix2PixSettings, live  # noqa: E402
from vidtoon.backends.pix2pix.backend import Pix2PixBackend  # noqa: E402
from vidtoon.backends.pix2pix.models import load_components, locate  # noqa: E402
from vidtoon.backends.pix2pix.testing import make_random_lora, make_tiny_model  # noqa: E402

LCM = dict(scheduler="lcm", steps=4, image_guidance=1.0, guidance=2.0)
CASES = {  # label -> settings; the first is the default, the base of the last column
    "default: 20 steps, guidance 7 / 1.5": {},
    "--image-guidance 1": dict(image_guidance=1.0),
    "--guidance 1 (guidance off)": dict(guidance=1.0),
    "--scheduler dpm++ --steps 10": dict(scheduler="dpm++", steps=10),
    "--scheduler dpm++ --steps 10 --image-guidance 1": dict(scheduler="dpm++", steps=10, image_guidance=1.0),
    "--reuse-latents 0.5 --reuse-batch 1 (frame by frame)": dict(reuse_latents=0.5, reuse_batch=1),
    "--reuse-latents 0.5 --reuse-batch 4 (the default N)": dict(reuse_latents=0.5, reuse_batch=4),
    "--reuse-latents 0.5 --reuse-batch 1 --image-guidance 1": dict(reuse_latents=0.5, reuse_batch=1, image_guidance=1.0),
    "--reuse-latents 0.5 --reuse-batch 4 --image-guidance 1": dict(reuse_latents=0.5, reuse_batch=4, image_guidance=1.0),
    "--lora (random) --scheduler lcm --steps 4 --guidance 2 --image-guidance 1": dict(LCM, lora=True),
    # The webcam's settings (pix2pix.live(): 4 steps of dpm++, image guidance 1, reuse 0.5), one camera frame a call:
    "webcam settings, frame by frame (--cross-frame's way)": dict(live="frames"),
    "webcam settings, stream batch (the webcam's way)": dict(live="stream"),
}


class Counter:
    """UNet samples and calls, through a forward hook."""

    def __init__(self, unet) -> None:
        self.samples = self.calls = 0
        unet.register_forward_hook(self.count)

    def count(self, module, args, out) -> None:
        if self.on:
            self.samples += args[0].shape[0]
            self.calls += 1

    on = False


def through(backend: Pix2PixBackend, way: str | None, frames) -> None:
    """The frames through the backend: in its batches (None), one a call ("frames"), or
    pushed one a call into its stream batch and drained ("stream")."""
    if way == "stream":
        backend.stream().run(frames)
    elif way == "frames":
        for frame in frames:
            backend(frame[None])
    else:
        backend(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=96, help="square frames of this side (multiple of 8)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--pan", type=float, default=4, help="px a frame the pan moves (a faster pan finds cuts sooner: "
                        "--reuse-batch warps from up to N frames back)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (a tiny model gains nothing from more)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = test_frames(args.frames, args.size, args.pan)
    with tempfile.TemporaryDirectory() as tmp:
        folder = locate(str(make_tiny_model(Path(tmp) / "tiny")))
        parts = load_components(folder, torch.device("cpu"), torch.float32)
        with_lora = load_components(folder, torch.device("cpu"), torch.float32)
        from vidtoon.backends.pix2pix import lora

        lora.fuse(with_lora, make_random_lora(with_lora.unet, Path(tmp) / "lora"), 1.0)
    counters = {id(p.unet): Counter(p.unet) for p in (parts, with_lora)}
    backends = {}
    for label, options in CASES.items():
        options = dict(options)
        own = with_lora if options.pop("lora", False) else parts
        way = options.pop("live", None)
        settings = Pix2PixSettings(max_side=args.size, **options)
        if way is not None:
            settings = replace(live(settings)[0], max_side=args.size, skip_similar=None)  # a pan: nothing to skip
        backends[label] = (Pix2PixBackend(own, settings, batch_size=1 if way else args.batch_size),
                           counters[id(own.unet)], way)
    counts, fps = {}, {label: [] for label in CASES}
    for run in range(args.runs + 1):  # run 0: warm-up, and the counts
        for label, (backend, counter, way) in backends.items():
            backend.reset()
            counter.on, counter.samples, counter.calls = run == 0, 0, 0
            started = time.perf_counter()
            through(backend, way, frames)
            if run:
                fps[label].append(len(frames) / (time.perf_counter() - started))
            else:
                counts[label] = (counter.samples / len(frames), counter.samples / counter.calls, backend.branches)
            counter.on = False

    print(f"tiny random IP2P on the CPU ({torch.get_num_threads()} thread), {len(frames)} frames of {args.size}x"
          f"{args.size} (a pan, {args.pan:g} px a frame), batch {args.batch_size}; fps: median of {args.runs} runs, "
          f"cases in turns\n")
    print(f"| {'case':<74} | {'UNet samples / frame':>20} | {'mean UNet batch':>15} | {'frames / call':>13} | "
          f"{'CPU fps':>7} | {'vs default':>10} |")
    print(f"|{'-' * 76}|{'-' * 22}|{'-' * 17}|{'-' * 15}|{'-' * 9}|{'-' * 12}|")
    base = statistics.median(fps[next(iter(CASES))])
    for label in CASES:
        per_frame, batch, branches = counts[label]
        median = statistics.median(fps[label])
        print(f"| {label:<74} | {per_frame:20.1f} | {batch:15.1f} | {batch / branches:13.1f} | {median:7.2f} | "
              f"{median / base:9.2f}x |")


if __name__ == "__main__":
    main()
