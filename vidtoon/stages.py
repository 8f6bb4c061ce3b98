"""Three stages that overlap: decode on one thread, compute on the caller's, encode on another.

    staged(produce, compute, consume, depth=2)

produce() yields items (batches of decoded frames) on the decode thread;
compute(item) runs on the calling thread (the backend: torch, CUDA and Ctrl-C
are simplest there) and returns what consume(result) takes on the encode thread.
finish() runs last on the encode thread (flush the encoder, finish the audio),
so every PyAV container is used from one thread at a time.

The stages are joined by queues of at most `depth` items each, so a fast
decoder waits for a slow backend (backpressure) and memory stays bounded for any
length. Items keep their order: one producer, one consumer per queue.

The first error in any stage (an exception, or KeyboardInterrupt/SystemExit on
the calling thread) stops all three: the threads are told to stop, joined, and
the original exception is raised again on the calling thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

A = TypeVar("A")
B = TypeVar("B")

POLL = 0.05  # seconds a blocked stage waits before looking at the stop flag again

_END = object()  # no more items


class _Stopped(Exception):
    """This stage gives up because another one failed."""


class _Link(Generic[A]):
    """A bounded queue whose put and get give up once `stop` is set."""

    def __init__(self, depth: int, stop: threading.Event) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = stop

    def put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL)
                return
            except queue.Full:
                pass
        raise _Stopped

    def get(self) -> object:
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=POLL)
            except queue.Empty:
                pass
        raise _Stopped


def staged(
    produce: Callable[[], Iterator[A]],
    compute: Callable[[A], B],
    consume: Callable[[B], None],
    finish: Callable[[], None] = lambda: None,
    depth: int = 2,
) -> None:
    """Run produce -> compute -> consume (-> finish) as three overlapping stages; see the module docstring."""
    stop = threading.Event()
    errors: list[BaseException] = []  # the first one is the cause; later ones are its echoes
    decoded: _Link[A] = _Link(depth, stop)
    computed: _Link[B] = _Link(depth, stop)

    def fail(error: BaseException) -> None:
        errors.append(error)
        stop.set()

    def decode() -> None:
        items = produce()
        try:
            for item in items:
                decoded.put(item)
            decoded.put(_END)
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001 - raised again on the calling thread
            fail(e)
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator's `finally` runs here, on its own thread
                close()

    def encode() -> None:
        try:
            while (item := computed.get()) is not _END:
                consume(item)
            finish()
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001 - raised again on the calling thread
            fail(e)

    threads = [
        threading.Thread(target=decode, name="vidtoon-decode", daemon=True),
        threading.Thread(target=encode, name="vidtoon-encode", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        while (item := decoded.get()) is not _END:
            computed.put(compute(item))
        computed.put(_END)
        threads[1].join()  # the encoder finishes; an error there is raised below
    except _Stopped:
        pass
    except BaseException as e:  # noqa: BLE001 - raised again below, after the joins
        fail(e)
    finally:
        for thread in threads:
            late = _join(thread)
            if late is not None and not errors:  # Ctrl-C after the last frame still counts
                fail(late)
    if errors:
        # Empty the list first: it is reachable from the error's own traceback (through
        # these closures), and that cycle would keep the encoder's threads alive until gc.
        error = errors[0]
        errors.clear()
        try:
            raise error
        finally:
            del error


def _join(thread: threading.Thread) -> BaseException | None:
    """Join, and keep joining through a second Ctrl-C: no stage may outlive the run.
    Returns the first exception that interrupted the wait, if any."""
    interrupted = None
    while thread.is_alive():
        try:
            thread.join()
        except BaseException as e:  # noqa: BLE001 - a Ctrl-C while joining: returned, raised by the caller
            interrupted = interrupted or e
    return interrupted
