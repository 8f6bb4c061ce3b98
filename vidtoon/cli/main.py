"""The `vidtoon` command: the parser, and main(), which turns every error vidtoon
raises on purpose into one line on stderr and an exit code (status.py);
--traceback shows the real traceback instead."""

from __future__ import annotations

import argparse
import signal
import sys

from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import VidtoonError
from ..progress import printable
from . import batch, cartoonize, info, metrics, serve, webcam
from .options import common_options
from .status import ExitStatus, exit_status

COMMANDS = (cartoonize, batch, info, metrics, webcam, serve)  # each adds its subcommand(s)


def build_parser() -> argparse.ArgumentParser:
    common = common_options(top_level=False)
    parser = argparse.ArgumentParser(
        prog="vidtoon", description="Turn real video into cartoon video.", parents=[common_options(top_level=True)]
    )
    parser.add_argument("--version", action="version", version=f"vidtoon {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add(commands, common)
    return parser


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
        return exit_status(e)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if args.traceback:
            raise
        console.print(
            f"[bold red]unexpected error:[/] {type(e).__name__}: {escape(printable(str(e)))} (rerun with --traceback)"
        )
        return ExitStatus.ERROR


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds like Ctrl-C does, so the writer deletes its temporary file.
    sys.exit(ExitStatus.TERMINATED)


def _exit_on_sighup(signum: int, frame: object) -> None:
    sys.exit(ExitStatus.HANGUP)  # a closed terminal or SSH session: clean up as for SIGTERM
