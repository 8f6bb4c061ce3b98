"""Batch workers as processes on this machine (spawned), each with its own backend.

Workers ignore Ctrl-C and SIGHUP (the parent decides) and stop on SIGTERM by
unwinding, so the writer deletes its temporary file; they are born with those
signals blocked, so none can reach them half-started. They also stop when their
parent dies, even by kill -9, so no orphan keeps writing into OUT_DIR. Every wait
for a worker is bounded: close() ends with SIGKILL.
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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import backends
from ..config import Recipe
from ..errors import BackendUnavailable
from .signals import stop_signals_blocked
from .workers import BackendFactory, Clip, Finished, LoadFailed, Lost, Ready, picklable_error, process_clip

STOP_SECONDS = 10  # how long close() waits for workers to finish or unwind before SIGKILL
ABANDON_SECONDS = 2  # the same for a worker the watchdog stops (unwinding takes milliseconds)
WAKE_SECONDS = 0.2  # an idle worker looks at its signals this often


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    inbox: Any  # multiprocessing queue of Clip | None
    label: str
    device: str | None  # its CUDA_VISIBLE_DEVICES, if any
    ready: bool = False
    job: Clip | None = None


def worker_count(gpu: bool, jobs: int | None, cpus: int, gpus: int, clips: int) -> int:
    """How many workers: as asked, else one per GPU for a backend that wants one
    (one on the CPU without a GPU) and one per CPU for others (classic: one clip's decode, filter and
    encode run mostly in turn; on 2 busy CPUs benchmarks/batch.py measured 2
    workers 1.1-1.45x faster than 1); never more than there are clips."""
    if jobs:
        count = jobs
    elif gpu:
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

    Workers of a backend that wants a GPU get one each through CUDA_VISIBLE_DEVICES (round robin
    when --jobs asks for more workers than there are GPUs)."""

    def __init__(self, jobs: int | None, factory: BackendFactory) -> None:
        self._jobs, self._factory = jobs, factory
        self._context = multiprocessing.get_context("spawn")  # no fork: torch and threads do not survive it
        self._events: Any = None
        self._slots: dict[str, _Slot] = {}
        self._count = 0
        self._gpus: list[str] = []

    def resolve(self, recipe: Recipe) -> tuple[Recipe, str]:
        """`auto` becomes the backend this machine can run (with the recipe's own --model)."""
        return backends.resolve(recipe)

    def describe(self) -> str:
        if not self._count:
            return "no workers (nothing to do)"
        gpus = f" on GPU {', '.join(self._gpus)}" if self._gpus else ""
        return f"{self._count} local worker process{'es' if self._count != 1 else ''}{gpus}"

    def start(self, template: Recipe, clips: int) -> None:
        self._template = template
        gpu = backends.spec(template.backend).gpu
        gpus = local_gpus() if gpu else []
        self._count = worker_count(gpu, self._jobs, local_cpus(), len(gpus), clips)
        self._gpus = sorted({gpus[i % len(gpus)] for i in range(self._count)}) if gpus else []
        with stop_signals_blocked():  # the queue starts multiprocessing's resource tracker
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
        self._slots[label] = _Slot(process, inbox, label, device)  # first: close() stops it whatever happens next
        with _environment(CUDA_VISIBLE_DEVICES=device), stop_signals_blocked():
            process.start()

    def idle(self) -> list[str]:
        return [s.label for s in self._slots.values() if s.ready and s.job is None]

    def submit(self, worker: str, job: Clip) -> None:
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
            if code is None:  # running (or not started yet)
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

    def abandon(self, worker: str) -> None:
        """Stop a worker stuck on its clip, by SIGTERM (its temporary file goes), else
        SIGKILL; the next poll gives its slot a fresh worker."""
        slot = self._slots[worker]
        slot.job = None
        slot.process.terminate()
        _stop_process(slot.process, ABANDON_SECONDS)

    def close(self, graceful: bool) -> None:
        """Stop every worker. graceful: after their current clip (there is none when
        the batch is done); else now, by SIGTERM, which deletes their temporary files."""
        slots = [s for s in self._slots.values() if s.process.pid is not None]
        for slot in slots:
            slot.inbox.cancel_join_thread()
            if slot.process.exitcode is not None:
                continue
            if graceful:
                slot.inbox.put(None)
            else:
                slot.process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for slot in slots:
            _stop_process(slot.process, max(0.1, deadline - time.monotonic()))
        if self._events is not None:
            self._events.cancel_join_thread()
            self._events.close()


def _stop_process(process: multiprocessing.process.BaseProcess, wait: float) -> None:
    """Wait up to `wait` seconds for it to end, then SIGKILL it (which cannot be
    ignored) and reap it, so that multiprocessing's own (unbounded) join at exit
    finds nothing to wait for."""
    process.join(wait)
    if process.exitcode is None:
        process.kill()
        process.join(5)


def _worker_main(label: str, template: Recipe, factory: BackendFactory, inbox: Any, events: Any, parent: int) -> None:
    # Ctrl-C and a hang-up go to the whole process group; the parent decides for all.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_now)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # born blocked (LocalPool._spawn)
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
        while (job := _next_job(inbox)) is not None:
            send(Finished(process_clip(job, template, backend, send, label)))
    except (SystemExit, KeyboardInterrupt):
        # Stopped: the parent has stopped reading, so do not wait at exit to hand over
        # queued progress events (normal exits do wait, so LoadFailed always arrives).
        events.cancel_join_thread()


def _next_job(inbox: Any) -> Clip | None:
    """The next clip (None: stop), polled. The kernel may hand a SIGTERM to another
    thread (the queue's feeder): its Python handler then runs only once the main
    thread runs again, which a blocking get() would never let it do."""
    while True:
        with contextlib.suppress(queue.Empty):
            return inbox.get(timeout=WAKE_SECONDS)


def _exit_now(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the clean-up short
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


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


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
