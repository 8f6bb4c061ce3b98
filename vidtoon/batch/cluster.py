"""Many clips over a Ray cluster: the same batch, with Ray actors as the workers.

    vidtoon batch clips -o cartoons --ray            # a new local Ray instance
    vidtoon batch clips -o cartoons --ray auto       # the cluster this machine has joined

Each actor (ClipWorker) loads the backend once and cartoonizes whole clips with
workers.process_clip, writing straight into OUT_DIR, so IN_DIR and OUT_DIR must
be on a filesystem every node shares (the driver checks each output it is told
about). Diffusion actors take one GPU each; classic actors one CPU each; the
driver keeps each actor busy with one clip at a time and hands a clip whose
actor died to another (run.py decides, as for local workers). Progress comes
back through a small inbox actor. `ray` is imported only here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

from .. import backends
from ..config import Recipe
from ..errors import BackendUnavailable
from .local import worker_count
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
    picklable_error,
    process_clip,
)

CPUS_PER_ACTOR = 1  # Ray CPUs each actor without a GPU reserves (it still uses what threads it likes)
STOP_WAIT = 10.0  # seconds to wait for killed actors to go before cleaning up after them


class ClipWorker:
    """One Ray actor: a backend loaded once, then whole clips, one at a time."""

    def __init__(self, template: Recipe, factory: BackendFactory, inbox: Any, label: str) -> None:
        import ray

        self._template, self._factory, self._inbox = template, factory, inbox
        self._label = f"{label}@{ray.util.get_node_ip_address()}"
        self._backend = None

    def load(self) -> BaseException | None:
        """Load the backend; return the error (not raise it) so the driver can show it plainly."""
        try:
            self._backend = self._factory(self._template)
        except Exception as e:  # noqa: BLE001
            return picklable_error(e)
        return None

    def process(self, clip: Clip) -> ClipResult:
        return process_clip(clip, self._template, self._backend, self._inbox.push.remote, self._label)


class Inbox:
    """Progress events from every actor, collected until the driver drains them."""

    def __init__(self) -> None:
        self._events: list[object] = []

    def push(self, event: object) -> None:
        self._events.append(event)

    def drain(self) -> list[object]:
        events, self._events = self._events, []
        return events


class RayPool:
    """Ray actors as batch workers (see the module doc). address: "local" starts a
    private local instance (shut down afterwards); anything else is given to
    ray.init (e.g. "auto", "ray://head:10001"). Inside a driver that has already
    called ray.init, that connection is used as it is."""

    def __init__(self, address: str, jobs: int | None, factory: BackendFactory) -> None:
        self._address, self._jobs, self._factory = address, jobs, factory
        self._ray: Any = None
        self._owned = False  # did we call ray.init (so we call ray.shutdown)?
        self._inbox: Any = None
        self._actors: dict[str, Any] = {}
        self._loading: dict[Any, str] = {}  # load() ref -> actor label
        self._running: dict[Any, tuple[str, Clip]] = {}  # process() ref -> (actor label, clip)
        self._ready: set[str] = set()
        self._busy: set[str] = set()
        self._count = 0
        self._next = 0
        self._resources: dict[str, float] = {}

    # -- connecting

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise BackendUnavailable("--ray needs Ray: pip install 'vidtoon[ray]'") from None
        if not ray.is_initialized():
            keep = signal.getsignal(signal.SIGTERM)  # ray.init replaces it; the CLI's unwinds cleanly
            quiet = _quiet_logger("ray") if self._address == "local" else contextlib.nullcontext()
            try:
                with quiet:
                    ray.init(
                        address=self._address,
                        include_dashboard=False,
                        log_to_driver=False,  # worker output would tear the live table; errors come back as results
                        configure_logging=False,
                        runtime_env=_this_vidtoon(),
                    )
            except Exception as e:  # noqa: BLE001 - Ray raises many kinds here; all mean "no cluster"
                raise BackendUnavailable(f"cannot reach a Ray cluster at {self._address!r} ({_short(e)})") from None
            finally:
                signal.signal(signal.SIGTERM, keep)
            self._owned = True
        self._ray = ray
        self._resources = ray.cluster_resources()
        return ray

    def resolve(self, recipe: Recipe) -> tuple[Recipe, str]:
        """`auto` is decided on a GPU node when the cluster has one (it checks its own
        CUDA and the recipe's weights there); without one, by the backends that
        need no GPU."""
        if recipe.backend != "auto":
            return recipe, "as asked"
        ray = self._connect()
        if self._resources.get("GPU", 0) < 1:
            name = next(s.name for s in backends.specs() if not s.gpu)
            return recipe.with_backend(name), "auto: the Ray cluster has no GPU"
        name, why = ray.get(ray.remote(num_gpus=1)(backends.choose).remote(recipe))
        return recipe.with_backend(name), why

    def describe(self) -> str:
        if self._ray is None:
            return "no Ray workers (nothing to do)"
        cpus, gpus = int(self._resources.get("CPU", 0)), int(self._resources.get("GPU", 0))
        nodes = sum(1 for key in self._resources if key.startswith("node:") and key != "node:__internal_head__")
        cluster = f"a Ray cluster of {nodes} node{'s' if nodes != 1 else ''}, {cpus} CPUs, {gpus} GPUs"
        if not self._count:
            return cluster
        return f"{self._count} Ray actor{'s' if self._count != 1 else ''} on {cluster}"

    # -- the pool

    def start(self, template: Recipe, clips: int) -> None:
        ray = self._connect()
        self._template = template
        gpus = int(self._resources.get("GPU", 0))
        cpus = int(self._resources.get("CPU", 0))
        gpu = backends.spec(template.backend).gpu
        self._count = worker_count(gpu, self._jobs, cpus, gpus, clips)
        if gpu and gpus:
            self._options = {"num_gpus": 1}
        else:
            self._options = {"num_cpus": CPUS_PER_ACTOR}
        self._inbox = ray.remote(num_cpus=0)(Inbox).remote()
        self._actor_class = ray.remote(ClipWorker)
        for _ in range(self._count):
            self._add_actor()

    def _add_actor(self) -> None:
        self._next += 1
        label = f"r{self._next}"
        actor = self._actor_class.options(**self._options).remote(self._template, self._factory, self._inbox, label)
        self._actors[label] = actor
        self._loading[actor.load.remote()] = label

    def idle(self) -> list[str]:
        return sorted(self._ready - self._busy)

    def submit(self, worker: str, job: Clip) -> None:
        self._busy.add(worker)
        # Absolute: an actor works in a folder of Ray's, not in the driver's current one.
        there = dataclasses.replace(job, source=job.source.absolute(), output=job.output.absolute())
        self._running[self._actors[worker].process.remote(there)] = (worker, job)

    def poll(self, timeout: float) -> list[object]:
        ray = self._ray
        events: list[object] = []
        refs = [*self._loading, *self._running]
        if refs:
            done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
            if done:
                done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        else:
            time.sleep(timeout)
            done = []
        # Progress first, so that it never arrives after its clip's result.
        try:
            progress = ray.get(self._inbox.drain.remote())
        except ray.exceptions.RayError as e:  # without its inbox the batch cannot go on
            raise BackendUnavailable(f"the Ray cluster failed ({_short(e)})") from None
        events.extend(e for e in progress if isinstance(e, (Started, Advanced)))
        for ref in done:
            if ref in self._loading:
                events.append(self._loaded(ref))
            else:
                events.append(self._processed(ref))
        return events

    def _loaded(self, ref: Any) -> object:
        ray = self._ray
        label = self._loading.pop(ref)
        try:
            error = ray.get(ref)
        except ray.exceptions.RayError as e:
            error = BackendUnavailable(f"a Ray worker failed while loading the backend ({_short(e)})")
        if error is not None:
            return LoadFailed(error)
        self._ready.add(label)
        return Ready(label)

    def _processed(self, ref: Any) -> object:
        ray = self._ray
        label, job = self._running.pop(ref)
        self._busy.discard(label)
        try:
            return Finished(ray.get(ref))
        except ray.exceptions.RayError as e:
            # The actor (or its node) is gone, or was interrupted: replace it; the scheduler
            # decides about the clip (process_clip itself never raises for a bad clip).
            self._ready.discard(label)
            with contextlib.suppress(Exception):
                ray.kill(self._actors.pop(label), no_restart=True)
            self._add_actor()
            return Lost(job.rel, f"its Ray worker failed ({_short(e)})")

    def abandon(self, worker: str) -> None:
        """Kill an actor stuck on its clip and start another in its place; return once
        it is gone (or after STOP_WAIT), so that the scheduler's clean-up comes last."""
        ray = self._ray
        refs = [ref for ref, (label, _) in self._running.items() if label == worker]
        for ref in refs:
            del self._running[ref]
        self._busy.discard(worker)
        self._ready.discard(worker)
        with contextlib.suppress(Exception):
            ray.kill(self._actors.pop(worker), no_restart=True)
        with contextlib.suppress(Exception):
            ray.wait(refs, num_returns=len(refs), timeout=STOP_WAIT)
        self._add_actor()

    def close(self, graceful: bool) -> None:
        ray = self._ray
        if ray is None:
            return
        try:
            for actor in self._actors.values():
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
            if self._running and not graceful:
                # Killed actors leave their temporary file; wait until they are really gone
                # so that the scheduler's clean-up comes after their last write.
                with contextlib.suppress(Exception):
                    ray.wait(list(self._running), num_returns=len(self._running), timeout=STOP_WAIT)
            if self._inbox is not None:
                with contextlib.suppress(Exception):
                    ray.kill(self._inbox, no_restart=True)
        finally:
            self._actors.clear()
            if self._owned:
                ray.shutdown()
                self._owned = False


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Ray's start-up warnings (e.g. that its private instance uses a token) would
    only clutter the batch's display; errors still show."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _this_vidtoon() -> dict[str, Any] | None:
    """A runtime_env under which Ray workers import the vidtoon this driver runs.
    Ray puts the driver's current folder first on the workers' path, so a `vidtoon/`
    folder there (the parent of a checkout) would import as an empty namespace
    package; a regular package on the path beats a namespace one, so the folder
    that holds this vidtoon goes on it too (an editable install is not on the
    path otherwise), with the driver's PYTHONPATH after it. Only then: any other
    runtime_env (a Ray job's, the cluster's PYTHONPATH) is left alone."""
    import vidtoon

    home = os.path.dirname(os.path.dirname(os.path.abspath(vidtoon.__file__)))
    here = os.path.abspath(os.curdir)
    if here == home or not os.path.exists(os.path.join(here, "vidtoon")):
        return None
    path = os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_MARKERS = re.compile(r"[\s^~]*")  # the lines that underline a traceback's code


def _short(error: BaseException) -> str:
    """Ray's errors are a traceback fragment, in colour; keep the last line that says something."""
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines()]
    meaningful = [line for line in lines if not _MARKERS.fullmatch(line)]
    return meaningful[-1][:200] if meaningful else type(error).__name__
