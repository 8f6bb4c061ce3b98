"""The batch command's display on stderr: a live table while clips run, a summary after.

Live: one row per clip in flight (worker, frames done/total, fps) and the last
few finished, under a line of totals. Failures and notes are printed above the
table as they happen, one line each, so they stay on screen afterwards.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..progress import printable
from .workers import ClipResult

RECENT = 5  # finished clips kept on the live table
SUMMARY_ROWS = 40  # longer batches list their failures only; report.json has everything
REFRESH = 0.25  # seconds

STYLE = {"done": "green", "skipped": "dim", "failed": "bold red", "interrupted": "yellow", "running": "cyan"}


@dataclass
class _Running:
    worker: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int | None = None


class BatchTable:
    """A BatchObserver that draws with rich."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._running: dict[str, _Running] = {}
        self._recent: deque[ClipResult] = deque(maxlen=RECENT)
        self._counts = {"done": 0, "skipped": 0, "failed": 0}
        self._total = 0
        self._started = time.monotonic()
        self._live: Live | None = None
        self._drawn = 0.0

    def begin(self, clips: list[str], known: list[ClipResult], backend: str) -> None:
        self._total = len(clips)
        self._started = time.monotonic()
        for result in known:
            self._counts[result.status] = self._counts.get(result.status, 0) + 1
            if result.status == "failed":
                self._say_failed(result)
        if self._counts["skipped"]:
            self.note(f"{self._counts['skipped']} of {self._total} clips are up to date (add --force to redo them)")
        self._live = Live(console=self.console, auto_refresh=False, transient=True, redirect_stderr=False)
        self._live.start()
        self._draw()

    def clip_started(self, rel: str, worker: str) -> None:
        self._running[rel] = _Running(worker)
        self._draw(now=True)

    def clip_progress(self, rel: str, done: int | None, total: int | None) -> None:
        row = self._running.get(rel)
        if row is None:
            return
        if total is not None:
            row.total, row.started = total, time.monotonic()  # fps from the first frame, not the hand-out
        if done is not None:
            row.done = done
        self._draw()

    def clip_finished(self, result: ClipResult) -> None:
        self._running.pop(result.rel, None)
        self._recent.append(result)
        self._counts[result.status] = self._counts.get(result.status, 0) + 1
        if result.status == "failed":
            self._say_failed(result)
        for warning in result.warnings:
            self.console.print(f"[yellow]warning:[/] {escape(printable(result.rel))}: {escape(printable(warning))}", highlight=False)
        self._draw(now=True)

    def note(self, message: str) -> None:
        self.console.print(escape(printable(message)), highlight=False)

    def tick(self) -> None:
        self._draw()

    def end(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _say_failed(self, result: ClipResult) -> None:
        self.console.print(f"[bold red]failed[/] {escape(printable(result.rel))}: {escape(printable(result.error or ''))}", highlight=False)

    def _draw(self, now: bool = False) -> None:
        if self._live is None or (not now and time.monotonic() - self._drawn < REFRESH):
            return
        self._drawn = time.monotonic()
        self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        elapsed = time.monotonic() - self._started
        finished = sum(self._counts.values())
        made = self._counts["done"] + self._counts["failed"]
        rate = f"{made / elapsed:.2f} clips/s" if made and elapsed > 0 else "-.-- clips/s"
        head = Text(
            f"{finished}/{self._total} clips: {self._counts['done']} done, {self._counts['skipped']} up to date, "
            f"{self._counts['failed']} failed; {rate}, {elapsed:.0f} s"
        )
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name, justify in (("clip", "left"), ("state", "left"), ("worker", "left"), ("frames", "right"), ("fps", "right")):
            table.add_column(name, justify=justify, no_wrap=name != "clip")
        for rel, row in self._running.items():
            seconds = time.monotonic() - row.started
            frames = f"{row.done}/{row.total}" if row.total else str(row.done)
            fps = f"{row.done / seconds:.1f}" if row.done and seconds > 0 else "-"
            table.add_row(Text(rel), Text("running", STYLE["running"]), Text(row.worker), frames, fps)
        for result in reversed(self._recent):
            fps = f"{result.fps:.1f}" if result.fps else ""
            frames = "" if result.frames is None else str(result.frames)
            table.add_row(Text(result.rel), Text(result.status, STYLE[result.status]), Text(result.worker or ""), frames, fps)
        return Group(head, table)


def print_summary(console: Console, results: list[ClipResult], headline: str) -> None:
    """Every clip (or, for long batches, the failed ones) in a table, then one line of totals."""
    shown = results if len(results) <= SUMMARY_ROWS else [r for r in results if r.status == "failed"]
    if shown:
        table = Table(header_style="bold", show_edge=False)
        for name in ("clip", "status", "frames", "seconds", "fps", "error"):
            table.add_column(name, justify="right" if name in ("frames", "seconds", "fps") else "left")
        for r in shown:
            table.add_row(
                escape(printable(r.rel)),
                Text(r.status, STYLE.get(r.status, "")),
                "" if r.frames is None else str(r.frames),
                "" if r.seconds is None else f"{r.seconds:.1f}",
                "" if r.fps is None else f"{r.fps:.1f}",
                escape(printable(r.error or "")),
            )
        console.print(table)
    console.print(headline, highlight=False)
