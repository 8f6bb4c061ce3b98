"""`vidtoon cartoonize` (a video file) and `vidtoon image` (one picture)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..config import FILE, IMAGE, Job
from ..progress import BarProgress, NoProgress, printable
from .options import cartoon_options, recipe_from_args
from .status import ExitStatus

_SIZE_NOTE = (
    "Odd widths/heights are padded by one edge-copied row/column for the 4:2:0 encoders "
    "(all but mpeg4), so no picture is lost."
)


def add(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cartoon = commands.add_parser(
        "cartoonize",
        parents=[common, cartoon_options(FILE)],
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
    cartoon.set_defaults(run=cartoonize)

    image = commands.add_parser(
        "image",
        parents=[common, cartoon_options(IMAGE)],
        help="cartoonize one image, or one frame of a video, to an image file",
        description="Cartoonize INPUT (an image, or frame --frame of a video) into OUTPUT "
        "(.png .jpg .webp ...) with the same look options as cartoonize: try settings in seconds. "
        "Options that need a sequence of frames or an encoder are not taken here.",
    )
    image.add_argument("input", type=Path, metavar="INPUT", help="image (png, jpg, ...) or video file")
    image.add_argument("-o", "--output", type=Path, required=True, help="where to write the cartoon image")
    image.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    image.add_argument("--frame", type=int, default=0, help="which frame of a video, 0-based (default 0)")
    image.set_defaults(run=picture)


def cartoonize(args: argparse.Namespace, console: Console) -> int:
    from ..pipeline import run

    if args.preview_frame is not None:
        args.output, args.frame = args.output.with_suffix(".png"), args.preview_frame
        return picture(args, console)
    progress = NoProgress() if args.quiet else BarProgress(console)
    result = run(Job(args.input, args.output, args.overwrite), recipe_from_args(args), progress)
    if not args.quiet:
        console.print(
            f"wrote {escape(printable(str(result.output)))}: {result.frames} frames in {result.seconds:.1f} s "
            f"({result.fps:.1f} fps, {result.backend} backend)"
        )
    for warning in result.warnings:  # a damaged input was salvaged: said even with --quiet
        console.print(f"[yellow]warning:[/] {escape(printable(warning))}")
    return ExitStatus.SUCCESS


def picture(args: argparse.Namespace, console: Console) -> int:
    from ..still import cartoonize_still

    progress = NoProgress() if args.quiet else BarProgress(console)
    result = cartoonize_still(Job(args.input, args.output, args.overwrite), recipe_from_args(args), args.frame, progress)
    if not args.quiet:
        console.print(f"wrote {escape(printable(str(result.output)))} in {result.seconds:.1f} s ({result.backend} backend)")
    return ExitStatus.SUCCESS
