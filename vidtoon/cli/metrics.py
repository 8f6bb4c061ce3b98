"""`vidtoon metrics`: how much a processed video flickers, next to its source."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..errors import SettingsError
from ..progress import BarProgress, NoProgress, printable
from ..temporal import METRICS_FLOWS
from .quiet import write_stdout
from .status import ExitStatus


def add(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    metrics = commands.add_parser(
        "metrics",
        parents=[common],
        help="measure flicker: OUTPUT's warp error against SOURCE's own",
        description="Warp error (Lai et al. 2018) of OUTPUT, frame t against frame t+1 warped back "
        "along SOURCE's optical flow, occlusions masked; the same for SOURCE itself, and the ratio "
        "output/source (1 = as steady as the source). OUTPUT needs one frame per SOURCE frame "
        "(the counts are compared first); a --compare video is measured by its right half, a resized one at "
        "SOURCE's size. The pairs are measured on every core.",
    )
    metrics.add_argument("source", type=Path, metavar="SOURCE", help="the original video: its motion is measured")
    metrics.add_argument("output", type=Path, metavar="OUTPUT", help="a processed version of SOURCE, e.g. a cartoon")
    metrics.add_argument("--json", action="store_true", help="print the report, per-frame values included, as JSON on stdout")
    metrics.add_argument("--plot", type=Path, metavar="IMAGE", help="draw the per-frame warp error of source and output (.png/.jpg)")
    metrics.add_argument("--sheet", type=Path, metavar="IMAGE", help="a contact sheet of source/output frames and where the output flickers (.png/.jpg)")
    metrics.add_argument("--flow", choices=METRICS_FLOWS, default=METRICS_FLOWS[0],
                         help="optical flow: medium (default, DIS medium) or fast (DIS fast: about 3x quicker, but "
                         "coarser, so the source's own error rises and ratios come out lower; compare only numbers "
                         "measured with the same --flow)")
    metrics.add_argument("-y", "--overwrite", action="store_true", help="replace existing --plot/--sheet images")
    metrics.set_defaults(run=run)


SHEET_ROWS = 6  # frames on a --sheet


def run(args: argparse.Namespace, console: Console) -> int:
    import json

    from ..temporal.figures import check_image_path, plot, save_image, sheet
    from ..temporal.metrics import measure

    images = [(path, draw) for path, draw in ((args.plot, plot), (args.sheet, sheet)) if path is not None]
    if args.plot is not None and args.sheet is not None and args.plot.resolve() == args.sheet.resolve():
        raise SettingsError(f"{args.plot}: given for both --plot and --sheet")
    for path, _ in images:
        check_image_path(path, args.overwrite)
    progress = NoProgress() if args.quiet else BarProgress(console)
    report = measure(args.source, args.output, progress, samples=SHEET_ROWS if args.sheet else 0, flow=args.flow)
    for path, draw in images:
        save_image(path, draw(report))
        if not args.quiet:
            console.print(f"wrote {escape(printable(str(path)))}")
    write_stdout(json.dumps(report.as_json(), indent=2) if args.json else report.summary())
    return ExitStatus.SUCCESS
