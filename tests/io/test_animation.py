"""`-o out.gif` and `-o out.webp`: animations for sharing (io/animation.py), read back with
OpenCV's animation reader and, for WebP, checked in the file's own RIFF chunks."""

import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
from clips import CUES

from vidtoon.config import EncodeSettings, Job, Recipe
from vidtoon.pipeline import run
from vidtoon.progress import NoProgress


class Notes(NoProgress):
    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)


def cartoonize(source, target, **encode):
    notes = Notes()
    result = run(Job(source, target), Recipe(backend="classic", encode=EncodeSettings(**encode)), notes)
    return result, [n for n in notes.notes if not n.startswith("backend:")]


def read_animation(path):
    ok, animation = cv2.imreadanimation(str(path))
    assert ok, path
    return [f[..., :3] for f in animation.frames], list(animation.durations), animation.loop_count


def webp_chunks(path):
    """(fourcc, payload) of every top-level chunk after RIFF/WEBP."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, at = [], 12
    while at < len(data):
        kind, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append((kind, data[at + 8 : at + 8 + size]))
        at += 8 + size + size % 2
    return chunks


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_default_size_and_rate(clip, tmp_path, suffix):
    """A 30 fps 640x360 clip: 480x270 at 12 fps, each frame at its own time, looping; audio and
    subtitles left out, said in one note."""
    c = clip("in.mkv", width=640, height=360, fps=30, frames=30, subtitles=CUES)  # 1 s
    out = tmp_path / ("out" + suffix)
    result, notes = cartoonize(c.path, out)
    frames, durations, loop = read_animation(out)
    assert len(frames) == result.frames == 12 and frames[0].shape == (270, 480, 3)
    # slots of 1/12 s, each taking the first 30 fps frame in it: 0, 3, 5, 8, 10, ... (2 or 3 apart)
    assert sum(durations[:-1]) == pytest.approx(1000 * 28 / 30, abs=12)
    assert all(60 <= d <= 110 for d in durations[:-1]), durations
    assert loop == 0  # forever
    name = "GIF" if suffix == ".gif" else "WebP"
    assert notes == [f"animated {name} of 480x270 at up to 12 fps (from 640x360 at 30 fps; --anim-size and --anim-fps "
                     f"change that); audio and subtitles left out ({'a GIF' if suffix == '.gif' else 'an animated WebP'} holds no sound or subtitles)"]


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_pixels_are_the_cartoon(clip, tmp_path, suffix):
    c = clip("in.mp4", width=96, height=64, frames=6, audio=())
    mp4, anim = tmp_path / "out.mp4", tmp_path / ("out" + suffix)
    cartoonize(c.path, mp4, crf=0)
    result, notes = cartoonize(c.path, anim)
    assert notes == ["animated " + ("GIF" if suffix == ".gif" else "WebP") + " of 96x64 at 12 fps (from 96x64 at 12 fps; "
                     "--anim-size and --anim-fps change that)"]  # small and slow already: as it is, and no streams dropped
    frames, durations, _ = read_animation(anim)
    assert len(frames) == 6 and sum(durations[:-1]) == pytest.approx(5000 / 12, abs=10)
    capture = cv2.VideoCapture(str(mp4))
    for frame in frames:
        ok, expected = capture.read()
        assert ok
        # GIF: 256 colours a frame, ordered dithering; WebP: lossy at quality 75
        assert np.abs(frame.astype(int) - expected).mean() < 8


def test_size_and_rate_options_and_vfr(clip, tmp_path):
    c = clip("in.mp4", width=320, height=240, frames=20, vfr=True, audio=())
    out = tmp_path / "out.webp"
    _, notes = cartoonize(c.path, out, anim_size=100, anim_fps=5)
    frames, durations, _ = read_animation(out)
    assert frames[0].shape == (75, 100, 3) and "100x75 at up to 5 fps" in notes[0]
    times = np.cumsum([0, *durations[:-1]]) / 1000
    source = [p * float(c.time_base) for p in c.pts]
    # every kept frame at its source time, one in each 1/5 s slot that has a frame
    assert all(any(abs(t - s) < 1e-3 for s in source) for t in times)
    assert len(times) == len({int(s * 5 + 1e-3) for s in source})
    vp8x = dict(webp_chunks(out))[b"VP8X"]
    assert 1 + int.from_bytes(vp8x[4:7], "little") == 100 and 1 + int.from_bytes(vp8x[7:10], "little") == 75
    assert sum(kind == b"ANMF" for kind, _ in webp_chunks(out)) == len(frames)


def test_cli_gif_with_compare(clip, tmp_path):
    c = clip("in.mp4", width=160, height=90, frames=4)
    out = tmp_path / "out.gif"
    proc = subprocess.run([sys.executable, "-m", "vidtoon", "cartoonize", str(c.path), "-o", str(out), "--compare"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "animated GIF of 320x90 at 12 fps" in proc.stderr and "audio left out (a GIF holds no sound or subtitles)" in proc.stderr
    assert out.read_bytes()[:6] == b"GIF89a" and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.gif"]
    frames, _, _ = read_animation(out)
    assert len(frames) == 4 and frames[0].shape == (90, 320, 3)


def test_encoder_options_that_do_not_apply_are_refused(clip, tmp_path):
    from vidtoon.errors import SettingsError

    c = clip(frames=2)
    for encode, message in ((dict(crf=20), "gif has no --crf"), (dict(codec="libx264"), "libx264 cannot be written into .gif"),
                            (dict(anim_fps=0), "--anim-fps must be between 1 and 50"),
                            (dict(anim_size=8), "--anim-size must be between 16 and 4096")):
        with pytest.raises(SettingsError, match=message):
            cartoonize(c.path, tmp_path / "o.gif", **encode)
    assert not list(tmp_path.glob("*.gif")) and not list(tmp_path.glob(".*.part"))
