"""What one batch worker does with a clip, and a pool of local worker processes.

A worker loads its backend once, then cartoonizes whole clips one at a time
(process_clip) and reports what happens as events. The local pool runs
workers as spawned processes; distributed.py runs the same process_clip in
Ray actors and emits the same events, so batch.py schedules both alike.

Workers ignore Ctrl-C (the parent decides) and stop on SIGTERM by unwinding,
so the writer deletes its temporary file. They also stop when their parent
dies, even by kill -9, so no orphan keeps writing into OUT_DIR.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import BackendUnavailable, VidtoonError, describe

PROGRESS_INTERVAL = 0.25  # seconds between progress events from one worker

BackendFactory = Callable[[Settings], Any]  # settings -> an object of the backend call shape


@dataclass(frozen=True)
class Job:
    """One clip to cartoonize: where it is and where its cartoon goes."""

    rel: str  # the clip's path relative to IN_DIR, '/'-separated: its name in tables and reports
    source: Path
    output: Path
    output_rel: str


@dataclass
class ClipResult:
    """What became of one clip, in this run or (status skipped) an earlier one."""

    rel: str
    output_rel: str
    status: str  # done | skipped | failed | interrupted
    frames: int | None = None
    seconds: float | None = None
    backend: str | None = None
    error: str | None = None  # one line, for failed clips
    attempts: int = 0  # how many times a worker was given the clip in this run
    worker: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what a damaged input lost (salvaged frames, ...)
    input: dict[str, Any] | None = None  # size, mtime_ns, sha256 of the input as processed
    output_size: int | None = None

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.frames and self.seconds else None


# Events, from any kind of pool to the scheduler.
@dataclass(frozen=True)
class Ready:
    worker: str  # a worker has loaded its backend and waits for clips


@dataclass(frozen=True)
class LoadFailed:
    error: BaseException  # a worker could not load its backend: the batch cannot run


@dataclass(frozen=True)
class Started:
    rel: str
    total: int | None  # frames, as the container estimates


@dataclass(frozen=True)
class Advanced:
    rel: str
    done: int  # frames done so far


@dataclass(frozen=True)
class Finished:
    result: ClipResult


@dataclass(frozen=True)
class Lost:
    rel: str
    why: str  # the worker died while it had this clip


def default_factory(settings: Settings) -> Any:
    from . import backends

    return backends.load(settings)[0]


class ClipProgress:
    """The pipeline's Progress protocol, turned into throttled events."""

    def __init__(self, rel: str, send: Callable[[object], None]) -> None:
        self.rel, self._send = rel, send
        self.notes: list[str] = []
        self._done = 0
        self._last = 0.0

    def note(self, message: str) -> None:
        if not message.startswith("backend:"):  # the same for every clip; the batch says it once
            self.notes.append(message)

    def start(self, description: str, total: int | None) -> None:
        self._send(Started(self.rel, total))
        self._last = time.monotonic()

    def advance(self, frames: int) -> None:
        self._done += frames
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._send(Advanced(self.rel, self._done))

    def stop(self) -> None:
        self._send(Advanced(self.rel, self._done))


