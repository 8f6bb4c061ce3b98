"""The page's video jobs: a queue run one at a time on a worker thread, through
vidtoon.pipeline.run, with a Progress that records what the CLI's bar shows
(frames, fps, ETA) and that stops the run when the job is cancelled.

Cancelling raises Cancelled from the progress callback, inside the frame loop,
so the run unwinds as on Ctrl-C: the writer deletes its temporary file and no
output is left.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Job, Recipe
from ..errors import VidtoonError
from ..progress import printable
from .gpu import Gpu


class Cancelled(Exception):
    """The job was cancelled from the page."""


@dataclass
class WebJob:
    id: str
    upload: str
    name: str  # the upload's own file name, for the page
    source: Path
    output: Path
    recipe: Recipe
    state: str = "queued"  # queued, running, done, failed, cancelled
    done: int = 0
    total: int | None = None
    started: float | None = None
    seconds: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def fps(self) -> float | None:
        if self.started is None or not self.done:
            return None
        return self.done / ((self.seconds if self.seconds is not None else time.perf_counter() - self.started) or 1e-9)

    def as_json(self) -> dict:
        fps = self.fps
        eta = (self.total - self.done) / fps if fps and self.total and self.state == "running" else None
        return {"id": self.id, "upload": self.upload, "name": self.name, "state": self.state, "done": self.done,
                "total": self.total, "fps": fps, "seconds": self.seconds, "eta": max(0.0, eta) if eta is not None else None,
                "error": self.error, "notes": self.notes}


class JobProgress:
    """vidtoon.progress.Progress for one web job."""

    def __init__(self, job: WebJob) -> None:
        self.job = job

    def note(self, message: str) -> None:
        self.job.notes.append(printable(message))

    def start(self, description: str, total: int | None) -> None:
        self.job.total, self.job.started = total, time.perf_counter()

    def advance(self, frames: int) -> None:
        self.job.done += frames
        if self.job.cancel.is_set():
            raise Cancelled

    def stop(self) -> None:
        if self.job.started is not None:
            self.job.seconds = time.perf_counter() - self.job.started


class Queue:
    """Jobs in order; one worker thread runs them one at a time."""

    def __init__(self, message: Callable[[Exception | str, str], str], gpu: Gpu, backend: object = None) -> None:
        self.jobs: dict[str, WebJob] = {}
        self._waiting: deque[WebJob] = deque()
        self._message = message  # (error or warning, upload id) -> its line with the upload's own name
        self._backend = backend  # tests: a backend object instead of the recipe's
        self._gpu = gpu
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="vidtoon-web-jobs", daemon=True)
        self._thread.start()

    def submit(self, job: WebJob) -> None:
        with self._wake:
            self.jobs[job.id] = job
            self._waiting.append(job)
            self._wake.notify()

    def cancel(self, job_id: str) -> WebJob:
        with self._wake:
            job = self.jobs[job_id]
            job.cancel.set()
            if job.state == "queued":
                self._waiting.remove(job)
                job.state = "cancelled"
            return job

    def idle(self) -> bool:
        with self._wake:
            return not self._waiting and all(j.state != "running" for j in self.jobs.values())

    def close(self) -> None:
        """Cancel everything and wait for the running job to unwind (its temporary file deleted)."""
        with self._wake:
            self._closed = True
            for job in self.jobs.values():
                job.cancel.set()
            self._wake.notify()
        self._thread.join()

    def _work(self) -> None:
        from ..pipeline import run

        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                job.state = "running"
            try:
                with self._gpu.job(job.recipe):
                    result = run(Job(job.source, job.output), job.recipe, JobProgress(job), self._backend)
                job.notes.extend("warning: " + printable(self._message(w, job.upload)) for w in result.warnings)
                job.state = "done"
            except Cancelled:
                job.state = "cancelled"
            except VidtoonError as e:
                job.error, job.state = "error: " + printable(self._message(e, job.upload)), "failed"
            except Exception as e:  # noqa: BLE001 - a bug: said in the page, the server goes on
                job.error, job.state = f"unexpected error: {type(e).__name__}: {printable(str(e))}", "failed"
