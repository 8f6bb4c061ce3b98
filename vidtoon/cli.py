"""The `vidtoon` command. The only module that prints or exits.

    vidtoon cartoonize in.mp4 -o out.mp4 [--backend auto|classic|pix2pix] ...
    vidtoon info in.mp4
    vidtoon webcam [--device 0 | --source FILE_OR_URL] [--record out.mp4] [--virtual-cam] ...

Every error vidtoon raises on purpose becomes one line on stderr and an exit
code (see ExitStatus); --traceback shows the real traceback instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
from enum import IntEnum
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from . import __version__
from .config import BACKENDS, ClassicSettings, EncodeSettings, Settings
from .errors import BackendUnavailable, DeviceUnavailable, InputError, OutputError, SettingsError, VidtoonError


class ExitStatus(IntEnum):
    SUCCESS = 0
    ERROR = 1  # a bug or an unexpected failure; rerun with --traceback
    BAD_INPUT = 2  # bad usage, bad option value, unreadable or unusable input
    WRITE_FAILED = 3  # the output could not be written (disk full, permissions)
    BACKEND_UNAVAILABLE = 4  # the backend asked for cannot run here
    DEVICE_UNAVAILABLE = 5  # no such camera, no display for the window, no virtual camera device
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


EXIT_FOR = {
    InputError: ExitStatus.BAD_INPUT,
    SettingsError: ExitStatus.BAD_INPUT,
    OutputError: ExitStatus.WRITE_FAILED,
    BackendUnavailable: ExitStatus.BACKEND_UNAVAILABLE,
    DeviceUnavailable: ExitStatus.DEVICE_UNAVAILABLE,
}

_CODEC_HELP = "video encoder: libx264 (default), libx265, libsvtav1, libvpx-vp9 (default for .webm), mpeg4"
_SIZE_NOTE = (
    "Odd widths/heights are padded by one edge-copied row/column for the 4:2:0 encoders "
    "(all but mpeg4), so no picture is lost."
)


def _common_options(top_level: bool) -> argparse.ArgumentParser:
    """--quiet/--traceback, accepted before or after the subcommand. Subcommands
    suppress the default so that they do not reset a value given before them."""
    common = argparse.ArgumentParser(add_help=False)
    default = False if top_level else argparse.SUPPRESS
    common.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bar or notes; errors only")
    common.add_argument("--traceback", action="store_true", default=default, help="show the full traceback on errors")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(top_level=False)
    parser = argparse.ArgumentParser(
        prog="vidtoon", description="Turn real video into cartoon video.", parents=[_common_options(top_level=True)]
    )
    parser.add_argument("--version", action="version", version=f"vidtoon {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cartoon = commands.add_parser(
        "cartoonize",
        parents=[common, cartoon_options()],
        help="cartoonize a video file, keeping its audio and timing",
        description="Cartoonize INPUT into OUTPUT. The output container follows OUTPUT's suffix "
        "(.mp4 .m4v .mov .mkv .webm .avi); the original audio is copied unchanged when the "
        "container takes it, else re-encoded. " + _SIZE_NOTE,
    )
    cartoon.add_argument("input", type=Path, metavar="INPUT", help="video file (mp4, mov, mkv, webm, avi, ...)")
    cartoon.add_argument("-o", "--output", type=Path, required=True, help="where to write the cartoon video")
    cartoon.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    cartoon.set_defaults(run=_cartoonize)

    info = commands.add_parser("info", parents=[common], help="show what vidtoon sees in a video file")
    info.add_argument("input", type=Path, metavar="INPUT")
    info.set_defaults(run=_info)

    _add_webcam(commands, common)
    return parser


def cartoon_options(live: bool = False) -> argparse.ArgumentParser:
    """Options that say how frames become cartoons and how the result is encoded;
    shared by every command that writes cartoon video. `live` leaves out the
    options that only make sense for files (--compare, --batch-size)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto (default): pix2pix when a GPU and its weights are at hand, else classic",
    )
    classic = options.add_argument_group("classic backend")
    defaults = ClassicSettings()
    classic.add_argument("--levels", type=int, default=defaults.levels, help=f"shading bands, 2-32 (default {defaults.levels})")
    classic.add_argument("--edges", type=float, default=defaults.edges, help=f"outline strength, 0-3; 0 = none (default {defaults.edges})")
    classic.add_argument("--smooth", type=int, default=defaults.smooth, help=f"smoothing passes, 0-6 (default {defaults.smooth})")
    encode = options.add_argument_group("encoding")
    encode.add_argument("--codec", help=_CODEC_HELP)
    encode.add_argument("--crf", type=int, help="constant quality, lower is better (default per codec: x264 20, x265 24, av1 35, vp9 33)")
    encode.add_argument("--preset", help="encoder speed preset (x264/x265: ultrafast..veryslow, default veryfast/fast; av1: 0-13; vp9 cpu-used: 0-8)")
    if live:
        options.set_defaults(compare=False, batch_size=1)
        return options
    options.add_argument("--compare", action="store_true", help="write the original and the cartoon side by side")
    options.add_argument("--batch-size", type=int, default=8, help="frames per backend call (default 8)")
    return options


