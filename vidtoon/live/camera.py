"""Live sources, and the newest-frame-wins hand-off between threads.

    source = open_source(device=0)                        # a camera (OpenCV)
    source = open_source(source="clip.mp4")               # a file: looped, paced at its frame rate
    source = open_source(source="lavfi:testsrc2=size=1280x720:rate=30")  # anything PyAV opens
    with Grabber(source) as grabber:                      # reads on its own thread
        grabber.start()
        frame = grabber.frames.take(timeout=0.1)          # the newest frame, or None

A camera delivers frames whether or not anyone is ready for them, and so does
every source here: a file or stream is paced at its own timestamps. Nothing
queues. A frame not taken before the next one arrives is dropped and counted,
so a consumer never sees a frame older than one frame interval when it asks.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np

from ..errors import DeviceUnavailable, InputError, SettingsError, describe

T = TypeVar("T")

MAX_LAG = 0.25  # s; a paced source this late (slow decode) restarts its clock, as a camera would not catch up
CAMERA_READ_FAILURES = 10  # consecutive failed reads before a camera counts as gone
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class LiveFrame:
    """One captured frame."""

    index: int  # capture order, from 0 (gaps downstream are dropped frames)
    rgb: np.ndarray  # uint8 (H, W, 3)
    captured: float  # time.perf_counter() when it was captured (a paced source: when it was due)


class Source(Protocol):
    """A live source. read() blocks until the next frame is there, like a camera."""

    description: str  # one line for the user: what it is, its size and rate
    width: int
    height: int
    fps: float

    def read(self) -> np.ndarray | None: ...  # RGB uint8 (H, W, 3); None: the source ended

    def interrupt(self) -> None: ...  # make a blocked read() return soon (any thread)

    def close(self) -> None: ...  # from the thread that reads


def parse_device(text: str | int) -> int | str:
    """A camera index (0, 1, ...) or a device path (/dev/video2)."""
    if isinstance(text, int) or str(text).strip().isdigit():
        return int(text)
    text = str(text).strip()
    if text.startswith("/"):
        return text
    raise SettingsError(f"--device must be a camera index (0, 1, ...) or a device path like /dev/video0; got {text!r}")


def open_source(
    device: int | str = 0,
    source: str | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
) -> Source:
    """A file or stream when `source` is given, else the camera `device`."""
    if source is not None:
        return StreamSource(source, size)
    return CameraSource(device, size, fps)


class CameraSource:
    """A camera through OpenCV's VideoCapture. Asks for `size` and `fps`, then
    reports what the camera really gives (frames are not rescaled)."""

    def __init__(self, device: int | str, size: tuple[int, int] | None = None, fps: float | None = None) -> None:
        import cv2

        self._cv2 = cv2
        self.name = name = f"camera {device}"
        node = Path(f"/dev/video{device}") if isinstance(device, int) else Path(device)
        # Checked first: OpenCV would print its own warnings and just fail.
        if (sys.platform.startswith("linux") or not isinstance(device, int)) and not node.exists():
            raise DeviceUnavailable(f"{name}: {node} does not exist (no camera there; try another --device, or --source FILE)")
        self._cap = cv2.VideoCapture(device if isinstance(device, int) else str(device))
        if not self._cap.isOpened():
            raise DeviceUnavailable(f"{name}: cannot be opened (busy, or not a camera?)")
        try:
            if size:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            if fps:
                self._cap.set(cv2.CAP_PROP_FPS, fps)
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # a deep driver queue is stale frames
            ok, bgr = self._cap.read()  # the first frame tells the real size
            if not ok:
                raise DeviceUnavailable(f"{name}: opened, but gives no frames")
        except BaseException:
            self._cap.release()
            raise
        self.height, self.width = bgr.shape[:2]
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or fps or 30.0)
        asked = []
        if size and size != (self.width, self.height):
            asked.append(f"{size[0]}x{size[1]}")
        if fps and abs(fps - self.fps) > 0.5:
            asked.append(f"{fps:g} fps")
        self.description = f"{name}: {self.width}x{self.height} at {self.fps:g} fps" + (
            f" (asked for {' at '.join(asked)}; this is what it gives)" if asked else ""
        )
        self._failures = 0

    def read(self) -> np.ndarray | None:
        while True:
            ok, bgr = self._cap.read()
            if ok:
                self._failures = 0
                return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
            self._failures += 1
            if self._failures >= CAMERA_READ_FAILURES:
                raise DeviceUnavailable(f"{self.name}: stopped giving frames (unplugged?)")

    def interrupt(self) -> None:
        pass  # read() returns within a frame interval anyway

    def close(self) -> None:
        self._cap.release()


class StreamSource:
    """A video file (looped) or any stream PyAV opens (a URL, or `lavfi:GRAPH`),
    paced in real time at its own timestamps. With `size`, frames are cropped
    to that aspect ratio and scaled to it."""

    def __init__(self, target: str, size: tuple[int, int] | None = None) -> None:
        self.target = str(target)
        self._size = size
        self._interrupted = threading.Event()
        self._anchor: float | None = None  # perf_counter() - timeline seconds
        self.fps = 30.0
        if self.target.startswith("lavfi:"):
            self._open, self.loop = self._stream_pass, False
        elif _URL.match(self.target):
            self._open, self.loop = self._stream_pass, False
        else:
            path = Path(self.target)
            if not path.exists():
                raise InputError(
                    f"{self.target}: no such file (give a video file, a URL such as rtsp://..., or lavfi:testsrc2)"
                )
            self._open, self.loop = self._file_pass, True
        self._timeline = self._frames()
        try:
            first = next(self._timeline, None)  # opens and probes now, so bad input fails here
            if first is None:
                raise InputError(f"{self.target}: the video has no frames")
        except BaseException:
            self._timeline.close()
            raise
        self._pending: tuple[float, np.ndarray] | None = first
        self.height, self.width = first[1].shape[:2]
        what = "looped" if self.loop else "stream"
        self.description = f"{self.target}: {self.width}x{self.height} at {self.fps:.3g} fps ({what}, paced in real time)"

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
        else:
            item = next(self._timeline, None)
        if item is None or self._interrupted.is_set():
            return None
        seconds, rgb = item
        now = time.perf_counter()
        if self._anchor is None:
            self._anchor = now - seconds
        delay = self._anchor + seconds - now
        if delay > 0:
            if self._interrupted.wait(delay):
                return None
        elif delay < -MAX_LAG:
            self._anchor = now - seconds
        return rgb

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self._timeline.close()  # the pass's `with` closes its container

    def _frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(seconds from the start, fitted RGB) forever for a looped file; a stream until it ends."""
        offset = 0.0
        while True:
            first = last = None
            for seconds, rgb in self._open():
                if first is None:
                    first = seconds
                last = seconds
                yield offset + seconds - first, self._fit(rgb)
            if not self.loop or first is None:
                return
            offset += last - first + 1.0 / self.fps

    def _file_pass(self) -> Iterator[tuple[float, np.ndarray]]:
        from ..io.reader import open_video

        with open_video(self.target) as video:
            if video.info.fps:
                self.fps = float(video.info.fps)
            for frame in video.frames():
                yield frame.time, frame.rgb

    def _stream_pass(self) -> Iterator[tuple[float, np.ndarray]]:
        import av

        url, fmt = self.target, None
        if url.startswith("lavfi:"):
            url, fmt = url[len("lavfi:"):], "lavfi"
        try:
            container = av.open(url, format=fmt, timeout=10.0)
        except (av.FFmpegError, OSError) as e:
            raise InputError(f"{self.target}: cannot be opened ({describe(e)})") from None
        with container:
            if not container.streams.video:
                raise InputError(f"{self.target}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            if rate:
                self.fps = float(rate)
            step, count, size = 1.0 / self.fps, 0, None
            try:
                for frame in container.decode(stream):
                    seconds = frame.time if frame.time is not None else count * step
                    count += 1
                    size = size or (frame.width, frame.height)  # a size change mid-stream is scaled back
                    yield seconds, frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
            except av.FFmpegError as e:
                raise InputError(f"{self.target}: decoding failed ({describe(e)})") from None

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        """Centre-crop to the asked aspect ratio, then scale: no stretching."""
        if self._size is None:
            return rgb
        import cv2

        width, height = self._size
        h, w = rgb.shape[:2]
        if (w, h) == (width, height):
            return rgb
        if w * height > h * width:  # too wide: crop the sides
            crop = round(h * width / height)
            rgb = rgb[:, (w - crop) // 2 : (w - crop) // 2 + crop]
        else:
            crop = round(w * height / width)
            rgb = rgb[(h - crop) // 2 : (h - crop) // 2 + crop]
        shrink = rgb.shape[1] > width
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class Latest(Generic[T]):
    """A one-item mailbox between two threads: a newer item replaces an unread
    one (which is counted as dropped), so the reader always gets the newest."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._ended = False
        self._error: BaseException | None = None
        self.put_count = 0
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_count += 1
            self._cond.notify_all()

    def end(self, error: BaseException | None = None) -> None:
        """No more items; the reader gets `error` (raised) once the mailbox is empty."""
        with self._cond:
            self._ended, self._error = True, error
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> T | None:
        """The newest unread item, waiting up to `timeout`; None if there is none
        (see `ended`). Raises the writer's error once everything is read."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._ended, timeout)
            item, self._item = self._item, None
            if item is None and self._error is not None:
                raise self._error
            return item

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended and self._item is None


class Grabber:
    """Reads a source on its own thread into a Latest mailbox (`frames`). The
    source is closed on that thread too, so it is never used from two at once."""

    def __init__(self, source: Source, clock: Callable[[], float] = time.perf_counter) -> None:
        self.source = source
        self.frames: Latest[LiveFrame] = Latest()
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidtoon-capture", daemon=True)

    def start(self) -> Grabber:
        self._thread.start()
        return self

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            index = 0
            while not self._stop.is_set():
                rgb = self.source.read()
                if rgb is None:
                    break
                self.frames.put(LiveFrame(index, rgb, self._clock()))
                index += 1
        except BaseException as e:  # noqa: BLE001 - handed to the reading thread
            error = e
        finally:
            try:
                self.source.close()
            finally:
                self.frames.end(error)

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.source.interrupt()
        if self._thread.ident is None:  # never started: close here
            self.source.close()
        else:
            self._thread.join(timeout)

    def __enter__(self) -> Grabber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
