"""Cartoonize every clip in a folder tree into a mirrored tree, resumably.

    from vidtoon.batch import BatchOptions, run_batch
    result = run_batch(BatchOptions(Path("clips"), Path("cartoons"), recursive=True), recipe)

run_batch, in steps:
1. check the folders and find the clips (by suffix, or --glob);
2. resolve the backend where the workers run, fingerprint the recipe;
3. plan: skip clips the manifest shows finished from the same input with the
   same recipe, refuse outputs that vidtoon did not make (unless --force) (plan.py);
4. hand the rest, one whole clip at a time, to a pool of workers (local
   processes, or Ray actors with --ray) that each load the backend once;
   record every finished clip in the manifest at once; retry a clip whose
   worker died; a bad clip fails alone;
5. write OUT_DIR/report.json (and report.html).

Nothing here prints: a BatchObserver hears about every step (the CLI's live
table is one). Only one batch at a time may write into an OUT_DIR (a lock).
"""

from __future__ import annotations

import datetime
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .. import backends
from ..config import Recipe
from ..errors import InputError, OutputError, SettingsError
from ..io.files import remove_temporaries
from ..io.formats import CONTAINERS
from .manifest import Manifest, file_stamp, recipe_fingerprint
from .plan import BATCH_FILES, REPORT_NAME, check_dirs, check_encoding, clip_for, exclusive, find_clips, make_out_dir, plan
from .signals import first_signal_only
from .watchdog import Watchdog
from .workers import (
    Advanced,
    BackendFactory,
    Clip,
    ClipResult,
    Finished,
    LoadFailed,
    Lost,
    Ready,
    Started,
    default_factory,
)

POLL_SECONDS = 0.1
WAIT_NOTE_SECONDS = 60  # say so when no worker is ready after this long


@dataclass(frozen=True)
class BatchOptions:
    """How to walk IN_DIR and where to run; the cartoon itself is in the Recipe."""

    in_dir: Path
    out_dir: Path
    recursive: bool = False  # descend into subfolders (the tree is mirrored)
    globs: tuple[str, ...] = ()  # file-name patterns; empty: the usual video suffixes
    suffix: str | None = None  # output suffix; None: the input's when vidtoon writes it, else .mp4
    jobs: int | None = None  # workers; None: one per GPU (pix2pix), one per CPU (classic)
    force: bool = False  # redo every clip, and replace outputs vidtoon did not record
    ray: str | None = None  # None: local processes; "local": a new local Ray; else a Ray address ("auto")
    retries: int = 1  # more tries for a clip whose worker died (a bad clip is not retried)
    report_html: bool = False  # also write report.html with a thumbnail pair per clip
    clip_timeout: float | None = None  # seconds a clip may take; None: from its frames (watchdog.py); 0: no limit

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_dir", Path(self.in_dir))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.jobs is not None and self.jobs < 1:
            raise SettingsError(f"--jobs must be at least 1, got {self.jobs}")
        if self.clip_timeout is not None and not self.clip_timeout >= 0:
            raise SettingsError(f"--clip-timeout must be 0 (no limit) or more seconds, got {self.clip_timeout:g}")
        if self.suffix is not None:
            suffix = self.suffix if self.suffix.startswith(".") else f".{self.suffix}"
            if suffix.lower() not in CONTAINERS:
                known = ", ".join(sorted(CONTAINERS))
                raise SettingsError(f"--suffix {self.suffix!r} is not a container vidtoon writes; use one of {known}")
            object.__setattr__(self, "suffix", suffix)


@dataclass
class BatchResult:
    results: list[ClipResult]  # one per clip, in path order
    seconds: float
    report: Path
    html: Path | None = None
    workers: str = ""  # what ran the clips, in words
    backend: str = ""
    ignored: int = 0  # files skipped because they are not clips
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[ClipResult]:
        return [r for r in self.results if r.status == "failed"]


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch; carries what was done (kept) before it."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__()
        self.result = result


class BatchObserver(Protocol):
    def begin(self, clips: list[str], known: list[ClipResult], backend: str) -> None: ...

    def clip_started(self, rel: str, worker: str) -> None: ...

    def clip_progress(self, rel: str, done: int | None, total: int | None) -> None: ...

    def clip_finished(self, result: ClipResult) -> None: ...

    def note(self, message: str) -> None: ...

    def tick(self) -> None: ...

    def end(self) -> None: ...


class NoBatchObserver:
    """Hears everything, says nothing."""

    def begin(self, clips: list[str], known: list[ClipResult], backend: str) -> None:
        pass

    def clip_started(self, rel: str, worker: str) -> None:
        pass

    def clip_progress(self, rel: str, done: int | None, total: int | None) -> None:
        pass

    def clip_finished(self, result: ClipResult) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def tick(self) -> None:
        pass

    def end(self) -> None:
        pass


