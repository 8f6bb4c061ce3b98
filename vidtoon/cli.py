"""The `vidtoon` command. The only module that prints or exits.

    vidtoon cartoonize in.mp4 -o out.mp4 [--backend auto|classic|pix2pix] ...
    vidtoon image in.png -o out.png [--frame N] ...   (same options; one picture)
    vidtoon info in.mp4
    vidtoon batch clips/ -o cartoons/ [--recursive] [--jobs N] [--ray [ADDRESS]] ...
    vidtoon metrics in.mp4 out.mp4 [--json] [--plot plot.png] [--sheet sheet.png]
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
from .config import BACKENDS, DEVICES, DTYPES, TAESD_MODEL, ClassicSettings, EncodeSettings, Pix2PixSettings, Settings
from .errors import BackendUnavailable, DeviceUnavailable, InputError, OutputError, SettingsError, VidtoonError
from .progress import printable


class ExitStatus(IntEnum):
    SUCCESS = 0
    ERROR = 1  # a bug or an unexpected failure; rerun with --traceback
    BAD_INPUT = 2  # bad usage, bad option value, unreadable or unusable input
    WRITE_FAILED = 3  # the output could not be written (disk full, permissions)
    BACKEND_UNAVAILABLE = 4  # the backend asked for cannot run here
    SOME_FAILED = 5  # batch: the others are done, but some clips failed (see report.json)
    DEVICE_UNAVAILABLE = 6  # webcam: no such camera, no display for the window, no virtual camera device
    HANGUP = 129  # SIGHUP: the terminal went away
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
    cartoon.add_argument("--preview-frame", type=int, metavar="N",
                         help="cartoonize only frame N (0-based) into OUTPUT with a .png suffix, to try settings")
    cartoon.set_defaults(run=_cartoonize)

    image = commands.add_parser(
        "image",
        parents=[common, cartoon_options()],
        help="cartoonize one image, or one frame of a video, to an image file",
        description="Cartoonize INPUT (an image, or frame --frame of a video) into OUTPUT "
        "(.png .jpg .webp ...) with the same options as cartoonize: try settings in seconds.",
    )
    image.add_argument("input", type=Path, metavar="INPUT", help="image (png, jpg, ...) or video file")
    image.add_argument("-o", "--output", type=Path, required=True, help="where to write the cartoon image")
    image.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    image.add_argument("--frame", type=int, default=0, help="which frame of a video, 0-based (default 0)")
    image.set_defaults(run=_image)
    _add_batch_command(commands, common)

    info = commands.add_parser("info", parents=[common], help="show what vidtoon sees in a video file")
    info.add_argument("input", type=Path, metavar="INPUT")
    info.set_defaults(run=_info)

    metrics = commands.add_parser(
        "metrics",
        parents=[common],
        help="measure flicker: OUTPUT's warp error against SOURCE's own",
        description="Warp error (Lai et al. 2018) of OUTPUT, frame t against frame t+1 warped back "
        "along SOURCE's optical flow, occlusions masked; the same for SOURCE itself, and the ratio "
        "output/source (1 = as steady as the source). OUTPUT needs one frame per SOURCE frame; "
        "a --compare video is measured by its right half, a resized one at SOURCE's size.",
    )
    metrics.add_argument("source", type=Path, metavar="SOURCE", help="the original video: its motion is measured")
    metrics.add_argument("output", type=Path, metavar="OUTPUT", help="a processed version of SOURCE, e.g. a cartoon")
    metrics.add_argument("--json", action="store_true", help="print the report, per-frame values included, as JSON on stdout")
    metrics.add_argument("--plot", type=Path, metavar="IMAGE", help="draw the per-frame warp error of source and output (.png/.jpg)")
    metrics.add_argument("--sheet", type=Path, metavar="IMAGE", help="a contact sheet of source/output frames and where the output flickers (.png/.jpg)")
    metrics.add_argument("-y", "--overwrite", action="store_true", help="replace existing --plot/--sheet images")
    metrics.set_defaults(run=_metrics)

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
    classic.add_argument(
        "--stabilize",
        action=argparse.BooleanOptionalAction,
        default=defaults.stabilize,
        help="blend each frame with the previous output warped along the source's motion, so still content "
        f"does not shimmer (default {'on' if defaults.stabilize else 'off'})",
    )
    encode = options.add_argument_group("encoding")
    encode.add_argument("--codec", help=_CODEC_HELP)
    encode.add_argument("--crf", type=int, help="constant quality, lower is better (default per codec: x264 20, x265 24, av1 35, vp9 33)")
    encode.add_argument("--preset", help="encoder speed preset (x264/x265: ultrafast..veryslow, default veryfast/fast; av1: 0-13; vp9 cpu-used: 0-8)")
    _pix2pix_options(options, live)
    if live:
        options.set_defaults(compare=False, batch_size=1)
        return options
    options.add_argument("--compare", action="store_true", help="write the original and the cartoon side by side")
    options.add_argument(
        "--batch-size", type=int, default=None,
        help="frames per backend call (default: classic 8; pix2pix 16 on a GPU, 4 on a CPU, halved on out-of-memory)",
    )
    return options


def _pix2pix_options(options: argparse.ArgumentParser, live: bool = False) -> None:
    p2p = options.add_argument_group("pix2pix backend")
    d = Pix2PixSettings()
    p2p.add_argument("--model", metavar="ID_OR_DIR", default=d.model,
                     help=f"Hugging Face id (from its cache) or a folder saved with save_pretrained (default {d.model})")
    p2p.add_argument("--prompt", default=d.prompt, help=f"the instruction (default {d.prompt!r})")
    p2p.add_argument("--steps", type=int, default=d.steps, help=f"denoising steps, 1-200 (default {d.steps})")
    p2p.add_argument("--image-guidance", type=float, default=d.image_guidance,
                     help=f"how closely to follow the frame (default {d.image_guidance})")
    p2p.add_argument("--guidance", type=float, default=d.guidance, help=f"how strongly to follow the prompt (default {d.guidance})")
    p2p.add_argument("--seed", type=int, default=d.seed, help=f"the clip's one noise seed (default {d.seed})")
    p2p.add_argument("--max-side", type=int, default=d.max_side,
                     help=f"process frames with the long side at most this, multiples of 8 (default {d.max_side})")
    if live:  # webcam's --size is the camera's; live pix2pix sizes by --max-side
        options.set_defaults(work_size=None)
    else:
        p2p.add_argument("--size", dest="work_size", type=_size, metavar="WxH", help="process frames at this size instead (rounded to multiples of 8)")
    p2p.add_argument("--offline", action="store_true", help="never download weights (as HF_HUB_OFFLINE=1)")
    p2p.add_argument("--torch-device", dest="torch_device", default=d.device, help=f"{', '.join(DEVICES)} or cuda:N (default auto: cuda, mps, cpu)")
    p2p.add_argument("--dtype", choices=DTYPES, default=d.dtype, help="default auto: fp16 on a GPU, fp32 on a CPU")
    p2p.add_argument("--cross-frame", action="store_true",
                     help="self-attention of every frame attends to the clip's first frame (steadier look; more memory)")
    p2p.add_argument("--reuse-latents", type=float, metavar="STRENGTH", default=d.reuse_latents,
                     help="start each frame from the previous one's result warped along the motion, noised by "
                     "STRENGTH in (0, 1] (e.g. 0.5: half the steps); default off")
    p2p.add_argument("--keyframe-every", type=int, metavar="K", default=d.keyframe_every,
                     help="diffuse every K-th frame and scene cuts only, warp the result along the motion "
                     f"between them (K times fewer diffusion runs; default {d.keyframe_every}: every frame)")
    p2p.add_argument("--fast-vae", nargs="?", const=TAESD_MODEL, default=None, metavar="ID_OR_DIR",
                     help=f"decode with the tiny TAESD decoder (AutoencoderTiny; default id {TAESD_MODEL}): "
                     "several times faster than the model's VAE, slightly softer pictures")


def _size(text: str) -> tuple[int, int]:
    width, x, height = text.lower().partition("x")
    if not (x and width.strip().isdigit() and height.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 512x384, got {text!r}")
    return int(width), int(height)


def settings_from_args(args: argparse.Namespace, input: Path, output: Path, overwrite: bool) -> Settings:
    """One frozen Settings from the cartoon_options() of a parsed command line."""
    return Settings(
        input=input,
        output=output,
        backend=args.backend,
        classic=ClassicSettings(levels=args.levels, edges=args.edges, smooth=args.smooth, stabilize=args.stabilize),
        encode=EncodeSettings(codec=args.codec, crf=args.crf, preset=args.preset),
        overwrite=overwrite,
        batch_size=Settings.batch_size if args.batch_size is None else args.batch_size,
        compare=args.compare,
        pix2pix=Pix2PixSettings(
            model=args.model, prompt=args.prompt, steps=args.steps, image_guidance=args.image_guidance,
            guidance=args.guidance, seed=args.seed, max_side=args.max_side, size=args.work_size,
            batch_size=args.batch_size, offline=args.offline, device=args.torch_device, dtype=args.dtype,
            cross_frame=args.cross_frame, reuse_latents=args.reuse_latents, keyframe_every=args.keyframe_every,
            fast_vae=args.fast_vae,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:  # nohup: keep ignoring
        signal.signal(signal.SIGHUP, _exit_on_sighup)
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
        console.print(f"[bold red]error:[/] {escape(printable(str(e)))}")
        return next((code for kind, code in EXIT_FOR.items() if isinstance(e, kind)), ExitStatus.ERROR)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if args.traceback:
            raise
        console.print(
            f"[bold red]unexpected error:[/] {type(e).__name__}: {escape(printable(str(e)))} (rerun with --traceback)"
        )
        return ExitStatus.ERROR


def _cartoonize(args: argparse.Namespace, console: Console) -> int:
    from .pipeline import run
    from .progress import BarProgress, NoProgress

    if args.preview_frame is not None:
        args.output, args.frame = args.output.with_suffix(".png"), args.preview_frame
        return _image(args, console)
    settings = settings_from_args(args, args.input, args.output, args.overwrite)
    progress = NoProgress() if args.quiet else BarProgress(console)
    result = run(settings, progress)
    if not args.quiet:
        console.print(
            f"wrote {escape(printable(str(result.output)))}: {result.frames} frames in {result.seconds:.1f} s "
            f"({result.fps:.1f} fps, {result.backend} backend)"
        )
    for warning in result.warnings:  # a damaged input was salvaged: said even with --quiet
        console.print(f"[yellow]warning:[/] {escape(printable(warning))}")
    return ExitStatus.SUCCESS


def _image(args: argparse.Namespace, console: Console) -> int:
    from .progress import BarProgress, NoProgress
    from .still import cartoonize_still

    settings = settings_from_args(args, args.input, args.output, args.overwrite)
    result = cartoonize_still(settings, args.frame, NoProgress() if args.quiet else BarProgress(console))
    if not args.quiet:
        console.print(f"wrote {escape(printable(str(result.output)))} in {result.seconds:.1f} s ({result.backend} backend)")
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
    print(f"{printable(str(info.path))}: {info}")
    if info.duration is not None:
        print(f"  duration {info.duration:.3f} s, time base {info.time_base}, rotation {info.rotation}")
    return ExitStatus.SUCCESS


def _add_batch_command(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    batch = commands.add_parser(
        "batch",
        parents=[common, cartoon_options()],
        help="cartoonize every clip in a folder (tree), resumably, locally or on a Ray cluster",
        description="Cartoonize every clip in IN_DIR into OUT_DIR, mirroring the folder tree. A rerun "
        "skips clips already done with the same input and settings (OUT_DIR/vidtoon-manifest.json) "
        "and finishes the rest; a bad clip is reported and the rest go on. Writes OUT_DIR/report.json. "
        "Exit code 0: all clips done; 5: some failed; 2: the batch could not start; 4: the backend "
        "or Ray cluster asked for is not available.",
    )
    batch.add_argument("in_dir", type=Path, metavar="IN_DIR", help="folder of clips")
    batch.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR", help="where the cartoons go (created if needed)")
    batch.add_argument("-r", "--recursive", action="store_true", help="also take clips from subfolders (the tree is mirrored)")
    batch.add_argument(
        "--glob", action="append", metavar="PATTERN",
        help="take files whose name matches PATTERN, e.g. '*.mp4' (repeatable; default: the usual video suffixes)",
    )
    batch.add_argument(
        "--suffix", metavar=".EXT",
        help="output container for every clip, e.g. .mp4 (default: the input's own when vidtoon writes it, else .mp4)",
    )
    batch.add_argument(
        "-j", "--jobs", type=int, metavar="N",
        help="workers at once (default: one per GPU for pix2pix, one per CPU for classic; with --ray, of the cluster)",
    )
    batch.add_argument("--force", action="store_true", help="redo every clip, and replace outputs no earlier batch made")
    batch.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help="run on Ray: alone, a new local Ray instance; 'auto' the cluster this machine joined (ray start); or an address",
    )
    batch.add_argument("--report-html", action="store_true", help="also write OUT_DIR/report.html with a source/cartoon thumbnail pair per clip")
    batch.set_defaults(run=_batch)


def _batch(args: argparse.Namespace, console: Console) -> int:
    from .batch import BatchInterrupted, BatchOptions, run_batch
    from .batch_table import BatchTable, print_summary

    # multiprocessing's resource tracker (its own process, started with the first worker
    # queue) may warn at exit about semaphores that were already removed, on our stderr,
    # after the last line; nothing leaks. It takes its warning filters from sys.warnoptions.
    sys.warnoptions.append("ignore::UserWarning:multiprocessing.resource_tracker")
    options = BatchOptions(
        in_dir=args.in_dir,
        out_dir=args.output,
        recursive=args.recursive,
        globs=tuple(args.glob or ()),
        suffix=args.suffix,
        jobs=args.jobs,
        force=args.force,
        ray=args.ray,
        report_html=args.report_html,
    )
    settings = settings_from_args(args, args.in_dir, args.output, overwrite=True)
    try:
        result = run_batch(options, settings, None if args.quiet else BatchTable(console))
    except BatchInterrupted as stop:
        kept = stop.result.count("done") + stop.result.count("skipped")
        console.print(
            f"[yellow]interrupted[/]: {kept} of {len(stop.result.results)} clips are done and kept, clips in "
            "progress left nothing behind; run the same command again to finish"
        )
        return ExitStatus.INTERRUPTED
    if args.quiet:  # errors, and what damaged inputs lost, are said even with --quiet
        for clip in result.results:
            for warning in clip.warnings:
                console.print(f"[yellow]warning:[/] {escape(printable(clip.rel))}: {escape(printable(warning))}")
        for clip in result.failed:
            console.print(f"[bold red]error:[/] {escape(printable(clip.rel))}: {escape(printable(clip.error or 'failed'))}")
    else:
        made = result.count("done") + len(result.failed)
        rate = f" ({made / result.seconds:.2f} clips/s)" if made and result.seconds > 0 else ""
        counts = f"{result.count('done')} done, {result.count('skipped')} up to date, {len(result.failed)} failed"
        where = escape(printable(str(result.html or result.report)))
        print_summary(console, result.results, f"{counts} in {result.seconds:.1f} s{rate}; report: {where}")
    return ExitStatus.SOME_FAILED if result.failed else ExitStatus.SUCCESS


SHEET_ROWS = 6  # frames on a --sheet


def _metrics(args: argparse.Namespace, console: Console) -> int:
    import json

    from .figures import check_image_path, plot, save_image, sheet
    from .metrics import measure
    from .progress import BarProgress, NoProgress

    images = [(path, draw) for path, draw in ((args.plot, plot), (args.sheet, sheet)) if path is not None]
    if args.plot is not None and args.sheet is not None and args.plot.resolve() == args.sheet.resolve():
        raise SettingsError(f"{args.plot}: given for both --plot and --sheet")
    for path, _ in images:
        check_image_path(path, args.overwrite)
    progress = NoProgress() if args.quiet else BarProgress(console)
    report = measure(args.source, args.output, progress, samples=SHEET_ROWS if args.sheet else 0)
    for path, draw in images:
        save_image(path, draw(report))
        if not args.quiet:
            console.print(f"wrote {escape(printable(str(path)))}")
    print(json.dumps(report.as_json(), indent=2) if args.json else report.summary())
    return ExitStatus.SUCCESS


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds like Ctrl-C does, so the writer deletes its temporary file.
    sys.exit(ExitStatus.TERMINATED)


def _exit_on_sighup(signum: int, frame: object) -> None:
    sys.exit(ExitStatus.HANGUP)  # a closed terminal or SSH session: clean up as for SIGTERM
