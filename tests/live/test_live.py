"""The live loop without a window: a file source paced in real time stands in
for the camera (there is none here). Slow backends, recording, keys through
the loop's key hook, the virtual camera, errors, and no threads left behind.

Timing bounds are loose on purpose (2 shared cores): each one would still
fail by a wide margin if frames were queued instead of dropped.
"""

import functools
import http.server
import itertools
import signal
import subprocess
import sys
import threading
import time

import looks
import numpy as np
import pytest
from clips import panning, read_video

from vidtoon.backends.classic import ClassicSettings
from vidtoon.cli import ExitStatus, main
from vidtoon.config import Recipe
from vidtoon.errors import DeviceUnavailable, InputError
from vidtoon.io.reader import open_video
from vidtoon.live import Live, LiveSettings
from vidtoon.live.camera import CameraSource, Latest, StreamSource
from vidtoon.live.looks import PRESETS

VIDTOON = [sys.executable, "-m", "vidtoon"]


class Invert:
    """A backend that is fast and easy to recognise."""

    name = "invert"
    summary = ""
    batch_size = 8

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)  # a deliberately slow backend (pix2pix-like)
        return 255 - batch

    def reset(self):
        pass


@pytest.fixture(autouse=True)
def no_threads_left():
    yield
    deadline = time.monotonic() + 5
    while any(t.name.startswith("vidtoon-") for t in threading.enumerate()):
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.05)


def source_frames(path):
    with open_video(path) as video:
        return [f.rgb for f in video.frames()]


def nearest(image, candidates):
    """Mean absolute difference to the closest of `candidates`."""
    return min(np.abs(image.astype(int) - c.astype(int)).mean() for c in candidates)


def test_file_source_loops_paced_at_its_frame_rate(clip):
    c = clip(frames=15, fps=30)
    source = StreamSource(str(c.path))
    try:
        assert (source.width, source.height, source.fps) == (64, 48, 30)
        started = time.perf_counter()
        frames = [source.read() for _ in range(40)]  # 2.7 passes over the clip
        elapsed = time.perf_counter() - started
    finally:
        source.close()
    assert elapsed >= 39 / 30 - 0.01  # frame 39 is due 1.3 s after frame 0: never early
    assert elapsed < 39 / 30 + 1.5
    assert np.array_equal(frames[15], frames[0]) and np.array_equal(frames[30], frames[0])  # looped
    assert not np.array_equal(frames[1], frames[0])


def test_source_size_crops_to_the_aspect_ratio_then_scales(clip):
    c = clip(width=128, height=48, frames=2)
    source = StreamSource(str(c.path), size=(32, 32))
    try:
        frame = source.read()
    finally:
        source.close()
    assert frame.shape == (32, 32, 3)
    import cv2

    centre = source_frames(c.path)[0][:, 40:88]  # the middle 48x48, not a squashed 128x48
    assert np.abs(frame.astype(int) - cv2.resize(centre, (32, 32), interpolation=cv2.INTER_AREA)).mean() < 1


def test_mailbox_keeps_only_the_newest_item():
    box = Latest()
    for i in range(3):
        box.put(i)
    assert box.take(0) == 2 and box.dropped == 2 and box.put_count == 3
    assert box.take(0.01) is None and not box.ended
    box.put(3)
    box.end(InputError("gone"))
    assert not box.ended and box.take(0) == 3  # what was there is still read
    assert box.ended
    with pytest.raises(InputError, match="gone"):
        box.take(0)


def test_slow_backend_drops_frames_and_latency_stays_bounded(clip, tmp_path):
    """Capture at 30 fps, processing at ~10 fps: a queue would build up ~2 frames
    of backlog per processed frame (over a second of latency after 2 s); the
    newest-frame policy drops them and every frame shown is fresh."""
    c = clip(frames=30, fps=30)
    out = tmp_path / "slow.mp4"
    slow = Invert(delay=0.1)
    result = Live(LiveSettings(source=str(c.path), window=False, duration=2.5, record=out), backend=slow).run()
    assert result.captured >= 55  # capture kept its pace (75 due) while processing crawled
    assert 8 <= result.shown <= 26
    in_flight = result.captured - result.shown - result.dropped
    assert 0 <= in_flight <= 2
    assert result.dropped >= result.captured / 2
    assert result.latencies.max() < 0.1 + 1 / 30 + 0.25  # one backend call + one frame + slack
    # The recording plays in real time: ~10 frames a second over the whole span.
    (recording,) = result.recordings
    pts, time_base, frames, _ = read_video(out)
    assert len(frames) == recording.frames == result.shown
    span = float((pts[-1] - pts[0]) * time_base)
    assert span == pytest.approx(recording.seconds - 1 / 30, abs=0.01)
    assert span > 1.8
    assert nearest(frames[3], [255 - f for f in source_frames(c.path)]) < 8  # what the backend made