class Pool(Protocol):
    """Workers that load a backend once and cartoonize whole clips (local.LocalPool, cluster.RayPool)."""

    def resolve(self, recipe: Recipe) -> tuple[Recipe, str]: ...

    def start(self, template: Recipe, clips: int) -> None: ...

    def describe(self) -> str: ...

    def idle(self) -> list[str]: ...

    def submit(self, worker: str, job: Clip) -> None: ...

    def poll(self, timeout: float) -> list[object]: ...

    def abandon(self, worker: str) -> None: ...

    def close(self, graceful: bool) -> None: ...


def run_batch(
    options: BatchOptions,
    recipe: Recipe,
    observer: BatchObserver | None = None,
    factory: BackendFactory | None = None,
) -> BatchResult:
    """Cartoonize every clip of options.in_dir into options.out_dir (see the module doc)
    as `recipe` says.

    `factory(recipe) -> backend` builds each worker's backend (default: backends.load);
    it must be picklable (a module-level function). Raises VidtoonError when the
    batch cannot start; a clip that fails is in the result instead. Only the first
    Ctrl-C/SIGTERM/SIGHUP counts while it runs (signals.py): the stop it starts always
    ends, with the report written and no worker left."""
    with first_signal_only():
        return _run_batch(options, recipe, observer or NoBatchObserver(), factory or default_factory)


def _run_batch(options: BatchOptions, recipe: Recipe, observer: BatchObserver, factory: BackendFactory) -> BatchResult:
    started = time.perf_counter()
    # 1. The folders and the clips in them.
    in_dir, out_dir = check_dirs(options)
    sources, ignored = find_clips(in_dir, out_dir, options.recursive, options.globs)
    if not sources:
        what = " or ".join(options.globs) if options.globs else "video files"
        raise InputError(f"{in_dir}: no clips found ({what}{'' if options.recursive else ', add --recursive for subfolders'})")
    jobs = [clip_for(in_dir, out_dir, source, options.suffix) for source in sources]
    check_encoding(jobs, recipe, options.suffix is not None)
    make_out_dir(out_dir)
    with exclusive(out_dir):
        for name in BATCH_FILES:
            remove_temporaries(out_dir / name)  # left by a run killed mid-write
        pool = _make_pool(options, factory)
        results: dict[str, ClipResult] = {}
        inflight: dict[str, Clip] = {}
        template = recipe
        planned = False
        try:
            # 2. The backend, resolved where the clips will run, and the recipe's fingerprint.
            template, why = pool.resolve(recipe)
            fingerprint = recipe_fingerprint(template)
            # 3. What is left to do.
            manifest = Manifest.load(out_dir)
            todo = plan(jobs, out_dir, manifest, fingerprint, options.force, results)
            manifest.save()
            planned = True
            for job in todo:
                remove_temporaries(job.output)
            observer.note(f"backend: {template.backend} ({why})")
            observer.begin([j.rel for j in jobs], [results[j.rel] for j in jobs if j.rel in results], template.backend)
            # 4. The work.
            if todo:
                pool.start(template, len(todo))
                observer.note(f"running on {pool.describe()}")
                watchdog = Watchdog(backends.spec(template.backend).gpu, options.clip_timeout)
                _schedule(pool, todo, manifest, fingerprint, options.retries, observer, results, inflight, watchdog)
            pool.close(graceful=True)  # in the try: a Ctrl-C while the workers finish still stops them and reports
        except BaseException as error:
            _stop(pool, inflight, observer)
            if planned:  # Ctrl-C, SIGTERM, a full disk, a worker that could not load: report what was kept
                try:
                    result = _finish(options, jobs, results, started, pool, template, ignored, interrupted=True)
                except OutputError:  # (a full disk): the first error is the one to tell
                    raise error from None
                if isinstance(error, KeyboardInterrupt):
                    raise BatchInterrupted(result) from error
            raise
        observer.end()
        # 5. The report.
        return _finish(options, jobs, results, started, pool, template, ignored, interrupted=False)


def _stop(pool: Pool, inflight: dict[str, Clip], observer: BatchObserver) -> None:
    """Stop the workers now; clips in flight leave no temporary files behind."""
    try:
        pool.close(graceful=False)
    finally:
        for job in inflight.values():
            remove_temporaries(job.output)
        observer.end()


