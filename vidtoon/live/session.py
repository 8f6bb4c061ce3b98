"""The live loop: camera -> newest frame -> cartoonizer -> window, recording, virtual camera.

    from vidtoon.live import Live, LiveSettings
    result = Live(LiveSettings(source="clip.mp4", window=False, duration=5)).run()
    print(result.fps, result.latency(50), result.dropped)

Three threads, and each hands the next only its newest item (camera.Latest):

    capture (camera.Grabber) -> processing (processor.Processor) -> main thread:
                                                  window and keys, recording, virtual camera

Capture never waits for processing, and processing never waits for the
window, so a slow backend lowers the frame rate, never the freshness: what is
shown is at most about one frame interval plus one backend call old. The main
thread keeps handling keys while it waits, so the window stays responsive.

Latency is measured from capture (the moment a frame left the camera, or was
due in a paced file) to display (the window has painted it; without a window,
the moment the frame is ready to show).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..backends import Backend
from ..cartoonizer import Cartoonizer
from ..config import Recipe
from ..errors import SettingsError, VidtoonError
from ..io.files import check_output_path, parse_size
from ..io.images import write_image
from . import preview
from .camera import Grabber, Source, open_source, parse_device
from .looks import PRESETS, live_recipe
from .processor import Processed, Processor
from .recorder import Recorder, Recording, free_path

RED, GREEN, YELLOW, WHITE = (60, 60, 255), (120, 230, 120), (80, 220, 255), (255, 255, 255)  # BGR
HELP = "q quit | space original/cartoon | s snapshot | r record | 1-9 presets | h overlay"
MESSAGE_SECONDS = 3.0  # how long a key's confirmation stays on screen


@dataclass(frozen=True)
class LiveSettings:
    """Everything one live session needs: the recipe, and where frames come from and go."""

    recipe: Recipe = field(default_factory=Recipe)  # how frames become cartoons (the encoder: for recordings)
    device: int | str = 0  # camera index or device path; unused with `source`
    source: str | None = None  # a video file (looped), a URL or lavfi:GRAPH instead of a camera
    size: tuple[int, int] | str | None = None  # camera: asked for; source: cropped and scaled to it
    fps: float | None = None  # camera: asked for (the camera's default when None); a source keeps its own
    window: bool = True  # the preview window (needs a display)
    overlay: bool = True  # fps/latency/dropped overlay, at start (h toggles it)
    record: Path | None = None  # record from the start into this file (video only)
    overwrite: bool = False  # `record` may replace an existing file
    virtual_cam: bool | str = False  # True or a device path: send frames to a virtual camera
    save_dir: Path = Path(".")  # where `s` snapshots and `r` recordings go
    duration: float | None = None  # stop after this many seconds (None: until q or Ctrl-C)

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", parse_device(self.device))
        if isinstance(self.size, str):
            object.__setattr__(self, "size", parse_size(self.size))
        if self.size is not None and not all(16 <= side <= 8192 for side in self.size):
            raise SettingsError(f"--size must be between 16x16 and 8192x8192, got {self.size[0]}x{self.size[1]}")
        if self.record is not None:
            object.__setattr__(self, "record", Path(self.record))
        object.__setattr__(self, "save_dir", Path(self.save_dir))
        if self.fps is not None:
            if self.source is not None:
                raise SettingsError("--fps is for cameras; a --source plays at its own frame rate")
            if not 1 <= self.fps <= 240:
                raise SettingsError(f"--fps must be between 1 and 240, got {self.fps:g}")
        if self.duration is not None and not self.duration > 0:
            raise SettingsError(f"--duration must be positive, got {self.duration:g}")


@dataclass(frozen=True)
class LiveResult:
    """What a session did. Latencies are capture-to-display, in seconds, per shown frame."""

    backend: str
    source: str
    captured: int
    shown: int
    dropped: int  # captured but never shown: replaced by a newer frame before anyone took it
    seconds: float
    latencies: np.ndarray
    recordings: tuple[Recording, ...]
    snapshots: tuple[Path, ...]

    @property
    def fps(self) -> float:
        return self.shown / self.seconds if self.seconds > 0 else 0.0

    def latency(self, percentile: float, skip: int = 0) -> float:
        """A percentile of the latencies (seconds), leaving out the first `skip` frames."""
        values = self.latencies[skip:]
        return float(np.percentile(values, percentile)) if len(values) else float("nan")


def _view(item: Processed) -> str:
    return f"cartoon: {item.look}" if item.cartoon else "original"


class _Window:
    """Rolling stats over the last second, for the overlay."""

    def __init__(self) -> None:
        self._items: deque[tuple[float, float]] = deque()

    def add(self, now: float, latency: float) -> None:
        self._items.append((now, latency))
        while self._items and self._items[0][0] < now - 1.0:
            self._items.popleft()

    def summary(self) -> tuple[float, float, float]:
        """(fps, median latency, 95th percentile latency), latencies in ms."""
        if len(self._items) < 2:
            return 0.0, 0.0, 0.0
        span = self._items[-1][0] - self._items[0][0]
        latencies = np.array([lat for _, lat in self._items]) * 1000
        fps = (len(self._items) - 1) / span if span > 0 else 0.0
        return fps, float(np.median(latencies)), float(np.percentile(latencies, 95))


class Live:
    """One live session. run() blocks until q/Esc, the end of a stream,
    settings.duration, the window being closed, or stop() (from any thread or
    a signal handler). press(key) feeds the same key handler the window does."""

    def __init__(
        self,
        settings: LiveSettings,
        *,
        note: Callable[[str], None] = lambda message: None,
        source: Source | None = None,
        backend: Backend | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.settings = settings
        self._note = note
        self._given_source = source
        self._given_backend = backend
        self._clock = clock
        self._stop = threading.Event()
        self._keys: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._overlay = settings.overlay
        self._message: tuple[str, float] | None = None
        self._recorder: Recorder | None = None
        self._recordings: list[Recording] = []
        self._snapshots: list[Path] = []
        self._latencies: list[float] = []
        self._stats = _Window()
        self._last: Processed | None = None

    def press(self, key: str) -> None:
        """Act as if `key` ('q', 'space', 's', 'r', 'h', '1'..'9', 'esc') was pressed."""
        self._keys.put(key)

    def stop(self) -> None:
        """Ask run() to finish (recordings are closed and kept). Signal-safe."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def showing(self) -> str | None:
        """What the last frame shown was: 'original' or 'cartoon: BACKEND, preset N (NAME)'."""
        item = self._last
        return None if item is None else _view(item)

    def run(self) -> LiveResult:
        s = self.settings
        # 1. Check what can be checked before any device opens.
        if s.window:
            preview.check_display()
        if s.record is not None:
            self._check_record_path(s.record)
        if not s.save_dir.is_dir():
            raise SettingsError(f"{s.save_dir}: no such directory for snapshots and recordings")
        with ExitStack() as stack:
            # 2. The source: its real size and rate decide everything after it.
            source = self._given_source or open_source(s.device, s.source, s.size, s.fps)
            grabber = stack.enter_context(Grabber(source, self._clock))
            self._note(source.description)
            self._size, self._fps = (source.width, source.height), source.fps
            # 3. The cartoonizer, with the backend's live adjustments (fast settings for slow ones).
            recipe, change = (s.recipe, None) if self._given_backend is not None else live_recipe(s.recipe)
            if change:
                self._note(change)
            cartoonizer, why = Cartoonizer.build(recipe, self._given_backend)
            self._started = cartoonizer
            self._note(f"backend: {cartoonizer.name} ({why})")
            for note in cartoonizer.notes:
                self._note(note)
            # 4. Outputs: virtual camera, window, recording.
            vcam = None
            if s.virtual_cam:
                from .virtualcam import VirtualCamera

                device = s.virtual_cam if isinstance(s.virtual_cam, str) else None
                vcam = stack.enter_context(VirtualCamera(source.width, source.height, source.fps, device))
                self._note(vcam.description)
            window = None
            if s.window:
                window = stack.enter_context(preview.Preview(source.width, source.height))
                self._tell(HELP, note=False)
            stack.callback(self._stop_recording)
            if s.record is not None:
                self._start_recording(s.record)
            # 5. Start capture and processing, then show frames until told to stop.
            processor = stack.enter_context(Processor(grabber.frames, cartoonizer, self._look(1, cartoonizer.name)))
            grabber.start()
            processor.start()
            self._processor = processor
            seconds = self._loop(processor, window, vcam)
            dropped = grabber.frames.dropped + processor.results.dropped
            captured = grabber.frames.put_count
        return LiveResult(
            backend=cartoonizer.name, source=source.description, captured=captured,
            shown=len(self._latencies), dropped=dropped, seconds=seconds,
            latencies=np.array(self._latencies), recordings=tuple(self._recordings),
            snapshots=tuple(self._snapshots),
        )

    def _loop(self, processor: Processor, window, vcam) -> float:
        duration = self.settings.duration
        started = self._clock()
        results = processor.results
        while not self._stop.is_set():
            # Short waits with a window, so keys and repaints are handled while a slow backend works.
            item = results.take(timeout=0.005 if window else 0.05)
            key = None
            if item is not None:
                key = self._present(item, window, vcam)
            elif results.ended:
                break  # the stream ended
            elif window is not None:
                key = window.poll(1)
            if key:
                self._keys.put(key)
            self._handle_keys()
            if window is not None and window.closed:
                break
            if duration is not None and self._clock() - started >= duration:
                break
        return self._clock() - started

    def _present(self, item: Processed, window, vcam) -> str | None:
        """Show one frame, record it, send it on. Returns a key pressed meanwhile."""
        key = None
        if window is not None:
            bgr = cv2.cvtColor(item.rgb, cv2.COLOR_RGB2BGR)
            if self._overlay:
                preview.draw_overlay(bgr, self._overlay_lines(item))
            key = window.show(bgr)
        now = self._clock()
        latency = now - item.frame.captured
        self._latencies.append(latency)
        self._stats.add(now, latency)
        self._last = item
        if self._recorder is not None:
            try:
                self._recorder.write(item.rgb, item.frame.captured)
            except VidtoonError as e:
                self._recorder = None  # the writer has already deleted its file
                if window is None:
                    raise  # headless: recording is the point, so fail
                self._tell(f"recording failed: {e}")
        if vcam is not None:
            vcam.send(item.rgb)
        return key

    def _overlay_lines(self, item: Processed) -> list[tuple[str, tuple[int, int, int]]]:
        fps, median, p95 = self._stats.summary()
        dropped = self._processor.inbox.dropped + self._processor.results.dropped
        lines = [
            (_view(item), WHITE),
            (f"{fps:4.1f} fps | latency {median:3.0f} ms (p95 {p95:3.0f}) | dropped {dropped}", GREEN),
        ]
        if self._recorder is not None:
            lines.append((f"REC {self._recorder.seconds:5.1f} s  {self._recorder.path.name}", RED))
        if self._message is not None:
            text, until = self._message
            if self._clock() < until:
                lines.append((text, YELLOW))
            else:
                self._message = None
        return lines

    # Keys ------------------------------------------------------------------

    def _handle_keys(self) -> None:
        while True:
            try:
                key = self._keys.get_nowait()
            except queue.Empty:
                return
            self._handle(key)

    def _handle(self, key: str) -> None:
        if key in ("q", "esc"):
            self.stop()
        elif key == "space":
            self._processor.cartoon = not self._processor.cartoon
            self._tell("cartoon" if self._processor.cartoon else "original", note=False)
        elif key == "h":
            self._overlay = not self._overlay
        elif key == "s":
            self._snapshot()
        elif key == "r":
            if self._recorder is None:
                self._start_recording(self._free_path(".mp4"))
            else:
                self._stop_recording()
        elif len(key) == 1 and key.isdigit() and int(key) in PRESETS:
            self._use_preset(int(key))

    def _use_preset(self, number: int) -> None:
        preset = PRESETS[number]
        if preset.classic is None:
            cartoonizer = self._started
        else:
            started = self.settings.recipe.settings["classic"]
            look = preset.classic
            if started.steady is not None and look.steady is None:  # --steady holds for every look
                look = dataclasses.replace(look, steady=started.steady)
            cartoonizer, _ = Cartoonizer.build(self.settings.recipe.with_backend("classic", look))  # keeps --stabilize
        self._processor.switch(cartoonizer, self._look(number, cartoonizer.name))
        self._processor.cartoon = True
        self._tell(f"preset {number}: {preset.name}")

    def _look(self, number: int, backend: str) -> str:
        return f"{backend}, preset {number} ({PRESETS[number].name})"

    def _snapshot(self) -> None:
        if self._last is None:
            self._tell("nothing to save yet")
            return
        path = self._free_path(".png")
        try:
            write_image(path, self._last.rgb)
        except VidtoonError as e:
            self._tell(f"snapshot failed: {e}")
            return
        self._snapshots.append(path)
        self._tell(f"saved {path}")

    def _start_recording(self, path: Path) -> None:
        width, height = self._size
        try:
            self._recorder = Recorder(path, width, height, self._fps, self.settings.recipe.encode)
        except VidtoonError as e:
            if not self.settings.window or path == self.settings.record:
                raise
            self._tell(f"cannot record: {e}")
            return
        self._tell(f"recording to {path} (video only)")

    def _stop_recording(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        recording = recorder.finish()
        if recording is None:
            self._tell("recording stopped before any frame; nothing saved")
        else:
            self._recordings.append(recording)
            self._tell(f"recorded {recording.path}: {recording.frames} frames, {recording.seconds:.1f} s")

    def _check_record_path(self, path: Path) -> None:
        from ..io.formats import resolve

        resolve(path, self.settings.recipe.encode)  # a known suffix and codec
        source = Path(self.settings.source) if self.settings.source else None
        check_output_path(path, self.settings.overwrite, source)

    def _free_path(self, suffix: str) -> Path:
        return free_path(self.settings.save_dir, suffix)

    def _tell(self, message: str, note: bool = True) -> None:
        """Show a message on the overlay for a few seconds, and print it (note=True)."""
        self._message = (message, self._clock() + MESSAGE_SECONDS)
        if note:
            self._note(message)
