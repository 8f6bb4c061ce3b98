"""Which clips a batch finds, where their cartoons go, and which of them are left to do;
OUT_DIR made and locked (one batch at a time).

    clips, ignored = find_clips(in_dir, out_dir, recursive)
    jobs = [clip_for(in_dir, out_dir, path, suffix) for path in clips]
    todo = plan(jobs, out_dir, manifest, fingerprint, force, results)
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Recipe
from ..errors import InputError, OutputError, SettingsError, describe
from ..io.formats import CONTAINERS, resolve
from .manifest import MANIFEST_NAME, Manifest, file_digest
from .workers import Clip, ClipResult

if TYPE_CHECKING:
    from .run import BatchOptions

# What counts as a clip when no --glob is given (case does not matter).
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .ts .m2ts .mts .flv .wmv .3gp .ogv .mxf .dv".split()
)
DEFAULT_SUFFIX = ".mp4"  # for inputs whose own container vidtoon does not write (.flv, .ts, ...)
REPORT_NAME = "report.json"
BATCH_FILES = (MANIFEST_NAME, REPORT_NAME, "report.html")  # the batch's own files in OUT_DIR: no clip may use these names


def check_dirs(options: BatchOptions) -> tuple[Path, Path]:
    in_dir, out_dir = options.in_dir, options.out_dir
    if not in_dir.exists():
        raise InputError(f"{in_dir}: no such directory")
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: is a file; batch takes a directory (use cartoonize for one file)")
    if out_dir.exists() and not out_dir.is_dir():
        raise SettingsError(f"{out_dir}: exists and is not a directory")
    real_in, real_out = in_dir.resolve(), out_dir.resolve()
    if real_in == real_out or real_in.is_relative_to(real_out):
        raise SettingsError(f"{out_dir}: the output folder must not be the input folder or contain it")
    return in_dir, out_dir


def make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # read-only, no permission, a parent that is a file, a full disk
        raise OutputError(f"{out_dir}: cannot be created ({describe(e)})") from None


@contextlib.contextmanager
def exclusive(out_dir: Path) -> Iterator[None]:
    """One batch at a time per OUT_DIR: a lock on the folder itself (POSIX only), freed
    by the kernel when the process ends, even by kill -9."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    try:
        fd = os.open(out_dir, os.O_RDONLY)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot be opened ({describe(e)})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SettingsError(f"{out_dir}: another vidtoon batch is writing into it; wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def find_clips(in_dir: Path, out_dir: Path, recursive: bool, globs: tuple[str, ...] = ()) -> tuple[list[Path], int]:
    """Clips under in_dir in path order, and how many other files were passed over.
    Hidden files and folders, and out_dir when it lies inside in_dir, are left out."""
    real_out = out_dir.resolve()
    clips: list[Path] = []
    ignored = 0
    for root, dirs, files in os.walk(in_dir):
        here = Path(root)
        keep = [d for d in dirs if not d.startswith(".") and (here / d).resolve() != real_out]
        dirs[:] = sorted(keep) if recursive else []
        for name in sorted(files):
            if name.startswith("."):
                continue
            if _is_clip(name, globs):
                clips.append(here / name)
            else:
                ignored += 1
    return sorted(clips, key=lambda p: p.relative_to(in_dir).parts), ignored


def _is_clip(name: str, globs: tuple[str, ...]) -> bool:
    if globs:
        return any(fnmatch.fnmatch(name.lower(), g.lower()) for g in globs)
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


def clip_for(in_dir: Path, out_dir: Path, source: Path, suffix: str | None) -> Clip:
    rel = source.relative_to(in_dir)
    if suffix is None:
        suffix = source.suffix if source.suffix.lower() in CONTAINERS else DEFAULT_SUFFIX
    output_rel = rel.with_suffix(suffix) if rel.suffix else rel.with_name(rel.name + suffix)
    return Clip(rel.as_posix(), source, out_dir / output_rel, output_rel.as_posix())


def check_encoding(jobs: list[Clip], recipe: Recipe, suffix_given: bool) -> None:
    """The encoder options must fit every output container, or no clip could be written."""
    for suffix in sorted({j.output.suffix.lower() for j in jobs}):
        try:
            resolve(Path("clip" + suffix), recipe.encode)
        except SettingsError as e:
            hint = "" if suffix_given else " (or choose the output container for all clips with --suffix)"
            raise SettingsError(f"{e}{hint}") from None


def plan(
    jobs: list[Clip], out_dir: Path, manifest: Manifest, fingerprint: str, force: bool, results: dict[str, ClipResult]
) -> list[Clip]:
    """Which jobs to run; the others get their result (skipped or failed) in `results` now."""
    todo: list[Clip] = []
    claimed: dict[str, str] = {}
    for job in jobs:
        if refused := _out_of_place(job, out_dir):
            results[job.rel] = ClipResult(job.rel, job.output_rel, "failed", error=refused)
            continue
        if job.output_rel in claimed:
            results[job.rel] = ClipResult(
                job.rel, job.output_rel, "failed",
                error=f"its output {job.output_rel} is also the output of {claimed[job.output_rel]}",
            )
            continue
        claimed[job.output_rel] = job.rel
        args = (job.rel, job.source, job.output, job.output_rel, fingerprint)
        if not force and manifest.is_current(*args):
            results[job.rel] = _skipped(job, manifest.clips[job.rel], "")
        elif not force and manifest.landed_while_running(*args):
            results[job.rel] = _adopt(job, manifest, fingerprint)
        elif job.rel not in manifest.clips and not force and (job.output.exists() or job.output.is_symlink()):
            results[job.rel] = ClipResult(
                job.rel, job.output_rel, "failed",
                error=f"{job.output_rel} already exists and no earlier batch made it; remove it or add --force",
            )
        else:
            todo.append(job)
    return todo


def _out_of_place(job: Clip, out_dir: Path) -> str | None:
    """Why the clip's output cannot go where the mirrored tree puts it, if it cannot:
    onto one of the batch's own files, or through a symbolic link to a folder, which
    would write outside OUT_DIR."""
    parts = Path(job.output_rel).parts
    if parts[0] in BATCH_FILES:
        return (
            f"its output would go into {parts[0]}, a name the batch keeps for its own file in OUT_DIR; "
            "rename that folder"
        )
    folder = out_dir
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            return f"{folder} is a symbolic link; the batch writes only inside OUT_DIR, so remove it or make it a folder"
    return None


def _skipped(job: Clip, entry: dict[str, Any], note: str) -> ClipResult:
    """Up to date: the result of the run that made the output, kept (manifests of older
    versions have no notes, warnings, worker or time)."""
    def strings(key: str) -> list[str]:
        value = entry.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []

    return ClipResult(
        job.rel, job.output_rel, "skipped",
        frames=entry.get("frames"), seconds=entry.get("seconds"), backend=entry.get("backend"),
        notes=[*strings("notes"), *([note] if note else [])], warnings=strings("warnings"),
        worker=entry.get("worker"), made=entry.get("made"),
    )


def _adopt(job: Clip, manifest: Manifest, fingerprint: str) -> ClipResult:
    """An interrupted run finished this clip but died before recording it: record it now."""
    from ..io.reader import open_video

    entry = manifest.clips[job.rel]
    frames = digest = None
    with contextlib.suppress(Exception):
        with open_video(job.output) as video:
            frames = video.info.frame_count
    with contextlib.suppress(OSError):
        digest = file_digest(job.source)
    manifest.mark_done(job.rel, {
        "input": {**entry["input"], "sha256": digest},
        "output": job.output_rel,
        "output_size": job.output.stat().st_size,
        "settings": fingerprint,
        "frames": frames,
        "seconds": None,
        "backend": None,
        "made": datetime.datetime.fromtimestamp(job.output.stat().st_mtime, datetime.UTC).isoformat(timespec="seconds"),
    })
    return _skipped(job, manifest.clips[job.rel], "finished by an earlier, interrupted run")
