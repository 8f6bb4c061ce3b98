"""vidtoon's batched pix2pix path vs the naive loop (one diffusers pipeline call per frame).

    python benchmarks/pix2pix_batched_vs_naive.py [--frames 16] [--size 128] [--runs 5] [--threads N]

Both run the same tiny random InstructPix2Pix model (vidtoon.backends.pix2pix.testing) on the CPU,
on the same frames in memory, at default settings (20 steps, guidance 7, image
guidance 1.5), so the ratio shows what the backend's structure buys: prompt
embeddings once, batched VAE and UNet calls, no per-call set-up or PIL round trip.
With a real model on a GPU the UNet dominates instead (see benchmarks/gpu.py).
Prints medians of --runs runs, the cases interleaved so that drift hits all alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.backends.pix2pix.testing import make_tiny_model


def test_frames(n: int, size: int, speed: float = 4) -> np.ndarray:
    """Smooth moving gradients: frames of a pan by `speed` px a frame, uint8 (n, size, size, 3)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.stack([
        np.stack([127 + 100 * np.sin((x + speed * i) / 23), 127 + 100 * np.cos(y / 17), 127 + 100 * np.sin((x + y) / 31)], -1)
        for i in range(n)
    ]).clip(0, 255).astype(np.uint8)


def naive(pipe, frames: np.ndarray, settings: Pix2PixSettings) -> None:
    """What a first script does: one pipeline call per frame, PIL in, numpy out."""
    for frame in frames:
        image = pipe(settings.prompt, image=Image.fromarray(frame), num_inference_steps=settings.steps,
                     guidance_scale=settings.guidance, image_guidance_scale=settings.image_guidance,
                     generator=torch.Generator().manual_seed(settings.seed), output_type="np").images[0]
        (image * 255).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="square frames of this side (multiple of 8)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers import StableDiffusionInstructPix2PixPipeline

    settings = Pix2PixSettings()
    frames = test_frames(args.frames, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = locate(str(make_tiny_model(Path(tmp) / "tiny")))
        parts = load_components(folder, torch.device("cpu"), torch.float32)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
        scheduler=parts.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    cases = {"naive loop (one pipe() call per frame)": lambda: naive(pipe, frames, settings)}
    for size in (1, 4, 16):  # 4: the CPU's automatic batch size
        backend = Pix2PixBackend(parts, Pix2PixSettings(), batch_size=size)
        cases[f"vidtoon pix2pix, batch {size}"] = lambda b=backend: b(frames)
    for case in cases.values():  # warm-up: first calls allocate and pick kernels
        case()
    fps: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, case in cases.items():
            started = time.perf_counter()
            case()
            fps[name].append(len(frames) / (time.perf_counter() - started))

    print(f"tiny random IP2P on the CPU ({torch.get_num_threads()} threads), {len(frames)} frames of "
          f"{args.size}x{args.size}, {settings.steps} steps, guidance {settings.guidance}/{settings.image_guidance}; "
          f"median of {args.runs} runs\n")
    base = statistics.median(fps["naive loop (one pipe() call per frame)"])
    print(f"| {'case':<40} | {'frames/s':>8} | {'vs naive':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 10}|")
    for name, values in fps.items():
        median = statistics.median(values)
        print(f"| {name:<40} | {median:8.2f} | {median / base:7.2f}x |")


if __name__ == "__main__":
    main()
