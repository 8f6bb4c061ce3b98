"""Exact cheaper guidance (ip2p.branches): at image guidance 1 the unconditional branch cancels
out of IP2P's formula, so two UNet samples per frame and step give the three-sample result
(up to float rounding: tests/helpers/rounding.py); guidance off, one sample."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import picture
from rounding import agree_within_rounding

from vidtoon.backends.pix2pix import Pix2PixSettings, ip2p
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.models import load_components, locate

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


def frames(n=3, width=64, height=48):
    return np.stack([picture(i, width, height) for i in range(n)])


class Counted:
    """UNet samples per call, through a forward hook."""

    def __init__(self, unet):
        self.calls = []
        self._hook = unet.register_forward_hook(lambda module, args, out: self.calls.append(args[0].shape[0]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._hook.remove()


@pytest.mark.parametrize(("guidance", "image_guidance", "count"),
                         [(7.0, 1.5, 3), (7.0, 1.0, 2), (1.0, 1.0, 1), (7.0, 0.5, 1), (1.0, 1.5, 1), (0.5, 1.0, 1)])
def test_the_branches_follow_the_formula(guidance, image_guidance, count):
    assert ip2p.branches(guidance, image_guidance) == count


def test_two_branches_equal_three_at_image_guidance_one_in_the_loop(parts):
    """The latents after every step of a run, three branches against two, same noise and generators."""
    three = ip2p.encode_prompt(parts.tokenizer, parts.text_encoder, "Cartoonize", 3)
    two = ip2p.encode_prompt(parts.tokenizer, parts.text_encoder, "Cartoonize", 2)
    assert torch.equal(three[:2], two)

    def run(embeds, image_guidance=1.0):
        scheduler = type(parts.scheduler).from_config(parts.scheduler.config)
        scheduler.set_timesteps(4)
        g = torch.Generator().manual_seed(0)
        latents = torch.randn(2, 4, 6, 8, generator=g) * scheduler.init_noise_sigma
        with torch.inference_mode():
            image_latents = ip2p.encode_images(parts.vae, torch.rand(2, 3, 48, 64, generator=g) * 2 - 1)
            return ip2p.denoise(parts.unet, scheduler, latents, image_latents, embeds, 7.0, image_guidance,
                                [torch.Generator().manual_seed(1) for _ in range(2)])

    # Float rounding, not another formula: the two forms (and UNet batches of 4 and 6) differ by
    # a few float32 ulps of the noise (terms near 1, guidance 7), which Euler multiplies by sigma
    # (~15 at the start): 2.4e-5 at most here; the bound leaves 20x for other CPUs' kernels.
    # Another formula is far outside it: image guidance 1.1 instead of 1 moves them by 0.14.
    torch.testing.assert_close(run(two), run(three), rtol=0, atol=5e-4)
    assert (run(three, 1.1) - run(three)).abs().max() > 0.05
    with pytest.raises(ValueError, match="exact only at image guidance 1"):
        ip2p.denoise(parts.unet, parts.scheduler, torch.zeros(1, 4, 6, 8), torch.zeros(1, 4, 6, 8), two, 7.0, 1.5, [])


@pytest.mark.parametrize("cross_frame", [False, True])
def test_two_passes_give_the_three_pass_pictures_with_two_thirds_of_the_unet(parts, cross_frame):
    settings = Pix2PixSettings(steps=4, image_guidance=1.0, cross_frame=cross_frame)
    batch = frames()
    with Counted(parts.unet) as counted:
        cheap = Pix2PixBackend(parts, settings, batch_size=3)(batch)
    assert counted.calls == [2 * 3] * 4  # [text | image] for 3 frames, 4 steps: 8 samples a frame
    forced = Pix2PixBackend(parts, settings, batch_size=3)
    forced.branches = 3  # the full formula, image_guidance * (image - none) with image_guidance 1
    with Counted(parts.unet) as counted:
        full = forced(batch)
    assert counted.calls == [3 * 3] * 4
    agree_within_rounding(cheap, full)
    assert cheap.std() > 5  # pictures, not a flat fill


def test_guidance_one_and_image_guidance_one_run_one_pass(parts):
    with Counted(parts.unet) as counted:
        out = Pix2PixBackend(parts, Pix2PixSettings(steps=4, guidance=1.0, image_guidance=1.0), batch_size=3)(frames())
    assert counted.calls == [3] * 4 and out.std() > 5
