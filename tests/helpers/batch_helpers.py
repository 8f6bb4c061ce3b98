"""Shared by the batch tests: a tree of generated clips, ways to check outputs, and
backend factories that misbehave on purpose (module-level, so worker processes
and Ray actors can import them)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from clips import audio_packets, make_clip, read_video

from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.errors import BackendUnavailable

GOOD = ["a.mp4", "silent.mp4", "sub/b.mkv", "sub/deep/c.mov"]
CORRUPT = "sub/corrupt.mp4"


@dataclass
class Tree:
    root: Path
    frames: dict[str, int]  # good clip -> frame count

    def digest(self) -> str:
        """One hash over every file's path and bytes: proves the inputs are untouched."""
        h = hashlib.sha256()
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(self.root)).encode() + b"\0" + path.read_bytes())
        return h.hexdigest()


def make_tree(root: Path) -> Tree:
    """Four good clips (one silent) in three folder levels, a truncated clip, a text file and a hidden clip."""
    frames = {"a.mp4": 12, "silent.mp4": 10, "sub/b.mkv": 8, "sub/deep/c.mov": 9}
    for rel, count in frames.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make_clip(root / rel, frames=count, audio=() if rel == "silent.mp4" else None)
    whole = (root / "a.mp4").read_bytes()
    (root / CORRUPT).write_bytes(whole[: len(whole) // 2])  # moov atom is at the end: unreadable
    (root / "notes.txt").write_text("not a video\n")
    make_clip(root / ".hidden.mp4", frames=3)  # hidden files are left alone
    return Tree(root, frames)


def make_flat(root: Path, count: int, frames: int, width: int = 64, height: int = 48) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    names = [f"clip{i:02d}.mp4" for i in range(count)]
    for name in names:
        make_clip(root / name, width=width, height=height, frames=frames)
    return names


def check_output(source: Path, output: Path) -> None:
    """Same frame count and timestamps as the source, audio packets byte for byte."""
    in_pts, in_tb, in_frames, _ = read_video(source)
    out_pts, out_tb, out_frames, _ = read_video(output)
    assert len(out_frames) == len(in_frames) > 0, output
    assert [round(float(p * out_tb), 3) for p in out_pts] == [round(float(p * in_tb), 3) for p in in_pts]
    assert audio_packets(output) == audio_packets(source)


def leftovers(out_dir: Path) -> list[Path]:
    """Temporary files (writer .part, manifest/report .tmp) anywhere in out_dir."""
    return [p for p in out_dir.rglob(".*") if p.suffix in (".part", ".tmp")]


def stamps(out_dir: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of each existing output: a rewrite (temp file + rename) changes both."""
    found = {}
    for name in names:
        path = out_dir / name
        if path.exists():
            st = path.stat()
            found[name] = (st.st_ino, st.st_mtime_ns)
    return found


def report(out_dir: Path) -> dict:
    return json.loads((out_dir / "report.json").read_text())


def statuses(out_dir: Path) -> dict[str, str]:
    return {c["clip"]: c["status"] for c in report(out_dir)["clips"]}


class _CrashOnWidth:
    """The classic backend, except that it kills its own process on frames `width` wide."""

    name = "classic"
    summary = ""
    batch_size = 8

    def __init__(self, recipe, width: int) -> None:
        self._inner, self._width = ClassicBackend(recipe.settings["classic"]), width

    def __call__(self, batch):
        if batch.shape[2] == self._width:
            os.kill(os.getpid(), signal.SIGKILL)
        return self._inner(batch)

    def reset(self) -> None:
        self._inner.reset()


def crash_on_width_80(recipe):
    return _CrashOnWidth(recipe, 80)


def cannot_load(recipe):
    raise BackendUnavailable("the test backend has no weights")


class _NamedByDevice(_CrashOnWidth):
    """The classic backend, named after the GPU its worker was given."""

    def __init__(self, recipe) -> None:
        super().__init__(recipe, width=-1)
        self.name = f"cuda{os.environ.get('CUDA_VISIBLE_DEVICES', '-')}"


def named_by_device(recipe):
    return _NamedByDevice(recipe)


class _HangOnWidth(_CrashOnWidth):
    """The classic backend, except that it never returns on frames `width` wide.
    stuck: it also ignores SIGTERM, as a hang inside an encoder library does."""

    def __init__(self, recipe, width: int, stuck: bool) -> None:
        super().__init__(recipe, width)
        self._stuck = stuck

    def __call__(self, batch):
        if batch.shape[2] == self._width:
            if self._stuck:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            threading.Event().wait()  # forever (a signal handler that raises still ends it)
        return self._inner(batch)


def hang_on_width_80(recipe):
    return _HangOnWidth(recipe, 80, stuck=False)


def stuck_on_width_80(recipe):
    return _HangOnWidth(recipe, 80, stuck=True)


# `vidtoon batch ARGS` with the workers' backend made by a factory of this module
# (argv[1]): run.default_factory is what the CLI's batch hands its workers.
_BATCH_WITH_FACTORY = """
import sys
sys.path.insert(0, {helpers!r})
import batch_helpers
import vidtoon.batch.run
vidtoon.batch.run.default_factory = getattr(batch_helpers, sys.argv[1])
from vidtoon.cli import main
sys.exit(main(["batch", *sys.argv[2:]]))
"""


def batch_with_factory(factory: str, *args) -> list[str]:
    """The argv of a `vidtoon batch ARGS` whose workers use batch_helpers.`factory`."""
    script = _BATCH_WITH_FACTORY.format(helpers=str(Path(__file__).parent))
    return [sys.executable, "-c", script, factory, *map(str, args)]
