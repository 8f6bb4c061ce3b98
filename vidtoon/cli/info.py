"""`vidtoon info`: what vidtoon sees in a video file."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..progress import printable
from .status import ExitStatus


def add(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    info = commands.add_parser("info", parents=[common], help="show what vidtoon sees in a video file")
    info.add_argument("input", type=Path, metavar="INPUT")
    info.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from ..io.reader import open_video

    with open_video(args.input) as video:
        info = video.info
    print(f"{printable(str(info.path))}: {info}")
    if info.duration is not None:
        print(f"  duration {info.duration:.3f} s, time base {info.time_base}, rotation {info.rotation}")
    return ExitStatus.SUCCESS
