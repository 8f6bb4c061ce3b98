"""`vidtoon webcam`: a camera (or a looped file, or a stream) cartoonized live."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from rich.console import Console

from ..config import LIVE
from .options import cartoon_options, recipe_from_args
from .status import ExitStatus


def add(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    webcam = commands.add_parser(
        "webcam",
        parents=[common, cartoon_options(LIVE)],
        conflict_handler="resolve",  # its --size (the camera's) replaces pix2pix's, which is not for live use
        help="cartoonize a camera live, in a preview window",
        description="Cartoonize a camera (or a looped video file, or a stream) live. Capture runs on its own "
        "thread and only the newest frame is processed, so a slow backend lowers the frame rate, not the "
        "freshness. Keys in the window: q/Esc quit, space original/cartoon, s PNG snapshot, r start/stop "
        "recording (video only, no sound), 1-9 looks (1: as started; 2-6: the styles cel, comic, anime, sketch, flat; 7-9: poster, detailed, fastest), h overlay. "
        "Ctrl-C stops like q: a recording in progress is finished and kept.",
    )
    where = webcam.add_mutually_exclusive_group()
    where.add_argument("--device", default="0", help="camera index or device path (default 0, i.e. /dev/video0)")
    where.add_argument(
        "--source", metavar="FILE_OR_URL",
        help="instead of a camera: a video file (looped, paced at its frame rate), a URL, or lavfi:GRAPH "
        "(e.g. lavfi:testsrc2=size=1280x720:rate=30)",
    )
    webcam.add_argument("--size", metavar="WxH", help="camera: size to ask for (the real one is printed); --source: crop and scale to it")
    webcam.add_argument("--fps", type=float, help="camera: frame rate to ask for (a --source keeps its own)")
    webcam.add_argument("--no-window", action="store_true", help="no preview window (e.g. only --record or --virtual-cam)")
    webcam.add_argument("--no-overlay", action="store_true", help="start with the fps/latency overlay hidden (h shows it)")
    webcam.add_argument(
        "--record", nargs="?", const="", metavar="FILE",
        help="record from the start, video only (no sound); FILE defaults to vidtoon-DATE-TIME.mp4 in --save-dir",
    )
    webcam.add_argument("-y", "--overwrite", action="store_true", help="--record FILE may replace an existing file")
    webcam.add_argument(
        "--virtual-cam", nargs="?", const=True, default=False, metavar="DEVICE",
        help="also send the frames to a virtual camera for video calls (Linux: a v4l2loopback device)",
    )
    webcam.add_argument("--save-dir", type=Path, default=Path("."), metavar="DIR", help="where s snapshots and r recordings go (default: here)")
    webcam.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    webcam.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from ..live import Live, LiveSettings
    from ..live.recorder import free_path

    record = None
    if args.record is not None:
        record = Path(args.record) if args.record else free_path(args.save_dir, ".mp4")
    settings = LiveSettings(
        recipe=recipe_from_args(args),
        device=args.device,
        source=args.source,
        size=args.size,
        fps=args.fps,
        window=not args.no_window,
        overlay=not args.no_overlay,
        record=record,
        overwrite=args.overwrite,
        virtual_cam=args.virtual_cam,
        save_dir=args.save_dir,
        duration=args.duration,
    )
    note = (lambda message: None) if args.quiet else (lambda message: console.print(message, markup=False))
    live = Live(settings, note=note)

    def stop(signum: int, frame: object) -> None:
        if live.stopping:  # asked twice: stop now
            raise KeyboardInterrupt
        live.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = live.run()
    except KeyboardInterrupt:
        if args.traceback:
            raise
        console.print("[yellow]interrupted[/]; recordings finished so far were kept")
        return ExitStatus.INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.quiet and result.shown == 0:
        console.print(f"no frame was shown ({result.captured} captured)")
    elif not args.quiet:
        console.print(
            f"shown {result.shown} of {result.captured} frames in {result.seconds:.1f} s ({result.fps:.1f} fps, "
            f"{result.backend} backend); latency median {result.latency(50) * 1000:.0f} ms, "
            f"95th percentile {result.latency(95) * 1000:.0f} ms; dropped {result.dropped}"
        )
    return ExitStatus.SUCCESS