def settings_from_args(args: argparse.Namespace, input: Path, output: Path, overwrite: bool) -> Settings:
    """One frozen Settings from the cartoon_options() of a parsed command line."""
    return Settings(
        input=input,
        output=output,
        backend=args.backend,
        classic=ClassicSettings(levels=args.levels, edges=args.edges, smooth=args.smooth),
        encode=EncodeSettings(codec=args.codec, crf=args.crf, preset=args.preset),
        overwrite=overwrite,
        batch_size=args.batch_size,
        compare=args.compare,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    console = Console(stderr=True, highlight=False, soft_wrap=True)  # one line per message, never wrapped
    try:
        return args.run(args, console)
    except KeyboardInterrupt:
        if args.traceback:
            raise
        console.print("[yellow]interrupted[/]; no output was left behind")
        return ExitStatus.INTERRUPTED
    except VidtoonError as e:
        if args.traceback:
            raise
        console.print(f"[bold red]error:[/] {escape(str(e))}")
        return next((code for kind, code in EXIT_FOR.items() if isinstance(e, kind)), ExitStatus.ERROR)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if args.traceback:
            raise
        console.print(f"[bold red]unexpected error:[/] {type(e).__name__}: {escape(str(e))} (rerun with --traceback)")
        return ExitStatus.ERROR


def _cartoonize(args: argparse.Namespace, console: Console) -> int:
    from .pipeline import run
    from .progress import BarProgress, NoProgress

    settings = settings_from_args(args, args.input, args.output, args.overwrite)
    progress = NoProgress() if args.quiet else BarProgress(console)
    result = run(settings, progress)
    if not args.quiet:
        console.print(
            f"wrote {escape(str(result.output))}: {result.frames} frames in {result.seconds:.1f} s "
            f"({result.fps:.1f} fps, {result.backend} backend)"
        )
    return ExitStatus.SUCCESS


def _add_webcam(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    webcam = commands.add_parser(
        "webcam",
        parents=[common, cartoon_options(live=True)],
        help="cartoonize a camera live, in a preview window",
        description="Cartoonize a camera (or a looped video file, or a stream) live. Capture runs on its own "
        "thread and only the newest frame is processed, so a slow backend lowers the frame rate, not the "
        "freshness. Keys in the window: q/Esc quit, space original/cartoon, s PNG snapshot, r start/stop "
        "recording (video only, no sound), 1-9 presets (1: as started; 2-9: classic looks), h overlay. "
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
    webcam.set_defaults(run=_webcam)


def _webcam(args: argparse.Namespace, console: Console) -> int:
    from .live import Live, LiveSettings, free_path

    record = None
    if args.record is not None:
        record = Path(args.record) if args.record else free_path(args.save_dir, ".mp4")
    source = Path(args.source) if args.source else Path("camera")
    settings = LiveSettings(
        cartoon=settings_from_args(args, source, record or Path("webcam.mp4"), args.overwrite),
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


def _info(args: argparse.Namespace, console: Console) -> int:
    from .reader import open_video

    with open_video(args.input) as video:
        info = video.info
    print(f"{info.path}: {info}")
    if info.duration is not None:
        print(f"  duration {info.duration:.3f} s, time base {info.time_base}, rotation {info.rotation}")
    return ExitStatus.SUCCESS


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds like Ctrl-C does, so the writer deletes its temporary file.
    sys.exit(ExitStatus.TERMINATED)
