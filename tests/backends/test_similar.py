"""The webcam's pix2pix path: its faster settings, said in one line, and the stochastic similarity
filter (vidtoon/backends/pix2pix/similar.py) that skips the model on frames that barely changed."""

import numpy as np
import pytest
from clips import picture

from vidtoon.backends import pix2pix
from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.backends.pix2pix.similar import MAX_SKIPS, SimilarityFilter, similarity
from vidtoon.errors import SettingsError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


class Counting:
    """A stand-in backend: each output frame is the input inverted plus the run's number."""

    name, summary, batch_size = "fake", "fake backend", 1

    def __init__(self):
        self.ran = []  # frames per call
        self.resets = 0

    def __call__(self, batch):
        self.ran.append(len(batch))
        return (255 - batch) // 2 + len(self.ran)

    def reset(self):
        self.resets += 1


def still(n, noise=0, seed=0):
    """n frames of one picture, each with small noise of +-`noise` levels."""
    rng = np.random.default_rng(seed)
    base = picture(0, 64, 48).astype(int)
    return np.stack([(base + rng.integers(-noise, noise + 1, base.shape)).clip(0, 255).astype(np.uint8) for _ in range(n)])


def test_similarity_is_the_cosine_in_minus_one_to_one():
    a = picture(0, 64, 48)
    assert similarity(a, a) == pytest.approx(1.0)
    assert similarity(a, 255 - a) == pytest.approx(-1.0, abs=1e-2)
    assert similarity(a, picture(30, 64, 48)) < 0.98 < similarity(a, still(1, noise=2)[0])


def test_an_unchanged_frame_repeats_the_last_cartoon_and_the_model_is_not_run():
    inner = Counting()
    backend = SimilarityFilter(inner, 0.98)
    frames = still(5)
    out = np.concatenate([backend(frames[i : i + 1]) for i in range(5)])  # one frame a call, as live
    assert inner.ran == [1] and backend.skipped == 4  # identical frames: skip chance 1
    assert all(np.array_equal(frame, out[0]) for frame in out)
    changed = backend(picture(30, 64, 48)[None])
    assert inner.ran == [1, 1] and not np.array_equal(changed[0], out[0])


def test_after_max_skips_in_a_row_a_frame_runs():
    inner = Counting()
    backend = SimilarityFilter(inner, 0.98)
    backend(still(2 * MAX_SKIPS + 3))
    assert inner.ran == [3] and backend.skipped == 2 * MAX_SKIPS  # run, 10 skipped, run, 10 skipped, run


def test_different_frames_always_run_and_the_draws_repeat_per_clip():
    inner = Counting()
    backend = SimilarityFilter(inner, 0.98)
    moving = np.stack([picture(i * 10, 64, 48) for i in range(6)])
    backend(moving)
    assert inner.ran == [6] and backend.skipped == 0
    noisy = still(40, noise=6, seed=1)  # close to the first frame: some skipped, by chance
    backend.reset()
    first = backend(noisy) - len(inner.ran)  # less the fake's call number
    skipped = backend.skipped
    assert 0 < skipped < 39 and inner.ran[-1] == 40 - skipped
    backend.reset()
    again = backend(noisy) - len(inner.ran)
    assert np.array_equal(again, first) and backend.skipped == skipped  # seeded per clip: the same frames skipped
    assert inner.resets == 3  # its own reset at start and each of ours, passed on


def test_live_takes_the_faster_settings_and_says_them_in_one_line():
    fast, note = pix2pix.live(Pix2PixSettings())
    assert (fast.steps, fast.scheduler, fast.image_guidance, fast.reuse_latents, fast.skip_similar) == (4, "dpm++", 1.0, 0.5, 0.98)
    assert "\n" not in note and note.startswith("pix2pix live: 4 steps, frames worked at 256 px on the long side, in a stream batch")
    for said in ("scheduler dpm++", "image guidance 1", "frames that barely changed (similarity 0.98)"):
        assert said in note
    asked, note = pix2pix.live(Pix2PixSettings(scheduler="euler", image_guidance=1.2, skip_similar=1.0))
    assert (asked.scheduler, asked.image_guidance, asked.skip_similar) == ("euler", 1.2, 1.0)
    assert "every frame through the model" in note


def test_the_filter_wraps_the_loaded_backend(tiny_model):
    pytest.importorskip("diffusers")
    backend = pix2pix.load(Pix2PixSettings(model=str(tiny_model), steps=2, skip_similar=0.98), batch_size=1)
    assert isinstance(backend, SimilarityFilter) and "similarity 0.98" in backend.summary
    frames = still(3)
    out = backend(frames)
    assert backend.skipped == 2 and np.array_equal(out[1], out[0])
    plain = pix2pix.load(Pix2PixSettings(model=str(tiny_model), steps=2, skip_similar=1.0), batch_size=1)
    assert not isinstance(plain, SimilarityFilter)
    with pytest.raises(SettingsError, match="--skip-similar must be between 0.5 and 1"):
        Pix2PixSettings(skip_similar=0.2)
