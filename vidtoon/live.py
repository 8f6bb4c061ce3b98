"""The live loop: camera -> newest frame -> backend -> window, recording, virtual camera.

    from vidtoon.live import Live, LiveSettings
    result = Live(LiveSettings(source="clip.mp4", window=False, duration=5)).run()
    print(result.fps, result.latency(50), result.dropped)

Three threads, and each hands the next only its newest item (camera.Latest):

    capture (camera.Grabber) -> processing (Processor: the backend) -> main thread:
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

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from . import backends, preview  # preview imports cv2, which must load before PyAV
from .backends import Backend
from .camera import Grabber, Latest, LiveFrame, Source, open_source, parse_device, parse_size
from .config import ClassicSettings, Settings
from .errors import SettingsError, VidtoonError

RED, GREEN, YELLOW, WHITE = (60, 60, 255), (120, 230, 120), (80, 220, 255), (255, 255, 255)  # BGR
HELP = "q quit | space original/cartoon | s snapshot | r record | 1-9 presets | h overlay"
MESSAGE_SECONDS = 3.0  # how long a key's confirmation stays on screen


@dataclass(frozen=True)
class Preset:
    """A look the number keys switch to."""

    name: str
    classic: ClassicSettings | None = None  # None: the backend and settings the session started with


# Key 1 is always what the command line asked for (any backend); 2-9 are classic
# looks, cheap enough to switch to at any time (with pix2pix too, and 1 goes back).
PRESETS = {
    1: Preset("as started"),
    2: Preset("flat", ClassicSettings(levels=4, edges=1.0, smooth=4)),
    3: Preset("bold ink", ClassicSettings(levels=6, edges=2.5, smooth=2)),
    4: Preset("soft, no outlines", ClassicSettings(levels=8, edges=0.0, smooth=3)),
    5: Preset("detailed", ClassicSettings(levels=16, edges=0.7, smooth=1)),
    6: Preset("poster", ClassicSettings(levels=3, edges=1.5, smooth=5)),
    7: Preset("sketch", ClassicSettings(levels=24, edges=3.0, smooth=0)),
    8: Preset("pastel", ClassicSettings(levels=10, edges=0.4, smooth=6)),
    9: Preset("fastest", ClassicSettings(levels=8, edges=1.0, smooth=0)),
}


LIVE_STEPS = 4  # pix2pix live: denoising steps at most (20 by default for files)
LIVE_MAX_SIDE = 256  # pix2pix live: long side of the frames it works on, at most
LIVE_REUSE = 0.5  # pix2pix live: --reuse-latents unless asked otherwise: half the steps after the first frame


def live_settings(settings: Settings) -> tuple[Settings, str | None]:
    """Adjust the cartoon settings for live use, before the backend is built;
    returns them and a note for the user (None: nothing changed).

    The classic backend runs in real time as it is. The pix2pix backend gets its
    fastest settings: few steps, a small work size, one frame per call (a batch
    would only add latency), and latent reuse (frames after the first run only
    part of the steps). The newest-frame policy keeps latency bounded whatever
    this returns; it only sets the frame rate.
    """
    name, _ = backends.choose(settings.backend, settings.pix2pix.model)
    if name != "pix2pix":
        return settings, None
    p = settings.pix2pix
    fast = replace(p, steps=min(p.steps, LIVE_STEPS), max_side=min(p.max_side, LIVE_MAX_SIDE), size=None, batch_size=1,
                   reuse_latents=p.reuse_latents or LIVE_REUSE)
    if p.size is not None:  # a size asked for is kept; only the steps come down
        fast = replace(fast, size=p.size, max_side=p.max_side)
    note = (
        f"pix2pix live: {fast.steps} steps, frames worked at "
        + (f"{fast.size[0]}x{fast.size[1]}" if fast.size else f"{fast.max_side} px on the long side")
        + f", one frame at a time, reusing the last frame's latents (strength {fast.reuse_latents:g}), for speed; "
        "the newest camera frame is always the next one done"
    )
    return replace(settings, backend="pix2pix", pix2pix=fast, batch_size=1), note


@dataclass(frozen=True)
class LiveSettings:
    """Everything one live session needs. The cartoon settings' input/output
    paths are not used: the source and recordings are set here."""

    cartoon: Settings = field(default_factory=lambda: Settings(input=Path("camera"), output=Path("webcam.mp4")))
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
class Recording:
    path: Path
    frames: int
    seconds: float


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


@dataclass(frozen=True)
class Processed:
    frame: LiveFrame
    rgb: np.ndarray  # what to show: the cartoon, or the original
    cartoon: bool
    look: str  # backend and preset, for the overlay


class Processor:
    """Runs the backend on its own thread: newest captured frame in, newest result out."""

    def __init__(self, inbox: Latest[LiveFrame], backend: Backend, look: str) -> None:
        self.inbox = inbox
        self.results: Latest[Processed] = Latest()
        self.cartoon = True  # False: pass frames through (the original view)
        self._backend, self._look = backend, look
        self._next: tuple[Backend, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidtoon-process", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def switch(self, backend: Backend, look: str) -> None:
        """Use another backend from the next frame on (any thread)."""
        with self._lock:
            self._next = (backend, look)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._backend.reset()
            while not self._stop.is_set():
                frame = self.inbox.take(timeout=0.1)
                if frame is None:
                    if self.inbox.ended:
                        break
                    continue
                with self._lock:
                    swap, self._next = self._next, None
                if swap is not None:
                    self._backend, self._look = swap
                    self._backend.reset()
                cartoon = self.cartoon
                rgb = self._backend(frame.rgb[None])[0] if cartoon else frame.rgb
                self.results.put(Processed(frame, rgb, cartoon, self._look))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            error = e
        finally:
            self.results.end(error)

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def __enter__(self) -> Processor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Recorder:
    """Writes shown frames into a video file at their capture times (so the
    file plays in real time even when frames were dropped). Video only."""

    TIME_BASE = Fraction(1, 1000)

    def __init__(self, path: Path, width: int, height: int, fps: float, settings: Settings) -> None:
        from .reader import ColorInfo, VideoInfo
        from .writer import VideoWriter

        self.path = path
        self.fps = fps
        info = VideoInfo(
            path=path, width=width, height=height, rotation=0,
            fps=Fraction(fps).limit_denominator(1001), time_base=self.TIME_BASE,
            frame_count=None, duration=None, codec="rawvideo", audio_streams=0,
            sample_aspect_ratio=None, color=ColorInfo(space=1, range=1, primaries=1, trc=1),  # BT.709, limited
        )
        self._writer = VideoWriter(path, info, settings.encode)
        self.frames = 0
        self._failed = False  # the writer failed and has deleted its file
        self._first: float | None = None
        self._last = 0.0

    def write(self, rgb: np.ndarray, captured: float) -> None:
        from .reader import Frame

        if self._first is None:
            self._first = captured
        pts = round((captured - self._first) / self.TIME_BASE)
        try:
            self._writer.write(Frame(self.frames, pts, self.TIME_BASE, rgb))
        except BaseException:
            self._failed = True
            raise
        self.frames += 1
        self._last = captured

    @property
    def seconds(self) -> float:
        """Length of the recording: first to last frame, plus one frame interval."""
        return self._last - self._first + 1 / self.fps if self._first is not None else 0.0

    def finish(self) -> Recording | None:
        """Close the file (None, and no file, if no frame was recorded)."""
        if self._failed:
            return None
        if self.frames == 0:
            self._writer.abort()
            return None
        self._writer.close()
        return Recording(self.path, self.frames, self.seconds)

    def abort(self) -> None:
        self._writer.abort()


def _view(item: Processed) -> str:
    return f"cartoon: {item.look}" if item.cartoon else "original"


def free_path(folder: Path, suffix: str) -> Path:
    """folder/vidtoon-DATE-TIME.suffix, with -2, -3, ... if that exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        path = Path(folder) / f"vidtoon-{stamp}{'' if n == 1 else f'-{n}'}{suffix}"
        if not path.exists():
            return path
    raise AssertionError("unreachable")


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
            # 3. The backend, with the live adjustments (fast settings for slow backends).
            if self._given_backend is not None:
                backend, why = self._given_backend, "given"
            else:
                cartoon, change = live_settings(s.cartoon)
                if change:
                    self._note(change)
                backend, why = backends.load(cartoon)
            self._started_backend = backend
            self._note(f"backend: {backend.name} ({why})")
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
            processor = stack.enter_context(Processor(grabber.frames, backend, self._look(1, backend)))
            grabber.start()
            processor.start()
            self._processor = processor
            seconds = self._loop(processor, window, vcam)
            dropped = grabber.frames.dropped + processor.results.dropped
            captured = grabber.frames.put_count
        return LiveResult(
            backend=backend.name, source=source.description, captured=captured,
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
            backend = self._started_backend
        else:
            from .backends.classic import ClassicBackend

            backend = ClassicBackend(preset.classic)
        self._processor.switch(backend, self._look(number, backend))
        self._processor.cartoon = True
        self._tell(f"preset {number}: {preset.name}")

    def _look(self, number: int, backend: Backend) -> str:
        return f"{backend.name}, preset {number} ({PRESETS[number].name})"

    def _snapshot(self) -> None:
        if self._last is None:
            self._tell("nothing to save yet")
            return
        path = self._free_path(".png")
        ok, data = cv2.imencode(".png", cv2.cvtColor(self._last.rgb, cv2.COLOR_RGB2BGR))
        try:
            path.write_bytes(data.tobytes())
        except OSError as e:
            self._tell(f"snapshot failed: {path}: {e.strerror}")
            return
        self._snapshots.append(path)
        self._tell(f"saved {path}")

    def _start_recording(self, path: Path) -> None:
        width, height = self._size
        try:
            self._recorder = Recorder(path, width, height, self._fps, self.settings.cartoon)
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
        from .formats import resolve
        from .pipeline import check_paths

        resolve(path, self.settings.cartoon.encode)  # a known suffix and codec
        source = Path(self.settings.source) if self.settings.source else Path("camera")
        check_paths(replace(self.settings.cartoon, input=source, output=path, overwrite=self.settings.overwrite))

    def _free_path(self, suffix: str) -> Path:
        return free_path(self.settings.save_dir, suffix)

    def _tell(self, message: str, note: bool = True) -> None:
        """Show a message on the overlay for a few seconds, and print it (note=True)."""
        self._message = (message, self._clock() + MESSAGE_SECONDS)
        if note:
            self._note(message)
