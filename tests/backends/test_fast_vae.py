"""--fast-vae: decode with a tiny AutoencoderTiny (TAESD) instead of the model's VAE.
TAESD works in the UNet's scaled latent space, so it gets the latents as they are;
the image latents still come from the model's own VAE encoder."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import picture

from vidtoon.backends import pix2pix
from vidtoon.backends.pix2pix import TAESD_MODEL, Pix2PixSettings, ip2p
from vidtoon.backends.pix2pix.models import load_tiny_decoder
from vidtoon.backends.pix2pix.testing import make_tiny_decoder
from vidtoon.cli import build_parser, main, recipe_from_args
from vidtoon.errors import BackendUnavailable, SettingsError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory):
    return make_tiny_decoder(tmp_path_factory.mktemp("taesd"))


@pytest.mark.parametrize(("given", "expected"), [([], None), (["--fast-vae"], TAESD_MODEL), (["--fast-vae", "d/x"], "d/x")])
def test_cli_option(given, expected):
    args = build_parser().parse_args(["cartoonize", "in.mp4", "-o", "o.mp4", *given])
    assert recipe_from_args(args).settings["pix2pix"].fast_vae == expected


def test_empty_name_is_refused():
    with pytest.raises(SettingsError, match="--fast-vae must be"):
        Pix2PixSettings(fast_vae=" ")


def test_decodes_the_unscaled_latents_with_the_tiny_decoder(tiny_model, decoder_dir, monkeypatch):
    backend = pix2pix.load(Pix2PixSettings(model=str(tiny_model), fast_vae=str(decoder_dir), steps=2, offline=True))
    assert type(backend.decoder).__name__ == "AutoencoderTiny" and "decoding with" in backend.summary
    seen = {}
    denoise, tiny_decode = ip2p.denoise, backend.decoder.decode

    def record_denoise(*args, **kwargs):
        seen["latents"] = denoise(*args, **kwargs)
        return seen["latents"]

    def record_decode(latents, *args, **kwargs):
        seen["decoded"] = latents
        return tiny_decode(latents, *args, **kwargs)

    monkeypatch.setattr(ip2p, "denoise", record_denoise)
    monkeypatch.setattr(ip2p, "decode", lambda *a: pytest.fail("the model's VAE decoder ran"))
    monkeypatch.setattr(backend.decoder, "decode", record_decode)
    batch = np.stack([picture(i, 64, 48) for i in range(3)])
    out = backend(batch)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert torch.equal(seen["decoded"], seen["latents"])  # not divided by 0.18215


def test_missing_weights_are_one_clear_error(tmp_path):
    with pytest.raises(BackendUnavailable, match="--fast-vae .*no config.json and .safetensors"):
        load_tiny_decoder(str(tmp_path), False, torch.device("cpu"), torch.float32)
    with pytest.raises(BackendUnavailable, match="--fast-vae nobody/nothing: not in the Hugging Face cache"):
        load_tiny_decoder("nobody/nothing", True, torch.device("cpu"), torch.float32)


def test_cartoonize_with_fast_vae(clip, tiny_model, decoder_dir, tmp_path):
    c = clip(frames=4)
    out = tmp_path / "out.mp4"
    code = main(["cartoonize", str(c.path), "-o", str(out), "-q", "--backend", "pix2pix", "--model", str(tiny_model),
                 "--fast-vae", str(decoder_dir), "--steps", "2", "--offline"])
    assert code == 0 and out.is_file()
