"""GPU speed of the pix2pix backend on the full-size SD1.5 InstructPix2Pix architecture.

    python benchmarks/gpu.py            # CUDA, 512x512, 20 steps: every row below, one call, < 8 min on an H200
    python benchmarks/gpu.py --smoke    # the tiny model on the CPU: checks the script in seconds

No download: the model is vidtoon.backends.pix2pix.testing.full_size_model(), configs written in code
with random weights, so its pictures are noise but its cost is the real cartoonizer's.
The rows, cheapest first, each printed as soon as it is measured:

- the naive loop (one diffusers pipeline call per frame, fp16, diffusers' defaults);
- vidtoon's backend (channels_last, SDPA attention) at batch 1/4/8/16, fp16;
- bf16 instead of fp16, channels_last off, and --fast-vae (a random TAESD-size
  AutoencoderTiny decoding; its "of peak" still counts the full VAE's FLOP), at batch 8;
- torch.compile of the UNet at batch 8, fp16: mode "reduce-overhead" (CUDA graphs),
  then "max-autotune-no-cudagraphs"; shapes are fixed (dynamic=False) and the
  compiled kernels go to a persistent cache (--cache-dir, TORCHINDUCTOR_CACHE_DIR),
  so a second call skips most of the compile. Left out of --smoke unless --compile.

Each row is guarded: a failure prints its reason in the row and the table goes on.
Rows that would start after --budget seconds are skipped (compile rows need
--compile-reserve seconds left), so one call stays inside the 8 minutes.

Columns: frames/s (median of --runs runs), set-up seconds (building the row's
copy of the model, compiling and warming up), peak GPU memory, the ratio to the
naive loop, and the fraction of the GPU's dense fp16/bf16 peak: frames/s x FLOP
per frame / --peak-tflops (default 989 TFLOP/s: H200 SXM dense, no sparsity).
FLOP per frame is counted by torch's FlopCounterMode on the architecture built on
the meta device: VAE encode + steps x one UNet pass over the 3 guidance branches
+ VAE decode, 51.8 TFLOP at 512x512, 20 steps (UNet 0.80 TFLOP a branch with the
attention scores counted; DESIGN.md's 44.2 leaves out 0.126 TFLOP of attention
scores per branch and pass).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from pix2pix_batched_vs_naive import naive, test_frames  # the same frames and naive loop as on the CPU

from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.testing import (
    FULL_TEXT,
    FULL_UNET,
    FULL_VAE,
    TINY_TEXT,
    TINY_UNET,
    TINY_VAE,
    build_pipeline,
    full_size_model,
)

NAIVE = "naive loop (one pipe() call per frame)"
COMPILE_MODES = ("reduce-overhead", "max-autotune-no-cudagraphs")


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


def backend_row(pipe, settings: Pix2PixSettings, device, batch: int, dtype=None, channels_last: bool = True,
                compile_mode: str | None = None, fast_vae: bool = False) -> Callable:
    """A set-up function for one row: vidtoon's backend on its own copy of the model."""

    def setup() -> Callable:
        parts = copy.deepcopy(pipe)
        if dtype is not None:
            parts.to(dtype=dtype)
        decoder = None
        if fast_vae:  # TAESD's architecture (AutoencoderTiny's defaults), random weights
            from diffusers import AutoencoderTiny

            decoder = AutoencoderTiny().to(device, parts.unet.dtype).eval()
        backend = Pix2PixBackend(parts, Pix2PixSettings(steps=settings.steps, max_side=settings.max_side),
                                 device, decoder, batch_size=batch)
        if not channels_last:  # undo the backend's CUDA tuning, keep SDPA
            for model in (parts.unet, parts.vae):
                model.to(memory_format=torch.contiguous_format)
        if compile_mode is not None:
            torch._dynamo.reset()
            parts.unet.compile(mode=compile_mode, dynamic=False, fullgraph=False)
        return backend

    return setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model, CPU, 64x64, 2 steps: check the script")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default 1 4 8 16 (smoke: 1 4)")
    parser.add_argument("--frames", type=int, default=None, help="frames per case and run (default 16; smoke 4)")
    parser.add_argument("--naive-frames", type=int, default=4, help="frames per run of the (slow) naive loop")
    parser.add_argument("--runs", type=int, default=None, help="default 3 (smoke 1)")
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="the torch.compile rows (default: on with CUDA, off with --smoke)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "vidtoon-inductor",
                        help="persistent torch.compile cache (TORCHINDUCTOR_CACHE_DIR, unless already set)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds: start no row after this")
    parser.add_argument("--compile-reserve", type=float, default=150.0,
                        help="seconds that must be left of --budget to start a compile row")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="the GPU's dense fp16/bf16 peak, TFLOP/s (default 989: H200 SXM, dense)")
    args = parser.parse_args()
    started = time.perf_counter()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(args.cache_dir))
    if args.smoke:
        device, dtype, other, side, steps = torch.device("cpu"), torch.float32, torch.bfloat16, 64, 2
        sizes, n, runs = args.batch_sizes or [1, 4], args.frames or 4, args.runs or 1
        torch.set_num_threads(1)  # a tiny model gains nothing from threads; busy shared cores lose a lot
        torch.manual_seed(0)
        configs = (TINY_UNET, TINY_VAE, TINY_TEXT)
        pipe = build_pipeline(*configs)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA GPU here; use --smoke to check the script on a CPU")
        device, dtype, other, side, steps = torch.device("cuda"), torch.float16, torch.bfloat16, args.side, args.steps
        sizes, n, runs = args.batch_sizes or [1, 4, 8, 16], args.frames or 16, args.runs or 3
        configs = (FULL_UNET, FULL_VAE, FULL_TEXT)
        pipe = full_size_model("cuda", dtype)
    compile_rows = args.compile if args.compile is not None else not args.smoke
    pipe.set_progress_bar_config(disable=True)
    built = time.perf_counter() - started
    settings = Pix2PixSettings(steps=steps, max_side=max(64, side))
    frames = test_frames(n, side)
    flop = flop_per_frame(configs, side, steps)
    name = lambda t: str(t).removeprefix("torch.")  # noqa: E731
    mid = 8 if 8 in sizes else sizes[-1]

    # (name, set-up returning a callable on frames, frames it runs on, is it a compile row)
    naive_frames = frames[: min(args.naive_frames, n)]
    rows: list[tuple[str, Callable, object, bool]] = [(f"{NAIVE}, {name(dtype)}", lambda: (lambda f: naive(pipe, f, settings)),
                                                       naive_frames, False)]
    rows += [(f"vidtoon, batch {b}, {name(dtype)}", backend_row(pipe, settings, device, b), frames, False) for b in sizes]
    rows += [
        (f"vidtoon, batch {mid}, {name(other)}", backend_row(pipe, settings, device, mid, dtype=other), frames, False),
        (f"vidtoon, batch {mid}, {name(dtype)}, channels_last off", backend_row(pipe, settings, device, mid, channels_last=False),
         frames, False),
        (f"vidtoon, batch {mid}, {name(dtype)}, --fast-vae", backend_row(pipe, settings, device, mid, fast_vae=True),
         frames, False),
    ]
    if compile_rows:
        rows += [(f"vidtoon, batch {mid}, {name(dtype)}, compile {mode}", backend_row(pipe, settings, device, mid, compile_mode=mode),
                  frames, True) for mode in COMPILE_MODES]

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{'SMOKE TEST: tiny model, ' if args.smoke else 'full-size SD1.5 IP2P (random weights), '}{where}, "
          f"{side}x{side}, {steps} steps, {n} frames per run ({len(naive_frames)} for the naive loop), median of {runs} runs")
    print(f"model built in {built:.0f} s; {flop / 1e12:.3g} TFLOP per frame (counted); peak taken as "
          f"{args.peak_tflops:g} TFLOP/s; torch {torch.__version__}; compile cache {os.environ['TORCHINDUCTOR_CACHE_DIR']}\n")
    print(f"| {'case':<62} | {'frames/s':>8} | {'set-up s':>8} | {'peak GPU mem':>12} | {'vs naive':>8} | {'of peak':>7} |",
          flush=True)
    print(f"|{'-' * 64}|{'-' * 10}|{'-' * 10}|{'-' * 14}|{'-' * 10}|{'-' * 9}|", flush=True)
    base = None
    for label, setup, inputs, compiled in rows:
        left = args.budget - (time.perf_counter() - started)
        if left <= 0 or (compiled and left < args.compile_reserve):
            print(f"| {label:<62} | skipped: {left:.0f} s left of --budget {args.budget:g} (rerun: the compile cache is warm) |")
            continue
        try:
            fps, setup_s, memory = measure(setup, inputs, runs, device)
        except Exception as e:  # noqa: BLE001 - one failing row (a compile error, out of memory) must not lose the table
            print(f"| {label:<62} | failed: {type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''} |", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        base = base or fps
        mem = f"{memory / 2**30:.1f} GiB" if device.type == "cuda" else "-"
        peak = f"{fps * flop / (args.peak_tflops * 1e12):.1%}" if device.type == "cuda" else "-"
        print(f"| {label:<62} | {fps:8.2f} | {setup_s:8.1f} | {mem:>12} | {fps / base:7.2f}x | {peak:>7} |", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def measure(setup: Callable, frames, runs: int, device) -> tuple[float, float, int]:
    """(median frames/s, set-up seconds incl. one warm-up call, peak GPU bytes) of one row."""
    t = time.perf_counter()
    case = setup()
    case(frames)  # warm-up: compiles, picks kernels, grows the memory pools
    setup_s = time.perf_counter() - t
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    fps = []
    for _ in range(runs):
        t = time.perf_counter()
        case(frames)  # returns host arrays, so the GPU has finished
        fps.append(len(frames) / (time.perf_counter() - t))
    memory = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    del case
    return statistics.median(fps), setup_s, memory


if __name__ == "__main__":
    main()