def _schedule(
    pool: Pool,
    todo: list[Clip],
    manifest: Manifest,
    fingerprint: str,
    retries: int,
    observer: BatchObserver,
    results: dict[str, ClipResult],
    inflight: dict[str, Clip],
    watchdog: Watchdog,
) -> None:
    """Keep every ready worker busy with one clip until all are done; stop a worker
    whose clip is over its time limit (watchdog.py)."""
    waiting = deque(todo)
    attempts: Counter[str] = Counter()
    since, no_wait_note = time.monotonic(), False

    def record(result: ClipResult) -> None:
        results[result.rel] = result  # first, so that the report is never behind the manifest
        if result.status == "done":
            result.made = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            manifest.mark_done(result.rel, {
                "input": result.input,
                "output": result.output_rel,
                "output_size": result.output_size,
                "settings": fingerprint,
                "frames": result.frames,
                "seconds": result.seconds,
                "backend": result.backend,
                # what a rerun that skips the clip reports of it
                "made": result.made,
                "worker": result.worker,
                "notes": result.notes,
                "warnings": result.warnings,
            })
        else:
            manifest.mark_failed(result.rel, result.error or "failed")
        manifest.save()  # at once: a kill -9 from here on loses nothing about this clip
        observer.clip_finished(result)

    while waiting or inflight:
        for worker in pool.idle():
            if not waiting:
                break
            job = waiting.popleft()
            attempts[job.rel] += 1
            try:
                stamp = file_stamp(job.source)
            except OSError as e:
                record(ClipResult(job.rel, job.output_rel, "failed", error=f"cannot be read ({e.strerror})"))
                continue
            manifest.mark_running(job.rel, stamp, job.output_rel, fingerprint, time.time_ns())
            manifest.save()
            inflight[job.rel] = job
            pool.submit(worker, job)
            watchdog.began(job.rel, worker)
            observer.clip_started(job.rel, worker)
        for event in pool.poll(POLL_SECONDS):
            if isinstance(event, LoadFailed):
                raise event.error
            if isinstance(event, Started) and event.rel in inflight:
                watchdog.counted(event.rel, event.total)
                observer.clip_progress(event.rel, 0, event.total)
            elif isinstance(event, Advanced) and event.rel in inflight:
                observer.clip_progress(event.rel, event.done, None)
            elif isinstance(event, Finished) and event.result.rel in inflight:  # (not a clip given up as lost)
                result = event.result
                job = inflight.pop(result.rel)
                watchdog.ended(job.rel)
                result.attempts = attempts[result.rel]
                if result.status == "done" and not _visible(job, result):
                    result.status = "failed"
                    result.error = (
                        f"the worker wrote {job.output_rel} but it is not there from here: "
                        "OUT_DIR must be on a filesystem that every node shares"
                    )
                record(result)
            elif isinstance(event, Lost) and event.rel in inflight:
                job = inflight.pop(event.rel)
                watchdog.ended(job.rel)
                remove_temporaries(job.output)  # its worker is gone and cannot clean up
                if attempts[job.rel] <= retries:
                    observer.note(f"{job.rel}: {event.why}; trying again")
                    waiting.appendleft(job)
                else:
                    error = f"{event.why}, {attempts[job.rel]} times"
                    record(ClipResult(job.rel, job.output_rel, "failed", error=error, attempts=attempts[job.rel]))
            elif isinstance(event, Ready):
                no_wait_note = True  # pool.idle() lists it from now on
        for rel, worker, limit in watchdog.overdue():
            job = inflight.pop(rel)
            pool.abandon(worker)  # returns once the worker is gone, so the clean-up comes after its last write
            remove_temporaries(job.output)
            error = f"stopped after {limit:g} s, its time limit (--clip-timeout); its worker was replaced"
            record(ClipResult(rel, job.output_rel, "failed", error=error, attempts=attempts[rel]))
        if not no_wait_note and time.monotonic() - since > WAIT_NOTE_SECONDS:
            observer.note("still waiting for a worker to load the backend (on Ray: for the cluster to place one)")
            no_wait_note = True
        observer.tick()


def _visible(job: Clip, result: ClipResult) -> bool:
    try:
        return job.output.stat().st_size == result.output_size
    except OSError:
        return False


def _finish(
    options: BatchOptions,
    jobs: list[Clip],
    results: dict[str, ClipResult],
    started: float,
    pool: Pool,
    template: Recipe,
    ignored: int,
    interrupted: bool,
) -> BatchResult:
    from .report import write_html, write_report

    ordered = [
        results.get(j.rel) or ClipResult(j.rel, j.output_rel, "interrupted", error="stopped before it finished")
        for j in jobs
    ]
    batch = BatchResult(
        results=ordered,
        seconds=time.perf_counter() - started,
        report=options.out_dir / REPORT_NAME,
        workers=pool.describe(),
        backend=template.backend,
        ignored=ignored,
        interrupted=interrupted,
    )
    write_report(batch, options, template)
    if options.report_html and not interrupted:
        batch.html = write_html(batch, options)
    return batch


def _make_pool(options: BatchOptions, factory: BackendFactory) -> Pool:
    if options.ray is not None:
        from .cluster import RayPool

        return RayPool(options.ray, options.jobs, factory)
    from .local import LocalPool

    return LocalPool(options.jobs, factory)
