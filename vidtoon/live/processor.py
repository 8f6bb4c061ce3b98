"""The live loop's processing thread: the newest captured frame in, the newest
result out (see session.py), through a Cartoonizer that can be switched.

A backend with a stream batch (pix2pix) takes the frames one by one and hands each
cartoon back a few frames later; it is shown with its own frame, so the overlay's
latency counts the wait."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cartoonizer import Cartoonizer
from .camera import Latest, LiveFrame


@dataclass(frozen=True)
class Processed:
    frame: LiveFrame
    rgb: np.ndarray  # what to show: the cartoon, or the original
    cartoon: bool
    look: str  # backend and preset, for the overlay


class Processor:
    """Runs the cartoonizer on its own thread: newest captured frame in, newest result out."""

    def __init__(self, inbox: Latest[LiveFrame], cartoonizer: Cartoonizer, look: str) -> None:
        self.inbox = inbox
        self.results: Latest[Processed] = Latest()
        self.cartoon = True  # False: pass frames through (the original view)
        self._cartoonizer, self._look = cartoonizer, look
        self._next: tuple[Cartoonizer, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidtoon-process", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def switch(self, cartoonizer: Cartoonizer, look: str) -> None:
        """Use another cartoonizer from the next frame on (any thread)."""
        with self._lock:
            self._next = (cartoonizer, look)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            stream = self._begin()
            while not self._stop.is_set():
                frame = self.inbox.take(timeout=0.1)
                if frame is None:
                    if self.inbox.ended:
                        if stream is not None:  # the last frames in flight
                            self._show(stream.drain())
                        break
                    continue
                with self._lock:
                    swap, self._next = self._next, None
                cartoon = self.cartoon
                if swap is not None:
                    self._cartoonizer, self._look = swap
                    stream = self._begin()
                if not cartoon:
                    if stream is not None and stream.busy:  # what is in flight would come back stale
                        stream.reset()
                    self.results.put(Processed(frame, frame.rgb, False, self._look))
                elif stream is not None:  # the cartoons of earlier frames, as they are done
                    self._show(stream.push(frame.rgb, frame))
                else:
                    self.results.put(Processed(frame, self._cartoonizer(frame.rgb[None])[0], True, self._look))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            error = e
        finally:
            self.results.end(error)

    def _begin(self) -> Any:
        """Reset the cartoonizer for a new clip; its stream batch, or None (frame by frame)."""
        self._cartoonizer.reset()
        stream = self._cartoonizer.stream()
        if stream is not None:
            stream.reset()
        return stream

    def _show(self, done: list[tuple[LiveFrame, np.ndarray]]) -> None:
        """Results for a stream's (frame, backend cartoon) pairs, through the rest of the cartoonizer."""
        for frame, rgb in done:
            self.results.put(Processed(frame, self._cartoonizer.finish(frame.rgb[None], rgb[None])[0], True, self._look))

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def __enter__(self) -> Processor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
