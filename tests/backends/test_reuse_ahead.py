"""--reuse-latents works out a batch's flows ahead, on a CPU thread, while the VAE and the UNet
work (LatentReuse.look_ahead): the same pictures as taking each flow when its frame comes, and a
batch that fails part-way (out of memory) is retried from the same state (frame by frame here;
in groups: tests/backends/test_reuse_batch.py)."""

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import panning
from rounding import agree_within_rounding

from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.latents import LatentReuse
from vidtoon.backends.pix2pix.models import load_components, locate

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

SETTINGS = Pix2PixSettings(steps=4, reuse_latents=0.5, reuse_batch=1)
BATCH = np.stack([panning()(i, 64, 48) for i in range(5)])


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


@pytest.mark.parametrize("group", [1, 4])
def test_the_flows_ahead_give_the_pictures_of_the_flows_in_turn(parts, monkeypatch, group):
    threads = []
    real = LatentReuse.follow
    monkeypatch.setattr(LatentReuse, "follow", lambda self, f: threads.append(threading.current_thread().name) or real(self, f))
    settings = Pix2PixSettings(steps=4, reuse_latents=0.5, reuse_batch=group)
    ahead = Pix2PixBackend(parts, settings, batch_size=5)(BATCH)
    assert len(threads) == 5 and all(name.startswith("vidtoon-flow") for name in threads)
    threads.clear()
    monkeypatch.setattr(LatentReuse, "look_ahead", lambda self, sources: None)
    in_turn = Pix2PixBackend(parts, settings, batch_size=5)(BATCH)
    assert threads == ["MainThread"] * 5
    assert np.array_equal(ahead, in_turn)


def test_a_batch_that_fails_part_way_is_retried_from_the_same_flows_and_latents(parts, monkeypatch):
    reference = Pix2PixBackend(parts, SETTINGS, batch_size=2)(BATCH)
    backend = Pix2PixBackend(parts, SETTINGS, batch_size=4)
    real, calls = backend._denoise_reused, []

    def denoise(frame, image_latent):
        calls.append(len(calls))
        if len(calls) == 3:  # the third frame of the first batch of 4: its flow is taken, the fourth's is ahead
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(frame, image_latent)  # one frame a group: one frame a call

    monkeypatch.setattr(backend, "_denoise_reused", denoise)
    out = backend(BATCH)
    assert backend.batch_size == 2 and len(calls) == 3 + 5  # the batch of 4 failed; then 2, 2, 1
    agree_within_rounding(out, reference)  # VAE batches of 2 both ways, the UNet one frame a call