def test_fast_backend_shows_almost_every_frame_and_records_them(clip, tmp_path):
    c = clip(frames=30, fps=30)
    out = tmp_path / "fast.mp4"
    result = Live(LiveSettings(source=str(c.path), window=False, duration=2.0, record=out), backend=Invert()).run()
    assert result.captured >= 45
    assert result.shown >= 0.8 * result.captured
    assert result.latency(50) < 0.05
    (recording,) = result.recordings
    pts, time_base, frames, _ = read_video(out)
    assert len(frames) == recording.frames == result.shown
    # the right frame count for its duration: 30 a second
    assert len(frames) / recording.seconds == pytest.approx(30, rel=0.2)
    assert all(b > a for a, b in itertools.pairwise(pts))


def test_keys_through_the_key_hook(clip, tmp_path):
    c = clip(frames=30, fps=30, draw=panning(speed=(0.3, 0.0)))  # colours that keep one palette over the loop
    steady0 = Recipe(settings={"classic": ClassicSettings(steady=0.0)})  # the looks the keys switch to, frame by frame
    live = Live(LiveSettings(recipe=steady0, source=str(c.path), window=False, duration=30, save_dir=tmp_path),
                backend=Invert())

    def until(condition):
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.02)

    def drive():
        until(lambda: live.showing == "cartoon: invert, preset 1 (as started)")
        live.press("s")
        live.press("r")
        time.sleep(0.8)
        live.press("r")
        live.press("space")
        until(lambda: live.showing == "original")
        live.press("s")
        live.press("3")
        until(lambda: live.showing == "cartoon: classic, preset 3 (comic)")
        live.press("s")
        live.press("q")

    driver = threading.Thread(target=drive)
    driver.start()
    result = live.run()
    driver.join()
    assert result.seconds < 20  # q, long before --duration
    originals = source_frames(c.path)
    cartoon, original, preset3 = (open_png(p) for p in result.snapshots)
    assert nearest(cartoon, [255 - f for f in originals]) < 0.5  # PNG is lossless
    assert nearest(original, originals) < 0.5  # space: the original view
    # (the new look's palette is fitted on whichever frame came first after the key)
    assert nearest(preset3, looks.cartoons(originals, PRESETS[3].classic, fitted_on=range(len(originals)))) < 0.5
    (recording,) = result.recordings
    assert recording.path.parent == tmp_path and recording.path.suffix == ".mp4"
    assert len(read_video(recording.path)[2]) == recording.frames >= 3


def open_png(path):
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_virtual_camera_gets_every_shown_frame(clip, monkeypatch):
    import pyvirtualcam.camera

    sent = []

    class FakeCamera:  # registered after v4l2loopback, which finds no device here
        def __init__(self, width, height, fps, fourcc, device, **kwargs):
            self.shape = (height, width, 3)

        def send(self, frame):  # pyvirtualcam hands over the RGB bytes, flattened
            sent.append(frame.reshape(self.shape).copy())

        def close(self):
            pass

        def device(self):
            return "/dev/fake"

        def native_fourcc(self):
            return None

    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "fake", FakeCamera)
    c = clip(frames=30, fps=30)
    result = Live(LiveSettings(source=str(c.path), window=False, duration=1.0, virtual_cam=True), backend=Invert()).run()
    assert len(sent) == result.shown > 10
    assert nearest(sent[0], [255 - f for f in source_frames(c.path)]) < 0.5


def test_a_stream_that_ends_ends_the_session():
    result = Live(
        LiveSettings(source="lavfi:testsrc2=size=160x120:rate=30:duration=1", window=False, duration=30),
        backend=Invert(),
    ).run()
    assert 10 < result.shown <= 30 and result.seconds < 10


def test_source_failure_keeps_the_recording_and_raises(tmp_path):
    class Failing:
        description, width, height, fps = "failing", 64, 48, 30.0

        def __init__(self):
            self.count = 0

        def read(self):
            time.sleep(1 / 30)
            self.count += 1
            if self.count > 20:
                raise DeviceUnavailable("camera 0: stopped giving frames (unplugged?)")
            return np.full((48, 64, 3), self.count * 10, np.uint8)

        def interrupt(self):
            pass

        def close(self):
            pass

    out = tmp_path / "kept.mp4"
    with pytest.raises(DeviceUnavailable, match="unplugged"):
        Live(LiveSettings(window=False, record=out), source=Failing(), backend=Invert()).run()
    assert len(read_video(out)[2]) >= 5
    assert [p.name for p in tmp_path.iterdir()] == ["kept.mp4"]


