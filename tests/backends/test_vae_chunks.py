"""The VAE stages in memory-sized chunks (backends/pix2pix/vae.py): sized from the free CUDA
memory, whole batches on a CPU, and an out-of-memory in the VAE (simulated here) redoes only
the VAE chunk, smaller, never the denoising."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import picture

from vidtoon.backends.pix2pix import Pix2PixSettings, ip2p, vae
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.backends.pix2pix.testing import FULL_VAE
from vidtoon.errors import BackendUnavailable

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

FAST = dict(steps=4)
GiB = 2**30


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


def frames(n=4, width=64, height=48):
    return np.stack([picture(i, width, height) for i in range(n)])


def agree_within_rounding(a, b):
    """As in test_pix2pix.py: CPU kernels round differently by batch size."""
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3


def test_the_estimate_is_the_counted_sd15_peak():
    """SD1.5's VAE in fp16 at 512x512: 384 MiB a frame in the decoder, so a batch of 16
    is the counted 6 GiB (and 5 GiB in the encoder)."""
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        full = AutoencoderKL(**FULL_VAE)
    assert vae.frame_bytes(full, "decode", 512, 512, torch.float16) * 16 == 6 * GiB
    assert vae.frame_bytes(full, "encode", 512, 512, torch.float16) * 16 == 5 * GiB
    assert vae.chunk_size(free=4 * GiB, frame_bytes=384 * 2**20, frames=16) == 8  # 80% of 4 GiB
    assert vae.chunk_size(free=100 * GiB, frame_bytes=384 * 2**20, frames=16) == 16
    assert vae.chunk_size(free=0, frame_bytes=384 * 2**20, frames=16) == 1


def test_chunks_follow_the_free_cuda_memory(parts, monkeypatch):
    """CUDA's memory queries faked: the chunk is what fits in 80% of the free memory plus
    what torch's allocator holds unused; the result is the whole batch's."""
    per_frame = vae.frame_bytes(parts.vae, "decode", 48, 64, torch.float32)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * per_frame, 80 * GiB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 3 * per_frame)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 2 * per_frame)
    chunks = vae.VaeChunks(torch.device("cuda"))
    latents = torch.randn(7, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    sizes = []
    with torch.inference_mode():
        out = chunks("decode", parts.vae, lambda c: sizes.append(len(c)) or ip2p.decode(parts.vae, c), latents)
        whole = ip2p.decode(parts.vae, latents)
    assert sizes == [2, 2, 2, 1]  # int(0.8 x 3 frames' worth) = 2 frames a call
    torch.testing.assert_close(out, whole, atol=1e-5, rtol=0)
    cpu = vae.VaeChunks(torch.device("cpu"))
    sizes.clear()
    with torch.inference_mode():
        cpu("decode", parts.vae, lambda c: sizes.append(len(c)) or ip2p.decode(parts.vae, c), latents)
    assert sizes == [7]  # no chunking on a CPU


@pytest.mark.parametrize("stage", ["decode", "encode_images"])
def test_out_of_memory_in_the_vae_redoes_only_the_vae(parts, monkeypatch, stage):
    batch = frames(4)
    reference = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=4)(batch)
    backend = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=4)
    real, tried = getattr(ip2p, stage), []

    def short_of_memory(model, x):
        tried.append(len(x))
        if len(x) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, x)

    monkeypatch.setattr(ip2p, stage, short_of_memory)
    unet_calls = []
    hook = parts.unet.register_forward_hook(lambda module, args, out: unet_calls.append(args[0].shape[0] // 3))
    try:
        out = backend(batch)
        assert unet_calls == [4] * 4  # the 4 steps once, for the whole batch: nothing redone
        assert tried == [4, 2, 1, 1, 1, 1] and backend.vae_chunks.cap == 1 and backend.batch_size == 4
        tried.clear()
        backend(batch[:2])
        assert tried == [1, 1]  # later batches keep the smaller chunk
    finally:
        hook.remove()
    agree_within_rounding(out, reference)


def test_out_of_memory_for_one_frame_in_the_vae_is_one_line(parts, monkeypatch):
    backend = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=2)

    def no_memory(model, x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(ip2p, "decode", no_memory)
    with pytest.raises(BackendUnavailable, match=r"^out of GPU memory in the VAE decode of one 64x48 frame; lower --max-side"):
        backend(frames(2))
