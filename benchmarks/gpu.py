"""GPU speed of the pix2pix backend on the full-size SD1.5 InstructPix2Pix architecture.

    python benchmarks/gpu.py             # CUDA, 512x512, 20 steps: the eager rows, one call of < 5 min
    python benchmarks/gpu.py --options   # the speed options (fewer UNet samples per frame): a call of < 5 min
    python benchmarks/gpu.py --compile   # the torch.compile rows: a third, optional call of < 10 min
    python benchmarks/gpu.py --smoke     # the tiny model on the CPU: checks the script in about a minute

On the lent GPU machine (no diffusers, no PyAV, no vidtoon, no network) run it through
benchmarks/gpu_wheelhouse.py, which installs the carried wheels first (see docs/benchmarks.md).
It needs torch, diffusers, transformers and Pillow; not PyAV or OpenCV.

No download: the model is vidtoon.backends.pix2pix.testing.full_size_model(), configs written in code
with random weights, so its pictures are noise but its cost is the real cartoonizer's.
The eager rows, cheapest first, each printed as soon as it is measured:

- the naive loop (one diffusers pipeline call per frame, fp16, diffusers' defaults);
- vidtoon's backend (channels_last, SDPA attention) at batch 1/4/8/16, fp16;
- bf16 instead of fp16, channels_last off, and --fast-vae (a random TAESD-size
  AutoencoderTiny decoding; its "of peak" still counts the full VAE's FLOP), at batch 8.

The option rows (--options), at batch 8, fp16, each beside the default in the same call: the
default (20 steps, 3 guidance branches: 60 UNet samples a frame), --image-guidance 1 (40),
--scheduler dpm++ --steps 10 (30), both (20), --scheduler lcm --steps 4 --image-guidance 1 (8;
with a random LoRA fused when peft is there: fused, it costs nothing per step), --cross-frame,
and --reuse-latents 0.5 with --reuse-batch 1 (frame by frame, one frame a UNet call) and 4 (groups
of 4 frames a UNet call, the default for files), and the webcam's settings (pix2pix.live(): 4 steps
of dpm++, image guidance 1, reuse 0.5; at --side) one camera frame a call, frame by frame and
through the stream batch (stream.py: one UNet call a frame over every frame in flight); the
reuse and webcam rows need OpenCV for the flow (skipped, and said so, where it is missing).

The compile rows (--compile): vidtoon's --compile (torch.compile's default mode) at batch 8, fp16,
alone and with --cross-frame (which must not recompile per step), then torch.compile of the UNet
in mode "reduce-overhead" (CUDA graphs) and "max-autotune-no-cudagraphs"; shapes fixed
(dynamic=False), the kernels in a persistent cache (--cache-dir, TORCHINDUCTOR_CACHE_DIR), so a
rerun skips most of the compile.

Every row runs in a process of its own, under a hard time limit (--row-limit, and never past
--budget): a row that runs over is killed and reported as stopped, and the table goes on; so
does a row that fails (its reason in the row). Rows that would start with under --min-row
seconds of --budget left are skipped.

Columns: frames/s (median of --runs runs), set-up seconds (the row's changes to the model,
compiling and one warm-up call), peak GPU memory of the row alone (peak statistics reset once
the base pipeline is on the GPU, that baseline subtracted: activations, workspaces, CUDA graph
pools and any extra weights such as the TAESD decoder), the ratio to the naive loop, and the
fraction of the GPU's dense fp16/bf16 peak: frames/s x FLOP per frame / --peak-tflops (default
989 TFLOP/s: H200 SXM dense, no sparsity). FLOP per frame is counted by torch's FlopCounterMode on
the architecture built on the meta device: VAE encode + the row's UNet samples per frame (counted
by a forward hook while it runs; 20 steps x 3 guidance branches by default) x one UNet sample +
VAE decode, 51.8 TFLOP at 512x512 by default (UNet 0.80 TFLOP a sample with the attention scores
counted).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pix2pix_batched_vs_naive, when run from elsewhere
from pix2pix_batched_vs_naive import naive, test_frames  # the same frames and naive loop as on the CPU

from vidtoon.backends.pix2pix import Pix2PixSettings, ip2p, live
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
RESULT = "ROW-RESULT "  # the prefix of a row process's one line of results on stdout


def flop_parts(configs: tuple[dict, dict, dict], side: int) -> tuple[float, float, float]:
    """FLOP of one frame's VAE encode, of one UNet sample and of one VAE decode, counted by
    torch's FlopCounterMode on the architecture built on the meta device: shapes only, so it
    is quick and does not depend on which attention kernel runs."""
    from torch.utils.flop_counter import FlopCounterMode

    pipe = build_pipeline(*configs, device="meta")
    latent, width = side // 8, pipe.text_encoder.config.hidden_size
    with torch.device("meta"), FlopCounterMode(display=False) as encode:
        pipe.vae.encode(torch.empty(1, 3, side, side))
    with torch.device("meta"), FlopCounterMode(display=False) as unet:
        pipe.unet(torch.empty(3, 8, latent, latent), torch.tensor(500), encoder_hidden_states=torch.empty(3, 77, width))
    with torch.device("meta"), FlopCounterMode(display=False) as decode:
        pipe.vae.decode(torch.empty(1, 4, latent, latent))
    return float(encode.get_total_flops()), unet.get_total_flops() / 3, float(decode.get_total_flops())


def rows(args: argparse.Namespace, smoke: bool) -> list[dict]:
    """The rows of this call, each a dict its process rebuilds it from."""
    sizes = args.batch_sizes or ([1, 4] if smoke else [1, 4, 8, 16])
    mid = 8 if 8 in sizes else sizes[-1]
    dtype, other = ("float32", "bfloat16") if smoke else ("float16", "bfloat16")
    if args.compile:
        return [dict(label=f"vidtoon, batch {mid}, {dtype}, --compile", batch=mid, settings=dict(compile=True)),
                dict(label=f"vidtoon, batch {mid}, {dtype}, --compile --cross-frame", batch=mid,
                     settings=dict(compile=True, cross_frame=True)),
                *(dict(label=f"vidtoon, batch {mid}, {dtype}, compile {mode}", batch=mid, compile=mode) for mode in COMPILE_MODES)]
    if args.options:
        lcm = dict(scheduler="lcm", steps=4, guidance=2.0, image_guidance=1.0)
        return [dict(label=f"vidtoon, batch {mid}, {dtype}, the default", batch=mid),
                *(dict(label=f"vidtoon, batch {mid}, {dtype}, {label}", batch=mid, settings=options) for label, options in (
                    ("--image-guidance 1", dict(image_guidance=1.0)),
                    ("--scheduler dpm++ --steps 10", dict(scheduler="dpm++", steps=10)),
                    ("--scheduler dpm++ --steps 10 --image-guidance 1", dict(scheduler="dpm++", steps=10, image_guidance=1.0)),
                    ("--scheduler lcm --steps 4 --guidance 2 --image-guidance 1", lcm),
                    ("--cross-frame", dict(cross_frame=True)))),
                dict(label=f"vidtoon, batch {mid}, {dtype}, lcm 4 steps + a random LoRA, fused", batch=mid, settings=lcm,
                     lora=True, needs="peft"),
                *(dict(label=f"vidtoon, batch {mid}, {dtype}, --reuse-latents 0.5 --reuse-batch {n}", batch=mid,
                       settings=dict(reuse_latents=0.5, reuse_batch=n), needs="cv2") for n in (1, 4)),
                # the webcam's settings (pix2pix.live(), at this side), one camera frame a call
                *(dict(label=f"vidtoon, webcam settings, {dtype}, {how}", batch=1, live=way, needs="cv2")
                  for way, how in (("frames", "frame by frame"), ("stream", "stream batch")))]
    return [
        dict(label=f"{NAIVE}, {dtype}", naive=True),
        *(dict(label=f"vidtoon, batch {b}, {dtype}", batch=b) for b in sizes),
        dict(label=f"vidtoon, batch {mid}, {other}", batch=mid, dtype=other),
        dict(label=f"vidtoon, batch {mid}, {dtype}, channels_last off", batch=mid, channels_last=False),
        dict(label=f"vidtoon, batch {mid}, {dtype}, --fast-vae", batch=mid, fast_vae=True),
    ]


def run_row(args: argparse.Namespace, row: dict) -> dict:
    """In the row's own process: build the base pipeline, reset the peak statistics, then set the
    row up, warm it up and time it. Returns frames/s, set-up seconds and the row's peak bytes."""
    smoke = args.smoke
    if smoke:
        torch.set_num_threads(1)  # a tiny model gains nothing from threads; busy shared cores lose a lot
        torch.manual_seed(0)
        device, side, steps = torch.device("cpu"), 64, 2
        pipe = build_pipeline(TINY_UNET, TINY_VAE, TINY_TEXT)
    else:
        device, side, steps = torch.device("cuda"), args.side, args.steps
        pipe = full_size_model("cuda", torch.float16)
    pipe.set_progress_bar_config(disable=True)
    n, runs = args.frames or (4 if smoke else 16), args.runs or (1 if smoke else 3)
    frames = test_frames(min(args.naive_frames, n) if row.get("naive") else n, side)
    settings = Pix2PixSettings(**{"steps": steps, "max_side": max(64, side), **row.get("settings", {})})
    if row.get("live"):  # nothing to skip on a pan; the side kept, to compare with the other rows
        settings = replace(live(settings)[0], max_side=settings.max_side, skip_similar=None)
    cuda = device.type == "cuda"
    if cuda:  # the row alone: what the base pipeline holds is the baseline
        torch.cuda.synchronize()
        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if row.get("naive"):
        case = lambda f: naive(pipe, f, settings)  # noqa: E731
    else:
        if row.get("dtype"):
            pipe.to(dtype=getattr(torch, row["dtype"]))
        decoder = None
        if row.get("fast_vae"):  # TAESD's architecture (AutoencoderTiny's defaults), random weights
            from diffusers import AutoencoderTiny

            decoder = AutoencoderTiny().to(device, pipe.unet.dtype).eval()
        if row.get("lora"):  # a random LoRA the size of SD1.5's attention LoRAs, fused as --lora does
            import tempfile

            from vidtoon.backends.pix2pix import lora
            from vidtoon.backends.pix2pix.testing import make_random_lora

            with tempfile.TemporaryDirectory() as tmp:
                lora.fuse(pipe, make_random_lora(pipe.unet, tmp), 1.0)
        backend = Pix2PixBackend(pipe, settings, device, decoder, batch_size=row["batch"])
        case = lambda f: backend.reset() or backend(f)  # noqa: E731 - each run a clip of its own (--reuse-latents)
        if row.get("live") == "stream":
            case = backend.stream().run
        elif row.get("live"):
            case = lambda f: backend.reset() or [backend(frame[None]) for frame in f]  # noqa: E731
        if row.get("channels_last") is False:  # undo the backend's CUDA tuning, keep SDPA
            for model in (pipe.unet, pipe.vae):
                model.to(memory_format=torch.contiguous_format)
        if row.get("compile"):
            pipe.unet.compile(mode=row["compile"], dynamic=False, fullgraph=False)
    case(frames)  # warm-up: compiles, picks kernels, grows the memory pools
    setup_s = time.perf_counter() - started
    samples: list[int] = []
    compiled = row.get("compile") or row.get("settings", {}).get("compile")
    if not compiled:  # a hook added to a compiled UNet now would recompile it inside the timing
        hook = pipe.unet.register_forward_hook(lambda module, args, out: samples.append(args[0].shape[0]))
    fps = []
    for _ in range(runs):
        t = time.perf_counter()
        case(frames)  # returns host arrays, so the GPU has finished
        fps.append(len(frames) / (time.perf_counter() - t))
    calls = len(samples) / runs if not compiled else None  # UNet calls a run (how well reuse batches)
    if compiled:  # no part-way starts in these rows: every frame runs every step on every branch
        samples = [settings.steps * ip2p.branches(settings.guidance, settings.image_guidance) * len(frames)] * runs
    else:
        hook.remove()
    peak = torch.cuda.max_memory_allocated() - baseline if cuda else None
    where = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} thread)"
    return dict(fps=statistics.median(fps), setup_s=setup_s, peak=peak, device=where, frames=len(frames), runs=runs,
                samples=sum(samples) / (runs * len(frames)), calls=calls)


