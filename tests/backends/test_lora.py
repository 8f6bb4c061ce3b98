"""--lora PATH_OR_ID [--lora-scale X] (vidtoon/backends/pix2pix/lora.py): a random LoRA for the tiny
model (testing.make_random_lora), fused at its scale through diffusers' load_lora_weights (peft),
its layers unloaded; safetensors only, from a file, a folder or the HF cache (offline)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from clips import picture

from vidtoon.backends import pix2pix
from vidtoon.backends.pix2pix import Pix2PixSettings, lora
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.backends.pix2pix.testing import _store_as_hf_cache, make_random_lora
from vidtoon.cli import ExitStatus, main
from vidtoon.errors import BackendUnavailable, SettingsError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

FRAMES = np.stack([picture(i, 64, 48) for i in range(2)])
LAYER = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"


@pytest.fixture(scope="module")
def lora_file(tiny_model, tmp_path_factory):
    parts = load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)
    return make_random_lora(parts.unet, tmp_path_factory.mktemp("lora"))


def run(tiny_model, **options):
    backend = pix2pix.load(Pix2PixSettings(model=str(tiny_model), steps=3, **options), batch_size=2)
    return backend, backend(FRAMES)


def test_scale_zero_is_no_lora_and_scale_one_changes_the_pictures(tiny_model, lora_file):
    _, plain = run(tiny_model)
    _, zero = run(tiny_model, lora=str(lora_file), lora_scale=0.0)
    backend, one = run(tiny_model, lora=str(lora_file))
    assert np.array_equal(zero, plain)
    assert np.abs(one.astype(int) - plain).mean() > 1
    assert np.array_equal(run(tiny_model, lora=str(lora_file))[1], one)  # deterministic
    assert f"LoRA {lora_file} fused at scale 1" in backend.summary


def test_the_lora_is_fused_at_its_scale_and_its_layers_unloaded(tiny_model, lora_file):
    from safetensors.torch import load_file

    weights = load_file(str(lora_file))
    a, b = weights[f"unet.{LAYER}.lora_A.weight"], weights[f"unet.{LAYER}.lora_B.weight"]
    plain = load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)
    parts = load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)
    lora.fuse(parts, lora_file, 0.5)
    fused = parts.unet.get_submodule(LAYER).weight
    torch.testing.assert_close(fused, plain.unet.get_submodule(LAYER).weight + 0.5 * b @ a, rtol=1e-5, atol=1e-6)
    assert not [name for name, _ in parts.unet.named_modules() if "lora" in name]  # plain layers again
    assert parts.unet.state_dict().keys() == plain.unet.state_dict().keys()


def test_a_folder_and_a_hugging_face_id_from_the_cache(tiny_model, lora_file, tmp_path, monkeypatch):
    from huggingface_hub import constants

    assert lora.locate(str(lora_file.parent)) == lora_file
    cache = tmp_path / "hub"
    _store_as_hf_cache(lora_file.parent, cache / "models--someone--tiny-lora")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    found = lora.locate("someone/tiny-lora", offline=True)
    assert found.name == lora_file.name and found.read_bytes() == lora_file.read_bytes()
    with pytest.raises(BackendUnavailable, match="--lora someone/other: not in the Hugging Face cache .* downloads are off"):
        lora.locate("someone/other", offline=True)


def test_a_pickled_lora_is_refused_in_one_line(tiny_model, lora_file, tmp_path, capsys, clip):
    pickled = tmp_path / "pytorch_lora_weights.bin"
    torch.save({"unet.x.lora_A.weight": torch.zeros(1)}, pickled)
    for given in (pickled, tmp_path):  # the file, and a folder holding only it
        with pytest.raises(BackendUnavailable, match=r"a pickle \(\.bin\); vidtoon loads LoRAs from \.safetensors only"):
            lora.locate(str(given))
    code = main(["cartoonize", str(clip(frames=2).path), "-o", str(tmp_path / "o.mp4"), "--backend", "pix2pix",
                 "--model", str(tiny_model), "--lora", str(pickled), "-q"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == ExitStatus.BACKEND_UNAVAILABLE and line.startswith("error: --lora ") and ".safetensors only" in line
    assert not (tmp_path / "o.mp4").exists()


def test_a_file_that_is_not_a_lora_for_this_model_is_refused(tiny_model, tmp_path):
    from safetensors.torch import save_file

    wrong = tmp_path / "wrong.safetensors"
    save_file({f"unet.{LAYER}.lora_A.weight": torch.zeros(4, 7), f"unet.{LAYER}.lora_B.weight": torch.zeros(32, 4)},
              str(wrong))
    with pytest.raises(BackendUnavailable, match="does not fit this model"):
        run(tiny_model, lora=str(wrong))


@pytest.mark.parametrize(("options", "message"), [
    (dict(lora=""), "--lora must be a file, a folder or a Hugging Face id"),
    (dict(lora="x.safetensors", lora_scale=5.0), "--lora-scale must be between 0 and 4"),
    (dict(lora_scale=0.5), "--lora-scale needs --lora"),
])
def test_bad_lora_settings(options, message):
    with pytest.raises(SettingsError, match=message):
        Pix2PixSettings(**options)


def test_the_cli_says_the_lora_in_its_one_backend_line_and_nothing_else(tiny_model, lora_file, tmp_path, clip):
    """The pipeline's import and a UNet-only LoRA make transformers and diffusers log lines that
    say nothing here (lora.QUIET); stderr holds vidtoon's own lines."""
    import os
    import subprocess
    import sys

    source = clip(frames=1).path
    done = subprocess.run([sys.executable, "-m", "vidtoon", "image", str(source), "-o", str(tmp_path / "o.png"),
                           "--backend", "pix2pix", "--model", str(tiny_model), "--steps", "2", "--max-side", "64",
                           "--lora", str(lora_file), "--scheduler", "lcm"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["backend:", "wrote"], lines
    assert "scheduler LCM (LCMScheduler)" in lines[0] and "fused at scale 1" in lines[0]