def process_clip(job: Job, template: Settings, backend: Any, send: Callable[[object], None], worker: str) -> ClipResult:
    """Cartoonize one clip with an already loaded backend. Never raises for a bad
    clip: the error becomes one line in the result. Ctrl-C and SIGTERM still unwind."""
    from .manifest import file_digest, file_stamp
    from .pipeline import run

    settings = replace(template, input=job.source, output=job.output, overwrite=True)
    progress = ClipProgress(job.rel, send)
    result = ClipResult(job.rel, job.output_rel, "failed", worker=worker, notes=progress.notes)
    try:
        # Stamp and hash before reading for the cartoon: if the input changes meanwhile,
        # the manifest holds the older stamp and the next run redoes the clip.
        stamp = file_stamp(job.source)
        result.input = {**stamp, "sha256": file_digest(job.source)}
        job.output.parent.mkdir(parents=True, exist_ok=True)
        done = run(settings, progress, backend)
        result.output_size = job.output.stat().st_size
    except VidtoonError as e:
        result.error = _one_line(_without_prefix(str(e), job.source))
    except OSError as e:
        result.error = _one_line(f"{e.filename}: {describe(e)}" if e.filename else describe(e))
    except Exception as e:  # noqa: BLE001 - a bug on one clip must not stop the batch
        result.error = _one_line(f"unexpected error: {type(e).__name__}: {e}")
    else:
        result.status, result.frames, result.seconds, result.backend = "done", done.frames, done.seconds, done.backend
        result.warnings = [_one_line(_without_prefix(w, job.source)) for w in done.warnings]
    return result


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _without_prefix(message: str, source: Path) -> str:
    """Errors name the file they are about; the batch names the clip already."""
    prefix = f"{source}: "
    return message[len(prefix):] if message.startswith(prefix) else message


# ---------------------------------------------------------------- local worker processes


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    inbox: Any  # multiprocessing queue of Job | None
    label: str
    device: str | None  # its CUDA_VISIBLE_DEVICES, if any
    ready: bool = False
    job: Job | None = None


def worker_count(backend: str, jobs: int | None, cpus: int, gpus: int, clips: int) -> int:
    """How many workers: as asked, else one per GPU for diffusion (one on the CPU
    without a GPU) and one per CPU for classic (one clip's decode, filter and
    encode run mostly in turn; on 2 busy CPUs benchmarks/batch.py measured 2
    workers 1.1-1.45x faster than 1); never more than there are clips."""
    if jobs:
        count = jobs
    elif backend == "pix2pix":
        count = max(1, gpus)
    else:
        count = max(1, cpus)
    return max(1, min(count, clips))


def local_cpus() -> int:
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))  # what this process may use (containers, taskset)
    return os.cpu_count() or 1


def local_gpus() -> list[str]:
    """CUDA device ids a worker may be given, as CUDA_VISIBLE_DEVICES values."""
    try:
        import torch
    except ImportError:
        return []
    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(count)]
    return ids[:count]


