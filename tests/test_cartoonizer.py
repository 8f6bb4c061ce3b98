"""The Cartoonizer, the one object every loop uses: backend, then the stabiliser
(--stabilize, after any backend), then --compare; and the loops that use it."""

import subprocess
import sys

import numpy as np
import pytest
from clips import make_clip, read_video

from vidtoon.backends.classic import ClassicSettings
from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.cartoonizer import Cartoonizer
from vidtoon.config import EncodeSettings, Recipe
from vidtoon.live import Live, LiveSettings
from vidtoon.temporal.stabilize import Stabilizer


class Flicker:
    """A backend whose every call shifts the brightness up or down by 40: the worst
    flicker there is, on any source."""

    name = "flicker"
    summary = ""
    batch_size = 1

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        shift = 40 if self.calls % 2 else -40
        return (batch.astype(np.int16) + shift).clip(0, 255).astype(np.uint8)

    def reset(self):
        self.calls = 0


def still_frames(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = rng.integers(40, 200, (48, 64, 3), dtype=np.uint8)
    return np.stack([frame] * count)


def test_the_stages_in_order(clip):
    sources = still_frames(4)
    plain, _ = Cartoonizer.build(Recipe(backend="classic"))
    assert np.array_equal(plain(sources), ClassicBackend()(sources))
    both, why = Cartoonizer.build(Recipe(backend="classic", stabilize=True, compare=True))
    assert why == "as asked; style cel" and both.notes == ["temporal stage: stabilize"]
    out = both(sources)
    assert out.shape == (4, 48, 128, 3)
    assert np.array_equal(out[:, :, :64], sources)  # the source on the left
    assert np.array_equal(out[:, :, 64:], Stabilizer()(sources, ClassicBackend()(sources)))


def test_the_stabiliser_runs_after_a_backend_of_any_name():
    sources = still_frames(6)
    steady, why = Cartoonizer.build(Recipe(stabilize=True), backend=Flicker())
    out = steady(sources).astype(int)
    raw = Flicker()
    flicker = np.stack([raw(s[None])[0] for s in sources]).astype(int)
    assert why == "given"
    assert np.abs(np.diff(out, axis=0)).mean() < 0.5 * np.abs(np.diff(flicker, axis=0)).mean()


def test_reset_forgets_the_last_clip():
    sources = still_frames(3)
    cartoonizer, _ = Cartoonizer.build(Recipe(stabilize=True), backend=Flicker())
    first = cartoonizer(sources)
    cartoonizer(still_frames(3, seed=1))
    cartoonizer.reset()
    assert np.array_equal(cartoonizer(sources), first)


def test_batch_size_comes_from_the_recipe_for_a_given_backend_else_from_the_backend():
    assert Cartoonizer.build(Recipe(batch_size=3), backend=Flicker())[0].batch_size == 3
    assert Cartoonizer.build(Recipe(), backend=Flicker())[0].batch_size == 1
    assert Cartoonizer.build(Recipe(backend="classic", batch_size=5))[0].batch_size == 5
    assert Cartoonizer.build(Recipe(backend="classic"))[0].batch_size == ClassicBackend.BATCH_SIZE


def test_python_api_frames_take_any_recipe_option():
    import vidtoon

    sources = still_frames(3)
    got = np.stack(list(vidtoon.cartoonize_frames(iter(sources), batch_size=2, levels=4, compare=True)))
    assert np.array_equal(got[:, :, 64:], ClassicBackend(ClassicSettings(levels=4))(sources))


def test_webcam_stabilize_steadies_what_is_shown(tmp_path):
    """Regression: `vidtoon webcam --stabilize` was accepted and did nothing. A still
    source through a flickering backend: stabilised, consecutive recorded frames
    differ far less than without."""
    source = make_clip(tmp_path / "still.mp4", width=64, height=48, frames=30, fps=30,
                       draw=lambda i, w, h: still_frames(1)[0]).path

    def recorded(stabilize: bool) -> np.ndarray:
        out = tmp_path / f"live-{stabilize}.mp4"
        recipe = Recipe(stabilize=stabilize, encode=EncodeSettings(crf=0))
        Live(LiveSettings(recipe=recipe, source=str(source), window=False, duration=1.5, record=out),
             backend=Flicker()).run()
        return np.stack(read_video(out)[2][5:]).astype(int)  # past the first frames

    def change(frames):
        return np.abs(np.diff(frames, axis=0)).mean()

    plain, steady = recorded(False), recorded(True)
    assert len(plain) > 10 and len(steady) > 10
    assert change(steady) < 0.5 * change(plain), (change(steady), change(plain))


def test_webcam_cli_says_the_stabiliser_runs(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=10).path
    proc = subprocess.run([sys.executable, "-m", "vidtoon", "webcam", "--source", str(source), "--no-window",
                           "--duration", "0.5", "--backend", "classic", "--stabilize"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "temporal stage: stabilize" in proc.stderr


@pytest.mark.parametrize("command", [["cartoonize", "IN", "-o", "OUT"], ["image", "IN", "-o", "OUT.png"]])
def test_compare_is_side_by_side_in_files_and_pictures(tmp_path, command):
    source = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=3).path
    out = tmp_path / "o.mp4"
    args = [str(source) if a == "IN" else str(out) if a == "OUT" else str(out.with_suffix(".png")) if a == "OUT.png"
            else a for a in command]
    proc = subprocess.run([sys.executable, "-m", "vidtoon", *args, "--backend", "classic", "--compare", "-q"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if command[0] == "image":
        import cv2

        assert cv2.imread(str(out.with_suffix(".png"))).shape == (48, 128, 3)
    else:
        assert read_video(out)[2][0].shape == (48, 128, 3)


def test_the_public_api_keeps_working(clip, tmp_path, monkeypatch):
    """vidtoon.cartoonize, cartoonize_frames, open_video, VideoWriter and Live, and the
    lower-level imports the README showed before the layout changed (with a warning)."""
    import vidtoon

    for old in ("vidtoon.reader", "vidtoon.writer"):  # imported afresh, so that they warn here
        monkeypatch.delitem(sys.modules, old, raising=False)

    c = clip(frames=3)
    with pytest.warns(DeprecationWarning, match="moved to vidtoon.io.reader"):
        from vidtoon.reader import open_video
    with pytest.warns(DeprecationWarning, match="moved to vidtoon.io.writer"):
        from vidtoon.writer import VideoWriter
    assert open_video is vidtoon.open_video and VideoWriter is vidtoon.VideoWriter and vidtoon.Live is Live
    with vidtoon.open_video(c.path) as video, vidtoon.VideoWriter(tmp_path / "o.mkv", video.info) as writer:
        for frame in video.frames():
            writer.write(frame.with_rgb(255 - frame.rgb))
    assert len(read_video(tmp_path / "o.mkv")[2]) == 3