def test_camera_source_reads_rgb_through_videocapture(clip):
    """No camera here: OpenCV's VideoCapture opens a file through the same code path."""
    c = clip(width=64, height=48, frames=5)
    camera = CameraSource(str(c.path))
    try:
        frame = camera.read()  # the second frame: the first was read to learn the size
    finally:
        camera.close()
    assert (camera.width, camera.height) == (64, 48) and frame.shape == (48, 64, 3)
    assert np.abs(frame.astype(int) - source_frames(c.path)[1].astype(int)).mean() < 6  # RGB, not BGR


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--size", "12x"], ExitStatus.BAD_INPUT, "--size must be WIDTHxHEIGHT"),
        (["--size", "4x4"], ExitStatus.BAD_INPUT, "--size must be between"),
        (["--device", "abc"], ExitStatus.BAD_INPUT, "--device must be a camera index"),
        (["--device", "7"], ExitStatus.DEVICE_UNAVAILABLE, "/dev/video7 does not exist"),
        (["--source", "{tmp}/missing.mp4"], ExitStatus.BAD_INPUT, "no such file"),
        (["--source", "{clip}", "--fps", "30"], ExitStatus.BAD_INPUT, "--fps is for cameras"),
        (["--source", "{clip}", "--virtual-cam"], ExitStatus.DEVICE_UNAVAILABLE, "modprobe v4l2loopback"),
        (["--source", "{clip}", "--record", "{clip}"], ExitStatus.BAD_INPUT, "is the input file"),
        (["--source", "{clip}", "--record", "{tmp}/o.txt"], ExitStatus.BAD_INPUT, "unknown output type"),
        (["--source", "{clip}", "--save-dir", "{tmp}/nodir"], ExitStatus.BAD_INPUT, "no such directory"),
        (["--source", "lavfi:nosuchfilter"], ExitStatus.BAD_INPUT, "cannot be opened"),
    ],
)
def test_errors_are_one_line_with_distinct_codes(clip, tmp_path, capsys, args, code, message):
    c = clip(frames=4)
    args = [a.format(tmp=tmp_path, clip=c.path) for a in args]
    before = set(tmp_path.iterdir())
    assert main(["webcam", "--no-window", "--backend", "classic", "--duration", "1", *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize(("display", "message"), [(None, "DISPLAY is not set"), (":4242", "cannot open display")])
def test_no_display_is_an_error_not_an_abort(clip, display, message):
    """Without a display Qt would abort the process (SIGABRT): vidtoon checks first."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    if display:
        env["DISPLAY"] = display
    proc = subprocess.run(
        [*VIDTOON, "webcam", "--source", str(clip(frames=4).path), "--backend", "classic"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == ExitStatus.DEVICE_UNAVAILABLE, proc.stderr
    assert message in proc.stderr and "--no-window" in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_stops_and_keeps_the_recording(clip, tmp_path):
    c = clip(frames=30, fps=30)
    out = tmp_path / "rec.mp4"
    proc = subprocess.Popen(
        [*VIDTOON, "webcam", "--source", str(c.path), "--no-window", "--backend", "classic", "--record", str(out)],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "never started recording"
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitStatus.SUCCESS, err
    assert "Traceback" not in err and "recorded" in err and "shown" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "rec.mp4"]
    assert len(read_video(out)[2]) >= 3


def test_url_source(clip):
    """Any URL PyAV opens; here a file over HTTP from a server on loopback. Not looped: it ends."""
    c = clip(frames=30, fps=30)
    handler = functools.partial(QuietHandler, directory=str(c.path.parent))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        serving = threading.Thread(target=server.serve_forever, name="test-http")
        serving.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/{c.path.name}"
            result = Live(LiveSettings(source=url, window=False, duration=30), backend=Invert()).run()
        finally:
            server.shutdown()
            serving.join()
    assert result.source.startswith(url) and 20 <= result.shown <= 30 and result.seconds < 10


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_pix2pix_runs_live_with_its_fastest_settings(clip, tmp_path, tiny_model):
    """The diffusion backend live: fewer steps, a small work size, the stream batch, and it says so."""
    c = clip(width=96, height=64, frames=30, fps=30)
    out = tmp_path / "live.mp4"
    proc = subprocess.run(
        [*VIDTOON, "webcam", "--source", str(c.path), "--no-window", "--duration", "4", "--record", str(out),
         "--backend", "pix2pix", "--model", str(tiny_model), "--steps", "20"],
        capture_output=True, text=True, timeout=180, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == ExitStatus.SUCCESS, proc.stderr
    assert "pix2pix live: 4 steps, frames worked at 256 px on the long side, in a stream batch" in proc.stderr
    assert "its cartoon 1 frame later" in proc.stderr
    assert "backend: pix2pix" in proc.stderr
    frames = read_video(out)[2]
    assert frames and frames[0].shape == (64, 96, 3)
    # Frames were cartoonized by the model, not passed through.
    assert nearest(frames[-1], source_frames(c.path)) > 1.0


def test_live_recipe_leaves_classic_alone_and_keeps_an_asked_size():
    from vidtoon.backends.pix2pix import Pix2PixSettings
    from vidtoon.config import Recipe
    from vidtoon.live.looks import live_recipe

    classic = Recipe(backend="classic")
    assert live_recipe(classic) == (classic, None)
    asked = Recipe(backend="pix2pix", settings={"pix2pix": Pix2PixSettings(steps=2, size=(320, 240))})
    fast, note = live_recipe(asked)
    assert fast.active.steps == 2 and fast.active.size == (320, 240) and fast.batch_size == 1
    assert "320x240" in note
