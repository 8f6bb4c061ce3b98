"""The real preview window, on a private Xvfb display: real key events (XTEST)
and screenshots of what the window shows, compared pixel by pixel with the
classic filter applied to the source's own frames."""

import subprocess
import sys
import time

import looks
import numpy as np
import pytest
from clips import panning

from vidtoon.io.reader import open_video
from vidtoon.live.looks import PRESETS

VIDTOON = [sys.executable, "-m", "vidtoon"]


@pytest.fixture(scope="module")
def xdisplay():
    from xdisplay import XDisplay

    try:
        display = XDisplay(1024, 768)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with display:
        yield display


def nearest(image, candidates):
    """Mean absolute difference to the closest of `candidates`."""
    return min(np.abs(image.astype(int) - c.astype(int)).mean() for c in candidates)


def wait_until(condition, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start(xdisplay, clip_path, *args):
    return subprocess.Popen(
        [*VIDTOON, "webcam", "--source", str(clip_path), "--backend", "classic", *map(str, args)],
        env=xdisplay.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc, timeout=20):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"vidtoon did not exit: {err}") from None
    return proc.returncode, err


def test_window_shows_the_cartoon_and_obeys_keys(xdisplay, clip, tmp_path):
    import cv2

    c = clip(width=320, height=240, frames=30, fps=30, draw=panning(speed=(0.3, 0.0)))  # one palette over the loop
    with open_video(c.path) as video:
        originals = [f.rgb for f in video.frames()]
    # --steady 0: every frame on its own, so what is shown is one of these; the palette is
    # fitted on the first frame processed, and a new look's on whichever came after the key
    cartoons = looks.cartoons(originals, fitted_on=range(3))

    def thumb(image):
        return cv2.resize(image, (80, 60), interpolation=cv2.INTER_AREA)

    bold = looks.cartoons(originals, PRESETS[3].classic, fitted_on=range(len(originals)), keep=thumb)
    saved = tmp_path / "saved"
    saved.mkdir()
    proc = start(xdisplay, c.path, "--save-dir", saved, "--steady", "0")
    try:
        window = xdisplay.find_window("vidtoon", proc=proc)
        shot = xdisplay.screenshot(window)
        assert shot.shape == (240, 320, 3)  # the window is the picture, 1:1
        # The overlay sits top left; below it is the cartoon of a source frame.
        wait_until(lambda: nearest(xdisplay.screenshot(window)[120:], [f[120:] for f in cartoons]) < 1, "a cartoon")
        shot = xdisplay.screenshot(window)
        assert nearest(shot[:30, :160], [f[:30, :160] for f in cartoons]) > 10, "no overlay"

        xdisplay.press(window, "h")  # overlay off: the whole window is a cartoon frame
        wait_until(lambda: nearest(xdisplay.screenshot(window), cartoons) < 1, "the overlay to go")
        assert nearest(xdisplay.screenshot(window), originals) > 8

        xdisplay.press(window, "space")  # the original
        wait_until(lambda: nearest(xdisplay.screenshot(window), originals) < 1, "the original view")

        xdisplay.press(window, "space")
        wait_until(lambda: nearest(xdisplay.screenshot(window), cartoons) < 1, "the cartoon view again")
        xdisplay.press(window, "3")  # preset 3, the comic style
        wait_until(lambda: nearest(thumb(xdisplay.screenshot(window)), bold) < 1, "preset 3")
        assert nearest(xdisplay.screenshot(window), cartoons) > 3

        xdisplay.press(window, "s")  # snapshot
        wait_until(lambda: list(saved.glob("*.png")), "a snapshot")
        (png,) = saved.glob("*.png")
        assert nearest(thumb(cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)), bold) < 0.5

        xdisplay.press(window, "r")  # record for a second
        wait_until(lambda: list(saved.glob(".*.part")), "recording to start")
        time.sleep(1.0)
        xdisplay.press(window, "r")
        wait_until(lambda: list(saved.glob("*.mp4")), "the recording")

        xdisplay.press(window, "q")
        code, err = finish(proc)
    finally:
        proc.kill()
        proc.wait()
    assert code == 0, err
    assert "Traceback" not in err and "preset 3: comic" in err and "saved" in err
    (mp4,) = saved.glob("*.mp4")
    from clips import read_video

    assert len(read_video(mp4)[2]) >= 3  # ~30 in a second on an idle machine; far fewer under load
    assert not list(saved.glob(".*.part"))


def test_closing_the_window_ends_the_session_and_keeps_the_recording(xdisplay, clip, tmp_path):
    c = clip(width=160, height=120, frames=30, fps=30)
    out = tmp_path / "rec.mp4"
    proc = start(xdisplay, c.path, "--record", out)
    try:
        window = xdisplay.find_window("vidtoon", proc=proc)
        time.sleep(1.0)
        xdisplay.close_window(window)  # the window manager's close button
        code, err = finish(proc)
    finally:
        proc.kill()
        proc.wait()
    assert code == 0, err
    from clips import read_video

    assert len(read_video(out)[2]) >= 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "rec.mp4"]


def test_window_refuses_to_open_after_pyav_instead_of_hanging(xdisplay):
    """PyAV's bundled libxcb, loaded before OpenCV, makes the window hang at 100% CPU
    for good (PyAV issue #978); vidtoon says so instead."""
    code = "import av\nfrom vidtoon.live.preview import Preview\nPreview(64, 48)"
    proc = subprocess.run([sys.executable, "-c", code], env=xdisplay.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "PyAV was imported before OpenCV" in proc.stderr
