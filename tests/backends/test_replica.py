"""The real cartoonizer's layout, offline, with tiny weights (testing.make_cartoonizer_replica):
every part a pickle (.bin, fp32), safety_checker/ and feature_extractor/ present, the real
Euler-ancestral scheduler config ("linspace": float timesteps, start noise sigma ~14.6), in
an HF cache of blobs and symlinks. Loaded through the DEFAULT --model id, it gives diffusers'
StableDiffusionInstructPix2PixPipeline's picture to the byte, and stderr holds only vidtoon's lines."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import picture

from vidtoon.backends.pix2pix import MODEL_ID, Pix2PixSettings
from vidtoon.backends.pix2pix.models import check_pickles
from vidtoon.backends.pix2pix.testing import CARTOONIZER, make_cartoonizer_replica

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

ENTRY = "models--instruction-tuning-sd--cartoonizer"
WEIGHTS = ["safety_checker/pytorch_model.bin", "text_encoder/pytorch_model.bin", "unet/diffusion_pytorch_model.bin",
           "vae/diffusion_pytorch_model.bin"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    torch.set_num_threads(1)  # as the tiny_model fixture: the subprocesses run with OMP_NUM_THREADS=1
    return make_cartoonizer_replica(tmp_path_factory.mktemp("hub"))


def snapshot(hub):
    (folder,) = (hub / ENTRY / "snapshots").iterdir()
    return folder


def run_cli(hub, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "vidtoon", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def test_the_replica_is_the_real_layout(hub):
    assert CARTOONIZER == MODEL_ID == Pix2PixSettings().model  # the default --model
    folder = snapshot(hub)
    assert (hub / ENTRY / "refs" / "main").read_text() == folder.name
    files = [p for p in folder.rglob("*") if not p.is_dir()]
    assert files and all(p.is_symlink() and p.resolve().parent == (hub / ENTRY / "blobs").resolve() for p in files)
    assert sorted(str(p.relative_to(folder)) for p in files if p.suffix in (".bin", ".safetensors")) == WEIGHTS
    for name in WEIGHTS:
        state = torch.load(folder / name, weights_only=True)
        assert {t.dtype for t in state.values()} == {torch.float32}, name
    assert (folder / "feature_extractor" / "preprocessor_config.json").is_file()
    assert sorted(p.name for p in (folder / "tokenizer").iterdir())[-2:] == ["tokenizer_config.json", "vocab.json"]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["safety_checker"] == ["stable_diffusion", "StableDiffusionSafetyChecker"] and index["requires_safety_checker"]
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert config["_class_name"] == "EulerAncestralDiscreteScheduler" and "timestep_spacing" not in config
    assert (config["beta_start"], config["beta_end"], config["beta_schedule"], config["num_train_timesteps"]) == (
        0.00085, 0.012, "scaled_linear", 1000)
    from diffusers import EulerAncestralDiscreteScheduler

    scheduler = EulerAncestralDiscreteScheduler.from_pretrained(folder, subfolder="scheduler")
    scheduler.set_timesteps(20)
    assert scheduler.config.timestep_spacing == "linspace"
    assert scheduler.init_noise_sigma == pytest.approx(14.61, abs=0.01)
    assert (scheduler.timesteps != scheduler.timesteps.round()).any()  # float timesteps


def test_every_pickle_is_checked_through_the_snapshot_links(hub, monkeypatch):
    read = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda path, **kw: read.append(path) or real(path, **kw))
    check_pickles(snapshot(hub))
    assert sorted(str(p.relative_to(snapshot(hub))) for p in read) == WEIGHTS


def test_the_default_model_gives_the_diffusers_pipelines_picture(hub, tmp_path):
    """`vidtoon image` with no --model, HF_HUB_CACHE at the replica, offline: one frame, the
    same bytes as StableDiffusionInstructPix2PixPipeline loaded from the same cache by the same id;
    stderr holds vidtoon's own two lines, and no library warning."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    frame = picture(3, 64, 48)
    cv2.imwrite(str(tmp_path / "in.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    proc = run_cli(hub, "image", tmp_path / "in.png", "-o", tmp_path / "out.png", "--backend", "pix2pix",
                   "--steps", "6", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"backend: pix2pix (as asked; {MODEL_ID} on cpu in float32")
    assert lines[1].startswith("wrote "), lines
    ours = cv2.cvtColor(cv2.imread(str(tmp_path / "out.png")), cv2.COLOR_BGR2RGB)

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
        MODEL_ID, cache_dir=str(hub), local_files_only=True, use_safetensors=False, safety_checker=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler" and pipe.unet.dtype == torch.float32
    noise = torch.randn((1, 4, 6, 8), generator=torch.Generator().manual_seed(5))  # the backend's clip noise
    image = torch.from_numpy(frame[None]).permute(0, 3, 1, 2).float() / 255  # float [0, 1], never uint8
    theirs = pipe(Pix2PixSettings().prompt, image=image, num_inference_steps=6, guidance_scale=7.0,
                  image_guidance_scale=1.5, latents=noise, generator=[torch.Generator().manual_seed(6)],
                  output_type="np").images
    np.testing.assert_array_equal(ours, (theirs[0] * 255).round().astype(np.uint8))
    assert ours.std() > 5


def test_video_with_latent_reuse_on_the_real_scheduler_config(hub, clip):
    """Float ("linspace") timesteps through --reuse-latents; stderr: vidtoon's lines only."""
    source = clip(frames=4).path
    proc = run_cli(hub, "cartoonize", source, "-o", source.with_name("o.mp4"), "--backend", "pix2pix", "--steps", "4",
                   "--reuse-latents", "0.5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("backend: pix2pix") and "latent reuse from step 2 of 4" in lines[0]
    assert lines[-1].startswith("wrote ") and all(line.startswith(("backend:", "in.mp4", "wrote")) for line in lines), lines
    assert "unsafe" not in proc.stderr.lower() and "warn" not in proc.stderr.lower()
