"""--reuse-latents starts the denoising part-way (ip2p.denoise(start=k)); it must work with
any scheduler an IP2P fine-tune may ship: DDIM, PNDM and DDPM have no set_begin_index, PNDM
needs its warm-up at the start of the run, higher-order schedulers hold two entries a step.
A scheduler that cannot start part-way is refused in one line before any frame is done."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
diffusers = pytest.importorskip("diffusers")

from clips import panning

from vidtoon.backends.pix2pix import Pix2PixSettings, ip2p
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.cli import ExitStatus, main
from vidtoon.errors import SettingsError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
# As in the Stable Diffusion 1.x scheduler configs (steps_offset 1, alpha not set to one, no clipping).
CONFIGS = {
    "DDIMScheduler": dict(**SD, steps_offset=1, clip_sample=False, set_alpha_to_one=False),
    "PNDMScheduler": dict(**SD, steps_offset=1, skip_prk_steps=True, set_alpha_to_one=False),
    "DDPMScheduler": dict(**SD, steps_offset=1, clip_sample=False),
    "EulerAncestralDiscreteScheduler": dict(**SD, steps_offset=1, timestep_spacing="leading"),
    "EulerDiscreteScheduler": dict(**SD, steps_offset=1, timestep_spacing="leading"),
    "HeunDiscreteScheduler": dict(**SD, steps_offset=1, timestep_spacing="leading"),  # order 2
}
WITHOUT_BEGIN_INDEX = ("DDIMScheduler", "PNDMScheduler", "DDPMScheduler")


def scheduler(name, **overrides):
    return getattr(diffusers, name)(**{**CONFIGS[name], **overrides})


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


class Oracle:
    """A UNet that predicts the exact noise for a known clean latent x0: every correct
    sampler then follows the same path through the noise levels, so a run started at
    step k from x0 noised to that step's level ends where the full run ends."""

    def __init__(self, scheduler, x0):
        acp = scheduler.alphas_cumprod.double()
        self.sigmas, self.x0 = ((1 - acp) / acp).sqrt().numpy(), x0.double()

    def __call__(self, model_input, t, **kwargs):
        sigma = float(np.interp(float(t), np.arange(len(self.sigmas)), self.sigmas))
        alpha = 1 / (1 + sigma**2)  # scaled input = sqrt(alpha) x0 + sqrt(1 - alpha) noise, for every scheduler
        x = model_input[:, :4].double()
        x0 = self.x0.repeat(len(x) // len(self.x0), 1, 1, 1)
        return (((x - alpha**0.5 * x0) / (1 - alpha) ** 0.5).float(),)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("start", [1, 2, 3])
def test_a_run_from_step_k_ends_where_the_full_run_ends(name, start):
    steps = 5
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand((1, 4, 4, 4), generator=g) * 1.6 - 0.8
    noise = torch.randn((1, 4, 4, 4), generator=g)
    embeds, image_latents = torch.zeros(3, 2, 8), torch.zeros(1, 4, 4, 4)

    def run(k):
        s = scheduler(name)
        s.set_timesteps(steps)
        latents = s.add_noise(x0, noise, ip2p.remaining_timesteps(s, k)[:1])
        seen = []
        unet = Oracle(s, x0)
        counted = lambda x, t, **kw: seen.append(float(t)) or unet(x, t, **kw)  # noqa: E731
        out = ip2p.denoise(counted, s, latents, image_latents, embeds, 7.0, 1.5, [torch.Generator().manual_seed(1)], start=k)
        return out, seen, s

    full, seen_full, s = run(0)
    part, seen_part, _ = run(start)
    torch.testing.assert_close(part, full, atol=2e-3, rtol=0)
    assert len(seen_part) < len(seen_full)
    if name != "PNDMScheduler":  # PNDM repeats its first timestep as the warm-up
        assert seen_part == [float(t) for t in s.timesteps[start * s.order :]]


@pytest.mark.parametrize("name", WITHOUT_BEGIN_INDEX)
def test_reuse_latents_runs_with_schedulers_that_have_no_begin_index(parts, name):
    assert not hasattr(scheduler(name), "set_begin_index")
    ours = dataclasses.replace(parts, scheduler=scheduler(name))
    draw = panning()
    batch = np.stack([draw(i, 64, 48) for i in range(4)])
    calls = []
    hook = parts.unet.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0] // 3))
    try:
        plain = Pix2PixBackend(ours, Pix2PixSettings(steps=4), batch_size=1)(batch)
        calls.clear()
        reused = Pix2PixBackend(ours, Pix2PixSettings(steps=4, reuse_latents=0.5), batch_size=4)(batch)
    finally:
        hook.remove()
    full, later = (5, 3) if name == "PNDMScheduler" else (4, 2)  # PNDM: one warm-up evaluation more
    assert calls == [1] * (full + 3 * later)
    assert reused.shape == batch.shape and reused.std() > 5
    assert np.abs(reused[0].astype(int) - plain[0]).max() <= 1  # the first frame runs all steps
    assert np.abs(reused[1:].astype(int) - plain[1:]).mean() > 1


def test_a_scheduler_that_cannot_start_part_way_is_refused_before_any_work(parts):
    prk = dataclasses.replace(parts, scheduler=scheduler("PNDMScheduler", skip_prk_steps=False))
    Pix2PixBackend(prk, Pix2PixSettings(steps=4))  # without reuse it is fine
    with pytest.raises(SettingsError, match="--reuse-latents: the model's scheduler PNDMScheduler with skip_prk_steps=False"):
        Pix2PixBackend(prk, Pix2PixSettings(steps=4, reuse_latents=0.5))


def with_scheduler(folder, name, **overrides):
    path = folder / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({"_class_name": name, **CONFIGS[name], **overrides}))
    return folder


def test_cli_reuse_with_pndm_and_the_refusal_in_one_line(clip, tmp_path, tiny_model, capsys):
    source = str(clip(frames=3).path)
    pndm = with_scheduler(shutil.copytree(tiny_model, tmp_path / "pndm"), "PNDMScheduler")
    args = ["--backend", "pix2pix", "--steps", "2", "--reuse-latents", "0.5", "-q"]
    assert main(["cartoonize", source, "-o", str(tmp_path / "a.mp4"), "--model", str(pndm), *args]) == 0
    prk = with_scheduler(shutil.copytree(tiny_model, tmp_path / "prk"), "PNDMScheduler", skip_prk_steps=False)
    capsys.readouterr()
    code = main(["cartoonize", source, "-o", str(tmp_path / "b.mp4"), "--model", str(prk), *args])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == ExitStatus.BAD_INPUT and "PNDMScheduler" in line and "--reuse-latents" in line
    assert not (tmp_path / "b.mp4").exists()