class LocalPool:
    """Worker processes on this machine (spawned), each with its own backend.

    Diffusion workers get one GPU each through CUDA_VISIBLE_DEVICES (round robin
    when --jobs asks for more workers than there are GPUs)."""

    def __init__(self, jobs: int | None, factory: BackendFactory) -> None:
        self._jobs, self._factory = jobs, factory
        self._context = multiprocessing.get_context("spawn")  # no fork: torch and threads do not survive it
        self._events: Any = None
        self._slots: dict[str, _Slot] = {}
        self._count = 0
        self._gpus: list[str] = []

    def resolve(self, settings: Settings) -> tuple[Settings, str]:
        """`auto` becomes the backend this machine can run."""
        from .backends import choose

        name, why = choose(settings.backend)
        return replace(settings, backend=name), why

    def describe(self) -> str:
        if not self._count:
            return "no workers (nothing to do)"
        gpus = f" on GPU {', '.join(self._gpus)}" if self._gpus else ""
        return f"{self._count} local worker process{'es' if self._count != 1 else ''}{gpus}"

    def start(self, template: Settings, clips: int) -> None:
        self._template = template
        gpus = local_gpus() if template.backend == "pix2pix" else []
        self._count = worker_count(template.backend, self._jobs, local_cpus(), len(gpus), clips)
        self._gpus = sorted({gpus[i % len(gpus)] for i in range(self._count)}) if gpus else []
        self._events = self._context.Queue()
        for i in range(self._count):
            self._spawn(f"w{i + 1}", gpus[i % len(gpus)] if gpus else None)

    def _spawn(self, label: str, device: str | None) -> None:
        inbox = self._context.Queue()
        process = self._context.Process(
            target=_worker_main,
            args=(label, self._template, self._factory, inbox, self._events, os.getpid()),
            name=f"vidtoon-{label}",
            daemon=True,
        )
        with _environment(CUDA_VISIBLE_DEVICES=device), _sigint_ignored():
            process.start()
        self._slots[label] = _Slot(process, inbox, label, device)

    def idle(self) -> list[str]:
        return [s.label for s in self._slots.values() if s.ready and s.job is None]

    def submit(self, worker: str, job: Job) -> None:
        slot = self._slots[worker]
        slot.job = job
        slot.inbox.put(job)

    def poll(self, timeout: float) -> list[object]:
        events: list[object] = []
        with contextlib.suppress(queue.Empty):
            events.append(self._events.get(timeout=timeout))
            while True:
                events.append(self._events.get_nowait())
        out = []
        for label, event in events:
            slot = self._slots.get(label)
            if isinstance(event, LoadFailed):
                out.append(event)  # even when its worker has exited already
                continue
            if slot is None:
                continue  # from a worker already replaced
            if isinstance(event, Ready):
                slot.ready = True
            elif isinstance(event, Finished):
                slot.job = None
            out.append(event)
        out.extend(self._reap())
        return out

    def _reap(self) -> Iterator[object]:
        """Workers that died: their clip is lost (the scheduler may retry it), and
        a fresh worker takes the slot."""
        for slot in list(self._slots.values()):
            code = slot.process.exitcode
            if code is None:
                continue
            why = _exit_reason(code)
            del self._slots[slot.label]
            slot.inbox.cancel_join_thread()
            if not slot.ready:
                if code != 0:  # exit code 0: it could not load the backend and sent LoadFailed, which says why
                    yield LoadFailed(BackendUnavailable(f"a worker process died while loading the backend ({why})"))
                continue
            if slot.job is not None:
                yield Lost(slot.job.rel, f"its worker process died ({why})")
            self._spawn(slot.label, slot.device)

    def close(self, graceful: bool) -> None:
        """Stop every worker. graceful: after their current clip (there is none when
        the batch is done); else now, by SIGTERM, which deletes their temporary files."""
        for slot in self._slots.values():
            slot.inbox.cancel_join_thread()
            if slot.process.exitcode is not None:
                continue
            if graceful:
                slot.inbox.put(None)
            else:
                slot.process.terminate()
        deadline = time.monotonic() + 10
        for slot in self._slots.values():
            slot.process.join(max(0.1, deadline - time.monotonic()))
            if slot.process.exitcode is None:
                slot.process.kill()
                slot.process.join(5)
        if self._events is not None:
            self._events.cancel_join_thread()
            self._events.close()


def _worker_main(label: str, template: Settings, factory: BackendFactory, inbox: Any, events: Any, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole process group; the parent decides
    signal.signal(signal.SIGTERM, _exit_now)
    _die_with_parent(parent)

    def send(event: object) -> None:
        events.put((label, event))

    try:
        try:
            backend = factory(template)
        except Exception as e:  # noqa: BLE001 - reported to the parent, which stops the batch
            send(LoadFailed(picklable_error(e)))
            return
        send(Ready(label))
        while (job := inbox.get()) is not None:
            send(Finished(process_clip(job, template, backend, send, label)))
    except (SystemExit, KeyboardInterrupt):
        # Stopped: the parent has stopped reading, so do not wait at exit to hand over
        # queued progress events (normal exits do wait, so LoadFailed always arrives).
        events.cancel_join_thread()


def _exit_now(signum: int, frame: object) -> None:
    sys.exit(128 + signum)  # unwinds through the writer, which deletes its temporary file


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker when its parent dies. Linux: the kernel does it (prctl);
    elsewhere a thread watches the parent pid."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl failed")
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def picklable_error(error: BaseException) -> BaseException:
    """The error itself when it survives pickling (vidtoon's do), else a plain stand-in."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(error).__name__}: {error}")


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """A child started while SIGINT is ignored is born ignoring it (Python keeps an
    inherited SIG_IGN), so a Ctrl-C that reaches it while it is still importing
    cannot print a traceback; the parent handles Ctrl-C for all."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set environment variables (None: leave alone) around a process start."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is not None:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
