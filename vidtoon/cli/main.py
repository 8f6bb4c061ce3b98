"""The `vidtoon` command: the parser, and main(), which turns every error vidtoon
raises on purpose into one line on stderr and an exit code (status.py);
--traceback shows the real traceback instead (and the libraries' own messages,
which quiet.py otherwise keeps off the terminal)."""

from __future__ import annotations

import argparse
import signal
import sys

from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import OutputError, VidtoonError, describe
from ..io.commit import clear_commits, committed
from ..progress import printable
from . import batch, cartoonize, info, metrics, serve, webcam
from .options import common_options
from .quiet import drop_stdout, quiet_libraries, tolerant
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
    if not args.traceback:
        quiet_libraries()
    # One line per message, never wrapped; a full or closed stderr never stops a run.
    console = Console(file=tolerant(sys.stderr), highlight=False, soft_wrap=True)
    clear_commits()
    try:
        code = args.run(args, console)
        _flush_stdout()  # here, so that a closed pipe or full disk is seen below and not at exit
        return code
    except BrokenPipeError:  # stdout read by `head`, which left: stop quietly (Python docs, signal module)
        drop_stdout()
        return ExitStatus.BROKEN_PIPE
    except KeyboardInterrupt:
        if args.traceback:
            raise
        if _output_complete(args, console):
            return ExitStatus.SUCCESS
        console.print("[yellow]interrupted[/]; no output was left behind")
        return ExitStatus.INTERRUPTED
    except SystemExit as e:  # SIGTERM, SIGHUP (below)
        if e.code in (ExitStatus.TERMINATED, ExitStatus.HANGUP) and _output_complete(args, console):
            return ExitStatus.SUCCESS
        raise
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


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        drop_stdout()
        raise OutputError(f"stdout: cannot be written ({describe(e)})") from None


def _output_complete(args: argparse.Namespace, console: Console) -> bool:
    """Was the one output of `cartoonize`/`image` moved into place before the signal
    came? Then the run is done: exit 0, so the exit code says what is on disk."""
    output = getattr(args, "output", None)
    if args.command not in ("cartoonize", "image") or output is None or output not in committed():
        return False
    if not args.quiet:
        console.print(f"wrote {escape(printable(str(output)))} (it was complete when the signal came)")
    return True


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds like Ctrl-C does, so the writer deletes its temporary file.
    sys.exit(ExitStatus.TERMINATED)


def _exit_on_sighup(signum: int, frame: object) -> None:
    sys.exit(ExitStatus.HANGUP)  # a closed terminal or SSH session: clean up as for SIGTERM
