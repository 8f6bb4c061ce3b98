"""Live path speed: the classic backend on the paced file source, through the real live loop.

    python benchmarks/webcam.py [VIDEO] [--seconds 10] [--sizes 640x480 1280x720] [--window]

For each size the video plays looped in real time at its own frame rate (the
sample: 30 fps), cropped and scaled to that size, through vidtoon's live loop
(capture thread -> processing thread -> main thread), headless unless
--window (which needs a display; `xvfb-run -a` gives one). The first second
is warm-up and is left out of the latency figures. Prints sustained fps
(frames shown per second), dropped frames, and the median and 95th-percentile
capture-to-display latency; the CPU time the process used per second of the
run (in cores; all threads, capture and decode included), which a busy
machine disturbs less than the rest; and the load average, since a busy
machine shows up in all of them.
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.live import Live, LiveSettings  # vidtoon.live loads cv2 before PyAV, as --window needs

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "astronaut.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, nargs="?", default=SAMPLE)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"])
    parser.add_argument("--window", action="store_true", help="show the preview window too")
    args = parser.parse_args()
    print(f"{args.video.name}, classic backend, {args.seconds:g} s per size, "
          f"{'with the preview window' if args.window else 'headless'}; "
          f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
    print("| size | source fps | shown fps | dropped | latency median | latency p95 | CPU |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        settings = LiveSettings(
            source=str(args.video), size=size, window=args.window, overlay=True, duration=args.seconds
        )
        before = cpu_seconds()
        result = Live(settings, backend=ClassicBackend()).run()
        cores = (cpu_seconds() - before) / result.seconds
        warm = int(result.fps)  # about one second of frames
        source_fps = result.captured / result.seconds
        print(
            f"| {size} | {source_fps:.1f} | {result.fps:.1f} | {result.dropped} of {result.captured} "
            f"| {result.latency(50, skip=warm) * 1000:.1f} ms | {result.latency(95, skip=warm) * 1000:.1f} ms "
            f"| {cores:.2f} cores |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