def launch(args: argparse.Namespace, row: dict, limit: float) -> dict:
    """The row in a child process (its own session, so a kill takes its compile workers too),
    stopped after `limit` seconds."""
    command = [sys.executable, __file__, "--row", json.dumps(row), *args.passed]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return dict(stopped=f"stopped: ran over its {limit:.0f} s limit (killed)")
    results = [line for line in out.splitlines() if line.startswith(RESULT)]
    if results:
        return json.loads(results[-1][len(RESULT):])
    last = next((line for line in reversed(err.strip().splitlines()) if line.strip()), "")
    return dict(error=f"exit {child.returncode}: {last[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model, CPU, 64x64, 2 steps: check the script")
    parser.add_argument("--compile", action="store_true", help="the torch.compile rows only (the third, optional call)")
    parser.add_argument("--options", action="store_true", help="the speed options' rows only (the second call)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default 1 4 8 16 (smoke: 1 4)")
    parser.add_argument("--frames", type=int, default=None, help="frames per case and run (default 16; smoke 4)")
    parser.add_argument("--naive-frames", type=int, default=4, help="frames per run of the (slow) naive loop")
    parser.add_argument("--runs", type=int, default=None, help="default 3 (smoke 1)")
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "vidtoon-inductor",
                        help="persistent torch.compile cache (TORCHINDUCTOR_CACHE_DIR, unless already set)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole call: no row starts or runs past it (default 280; --compile 540)")
    parser.add_argument("--row-limit", type=float, default=None,
                        help="seconds one row may take, from its start to its results (default 100; --compile 270)")
    parser.add_argument("--min-row", type=float, default=20.0, help="start no row with fewer seconds left of --budget")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="the GPU's dense fp16/bf16 peak, TFLOP/s (default 989: H200 SXM, dense)")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row (JSON) and print its result
    args = parser.parse_args()
    if args.row:
        try:
            result = run_row(args, json.loads(args.row))
        except Exception as e:  # noqa: BLE001 - reported in the row, the table goes on
            result = dict(error=f"{type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}")
        print(RESULT + json.dumps(result), flush=True)
        return
    started = time.perf_counter()
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; use --smoke to check the script on a CPU")
    budget = args.budget or (540.0 if args.compile else 280.0)
    row_limit = args.row_limit or (270.0 if args.compile else 100.0)
    args.passed = sys.argv[1:]  # the children get the same options
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(args.cache_dir))  # inherited by the rows
    smoke = args.smoke
    side, steps = (64, 2) if smoke else (args.side, args.steps)
    configs = (TINY_UNET, TINY_VAE, TINY_TEXT) if smoke else (FULL_UNET, FULL_VAE, FULL_TEXT)
    encode, unet, decode = flop_parts(configs, side)
    which = "compile rows" if args.compile else "option rows" if args.options else "eager rows"
    print(f"{'SMOKE TEST: tiny model on the CPU, ' if smoke else 'full-size SD1.5 IP2P (random weights), CUDA, '}"
          f"{side}x{side}, {steps} steps, {which}; each row in its own "
          f"process, at most {row_limit:g} s, the call at most {budget:g} s")
    print(f"{(encode + 3 * steps * unet + decode) / 1e12:.3g} TFLOP per frame by default (counted; {unet / 1e12:.3g} "
          f"a UNet sample); peak taken as {args.peak_tflops:g} TFLOP/s; torch {torch.__version__}\n")
    versus = "vs first" if args.options or args.compile else "vs naive"
    print(f"| {'case':<84} | {'frames/s':>8} | {'UNet/frame':>10} | {'set-up s':>8} | {'peak GPU mem':>12} | {versus:>8} | "
          f"{'of peak':>7} |", flush=True)
    print(f"|{'-' * 86}|{'-' * 10}|{'-' * 12}|{'-' * 10}|{'-' * 14}|{'-' * 10}|{'-' * 9}|", flush=True)
    base, where = None, None
    for row in rows(args, smoke):
        label, left = row["label"], budget - (time.perf_counter() - started)
        if left < args.min_row:
            print(f"| {label:<84} | skipped: {left:.0f} s left of --budget {budget:g} |", flush=True)
            continue
        if row.get("needs") and importlib.util.find_spec(row["needs"]) is None:
            print(f"| {label:<84} | skipped: needs {row['needs']}, which is not installed here |", flush=True)
            continue
        result = launch(args, row, min(row_limit, left))
        if "fps" not in result:
            print(f"| {label:<84} | {result.get('stopped') or 'failed: ' + result['error']} |", flush=True)
            continue
        fps, where = result["fps"], result["device"]
        base = base or (fps if row.get("naive") or args.options or args.compile else None)
        mem = f"{result['peak'] / 2**30:.2f} GiB" if result["peak"] is not None else "-"
        ratio = f"{fps / base:7.2f}x" if base else "      -"
        flop = encode + result["samples"] * unet + decode
        peak = f"{fps * flop / (args.peak_tflops * 1e12):.1%}" if result["peak"] is not None else "-"
        print(f"| {label:<84} | {fps:8.2f} | {result['samples']:10.1f} | {result['setup_s']:8.1f} | {mem:>12} | {ratio} | "
              f"{peak:>7} |", flush=True)
    print(f"\nran on {where or 'nothing (no row finished)'}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
