"""`vidtoon batch`: every clip in a folder (tree), resumably, locally or on Ray."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..config import FILE
from ..progress import printable
from .options import cartoon_options, recipe_from_args
from .status import ExitStatus


def add(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    batch = commands.add_parser(
        "batch",
        parents=[common, cartoon_options(FILE)],
        help="cartoonize every clip in a folder (tree), resumably, locally or on a Ray cluster",
        description="Cartoonize every clip in IN_DIR into OUT_DIR, mirroring the folder tree. A rerun "
        "skips clips already done with the same input and recipe (OUT_DIR/vidtoon-manifest.json) "
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
    batch.add_argument(
        "--clip-timeout", type=float, metavar="SECONDS",
        help="fail a clip that takes longer, and go on (default: 10 minutes plus 10 s a frame, "
        "5 minutes a frame for pix2pix; 0: no limit)",
    )
    batch.add_argument("--report-html", action="store_true", help="also write OUT_DIR/report.html with a source/cartoon thumbnail pair per clip")
    batch.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from ..batch.signals import first_signal_only

    # Kept to the exit: a late Ctrl-C must not cut the last message or the exit handlers short.
    with first_signal_only(restore=False):
        return _run(args, console)


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..batch.run import BatchInterrupted, BatchOptions, run_batch
    from ..batch.table import BatchTable, print_summary

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
        clip_timeout=args.clip_timeout,
    )
    try:
        result = run_batch(options, recipe_from_args(args), None if args.quiet else BatchTable(console))
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
