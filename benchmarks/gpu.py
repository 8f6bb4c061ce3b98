"""GPU speed of the pix2pix backend on the full-size SD1.5 InstructPix2Pix architecture.

    python benchmarks/gpu.py            # CUDA, 512x512, 20 steps, fp16, batch sizes 1 2 4 8 16
    python benchmarks/gpu.py --smoke    # the tiny model on the CPU: checks the script in under a minute

No download: the model is vidtoon.testing.full_size_model(), configs written in code
with random weights, so its pictures are noise but its cost is the real cartoonizer's.
For each case it prints frames/s, peak GPU memory, the ratio to the naive loop (one
diffusers pipeline call per frame, default settings) and the fraction of the GPU's
peak: frames/s x FLOP per frame / --peak-tflops. FLOP per frame is counted here by
torch's FlopCounterMode on the architecture built on the meta device: 51.8 TFLOP at
512x512, 20 steps (UNet 0.80 TFLOP a pass, attention scores included; DESIGN.md's
44.2 leaves out the 0.126 TFLOP of attention scores per pass).
Medians of --runs runs, the cases interleaved. Sized to finish well inside 8 minutes
on an H200: 16 frames per case and run, 3 runs.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from pix2pix_batched_vs_naive import naive, test_frames  # the same frames and naive loop as on the CPU
from vidtoon.backends.pix2pix import Pix2PixBackend
from vidtoon.config import Pix2PixSettings
from vidtoon.testing import FULL_TEXT, FULL_UNET, FULL_VAE, TINY_TEXT, TINY_UNET, TINY_VAE, build_pipeline, full_size_model

NAIVE = "naive loop (one pipe() call per frame)"


def flop_per_frame(configs: tuple[dict, dict, dict], side: int, steps: int) -> float:
    """FLOP of one frame (VAE encode, steps x 3 guidance branches of the UNet, VAE decode),
    counted by torch's FlopCounterMode on the architecture built on the meta device:
    shapes only, so it is quick and does not depend on which attention kernel runs."""
    from torch.utils.flop_counter import FlopCounterMode

    pipe = build_pipeline(*configs, device="meta")
    latent, width = side // 8, pipe.text_encoder.config.hidden_size
    with torch.device("meta"), FlopCounterMode(display=False) as encode:
        pipe.vae.encode(torch.empty(1, 3, side, side))
    with torch.device("meta"), FlopCounterMode(display=False) as unet:
        pipe.unet(torch.empty(3, 8, latent, latent), torch.tensor(500), encoder_hidden_states=torch.empty(3, 77, width))
    with torch.device("meta"), FlopCounterMode(display=False) as decode:
        pipe.vae.decode(torch.empty(1, 4, latent, latent))
    return float(encode.get_total_flops() + steps * unet.get_total_flops() + decode.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model, CPU, 64x64, 2 steps: check the script")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default 1 2 4 8 16 (smoke: 1 2 4)")
    parser.add_argument("--frames", type=int, default=None, help="frames per case and run (default 16; smoke 4)")
    parser.add_argument("--runs", type=int, default=None, help="default 3 (smoke 1)")
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
    parser.add_argument("--peak-tflops", type=float, default=790.0,
                        help="the GPU's dense fp16/bf16 peak, TFLOP/s (default 790: DESIGN.md's H200 figure)")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.smoke:
        device, dtype, side, steps = torch.device("cpu"), torch.float32, 64, 2
        sizes, n, runs = args.batch_sizes or [1, 2, 4], args.frames or 4, args.runs or 1
        torch.set_num_threads(1)  # a tiny model gains nothing from threads; busy shared cores lose a lot
        torch.manual_seed(0)
        configs = (TINY_UNET, TINY_VAE, TINY_TEXT)
        pipe = build_pipeline(*configs)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA GPU here; use --smoke to check the script on a CPU")
        device, side, steps = torch.device("cuda"), args.side, args.steps
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
        sizes, n, runs = args.batch_sizes or [1, 2, 4, 8, 16], args.frames or 16, args.runs or 3
        configs = (FULL_UNET, FULL_VAE, FULL_TEXT)
        pipe = full_size_model("cuda", dtype)
    pipe.set_progress_bar_config(disable=True)
    built = time.perf_counter() - started

    settings = Pix2PixSettings(steps=steps, max_side=max(64, side))
    frames = test_frames(n, side)
    # vidtoon tunes its own copy (channels_last, SDPA); the naive loop keeps diffusers' defaults.
    ours = copy.deepcopy(pipe)
    cases = {NAIVE: lambda: naive(pipe, frames, settings)}
    backends = {size: Pix2PixBackend(ours, Pix2PixSettings(steps=steps, max_side=settings.max_side, batch_size=size), device)
                for size in sizes}
    for size, backend in backends.items():
        cases[f"vidtoon pix2pix, batch {size}"] = lambda b=backend: b(frames)
    flop = flop_per_frame(configs, side, steps)
    naive(pipe, frames[:1], settings)  # warm-up: kernels picked, memory pools grown
    for size, backend in backends.items():
        backend(frames[:size])

    fps: dict[str, list[float]] = {name: [] for name in cases}
    memory: dict[str, int] = dict.fromkeys(cases, 0)
    for _ in range(runs):
        for name, case in cases.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            case()  # both return host arrays, so the GPU has finished
            fps[name].append(n / (time.perf_counter() - t))
            if device.type == "cuda":
                memory[name] = max(memory[name], torch.cuda.max_memory_allocated())

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{'SMOKE TEST: tiny model, ' if args.smoke else 'full-size SD1.5 IP2P (random weights), '}{where}, "
          f"{str(dtype).removeprefix('torch.')}, {side}x{side}, {steps} steps, {n} frames per case, median of {runs} runs")
    print(f"model built in {built:.0f} s; {flop / 1e12:.3g} TFLOP per frame (counted); torch {torch.__version__}\n")
    base = statistics.median(fps[NAIVE])
    print(f"| {'case':<40} | {'frames/s':>8} | {'peak GPU memory':>15} | {'vs naive':>8} | {'of peak':>7} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 17}|{'-' * 10}|{'-' * 9}|")
    for name in cases:
        median = statistics.median(fps[name])
        mem = f"{memory[name] / 2**30:.1f} GiB" if device.type == "cuda" else "-"
        peak = f"{median * flop / (args.peak_tflops * 1e12):.0%}" if device.type == "cuda" else "-"
        print(f"| {name:<40} | {median:8.2f} | {mem:>15} | {median / base:7.2f}x | {peak:>7} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
