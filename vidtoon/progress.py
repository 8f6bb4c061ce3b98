"""Progress reporting: a rich bar on stderr, and a do-nothing twin.

Library code only calls the Progress protocol; the CLI decides which one.
"""

from __future__ import annotations

import inspect
from typing import Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichProgress,
)
from rich.text import Text


class Progress(Protocol):
    def note(self, message: str) -> None: ...

    def start(self, description: str, total: int | None) -> None: ...

    def advance(self, frames: int) -> None: ...

    def stop(self, complete: bool = True) -> None: ...


class NoProgress:
    """Says nothing: for --quiet and for the Python API."""

    def note(self, message: str) -> None:
        pass

    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, frames: int) -> None:
        pass

    def stop(self, complete: bool = True) -> None:
        pass


class _FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} fps" if speed else "  -.- fps", style="progress.data.speed")


class BarProgress:
    """A rich progress bar (frames done/total, fps, ETA) on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._bar: RichProgress | None = None
        self._task = None

    def note(self, message: str) -> None:
        self.console.print(printable(message), markup=False, highlight=False)

    def start(self, description: str, total: int | None) -> None:
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _FpsColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(escape(printable(description)), total=total)

    def advance(self, frames: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, frames)

    def stop(self, complete: bool = True) -> None:
        """complete=False (a failure, Ctrl-C): the bar stays at what was done, of the total."""
        if self._bar is not None:
            task = self._bar.tasks[0]
            if complete:  # the container's frame count is an estimate; end the bar at the truth
                self._bar.update(self._task, total=task.completed)
            self._bar.stop()
            self._bar = None


def stop_unfinished(progress: Progress) -> None:
    """progress.stop(complete=False) after a failure or Ctrl-C; plain stop() for a
    Progress written before `complete` existed (the batch's, a caller's own)."""
    if "complete" in inspect.signature(progress.stop).parameters:
        progress.stop(complete=False)
    else:
        progress.stop()


def printable(text: str) -> str:
    """`text` as one safe line: file-name bytes that are not UTF-8 as \\xNN, and
    control characters (newlines, terminal escapes) escaped, never obeyed."""
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif "\udc80" <= char <= "\udcff":  # a raw byte kept by os.fsdecode (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)
