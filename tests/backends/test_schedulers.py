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
from rounding import agree_within_rounding

from vidtoon.backends import pix2pix
from vidtoon.backends.pix2pix import Pix2PixSettings, ip2p, schedulers
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.backends.pix2pix.schedulers import SCHEDULERS
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
        reused = Pix2PixBackend(ours, Pix2PixSettings(steps=4, reuse_latents=0.5, reuse_batch=2), batch_size=4)(batch)
    finally:
        hook.remove()
    full, later = (5, 3) if name == "PNDMScheduler" else (4, 2)  # PNDM: one warm-up evaluation more
    assert calls == [1] * full + [1] * later + [2] * later  # frame 0 all steps; groups 1 and 2-3 part-way
    assert reused.shape == batch.shape and reused.std() > 5
    assert np.abs(reused[:1].astype(int) - plain[:1]).max() <= 1  # frame 0 runs all steps
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


# -- --scheduler NAME -------------------------------------------------------------------------

CHOICES = [name for name in SCHEDULERS if name != "model"]
# The cartoonizer's own config (Euler ancestral, "linspace" spacing) and the tiny model's ("leading").
BASES = {"cartoonizer": dict(**SD, steps_offset=1), "leading": CONFIGS["EulerAncestralDiscreteScheduler"]}


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("name", CHOICES)
def test_each_choice_is_built_from_the_models_config_and_can_start_part_way(name, base):
    model = diffusers.EulerAncestralDiscreteScheduler(**BASES[base])
    s = schedulers.make(name, model)
    assert type(s).__name__ == SCHEDULERS[name][0] and ip2p.part_way_refusal(s) == ""
    for key in ("beta_start", "beta_end", "beta_schedule", "steps_offset"):
        assert s.config[key] == model.config[key]
    assert schedulers.make(name, model) is not s  # each backend its own state
    steps = 5
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand((1, 4, 4, 4), generator=g) * 1.6 - 0.8
    noise = torch.randn((1, 4, 4, 4), generator=g)

    def run(k):
        s = schedulers.make(name, model)
        s.set_timesteps(steps)
        latents = s.add_noise(x0, noise, ip2p.remaining_timesteps(s, k)[:1])
        return ip2p.denoise(Oracle(s, x0), s, latents, torch.zeros(1, 4, 4, 4), torch.zeros(3, 2, 8), 7.0, 1.5,
                            [torch.Generator().manual_seed(1)], start=k)

    # As test_a_run_from_step_k_ends_where_the_full_run_ends, for the schedulers --scheduler makes.
    torch.testing.assert_close(run(2), run(0), atol=2e-3, rtol=0)


@pytest.mark.parametrize("name", CHOICES)
def test_each_choice_is_deterministic_and_batch_independent(tiny_model, parts, name):
    """Two loads give the same frames to the byte; batch 1 and batch 3 agree within rounding."""
    settings = Pix2PixSettings(model=str(tiny_model), steps=4, scheduler=name, reuse_latents=None)
    batch = np.stack([panning()(i, 64, 48) for i in range(3)])
    first = pix2pix.load(settings, batch_size=3)
    assert type(first.scheduler).__name__ == SCHEDULERS[name][0] and SCHEDULERS[name][2] in first.summary
    out = first(batch)
    assert np.array_equal(pix2pix.load(settings, batch_size=3)(batch), out)
    agree_within_rounding(Pix2PixBackend(parts, settings, batch_size=1)(batch), out)
    assert out.std() > 5
    model = Pix2PixBackend(parts, Pix2PixSettings(steps=4), batch_size=3)(batch)
    assert type(Pix2PixBackend(parts, Pix2PixSettings(steps=4)).scheduler) is type(parts.scheduler)
    assert (name == "euler-a") == (np.abs(out.astype(int) - model).max() <= 1)  # the tiny model's own is Euler a


@pytest.mark.parametrize("name", CHOICES)
def test_reuse_latents_runs_with_each_choice(parts, name):
    batch = np.stack([panning()(i, 64, 48) for i in range(3)])
    reused = Pix2PixBackend(parts, Pix2PixSettings(steps=4, scheduler=name, reuse_latents=0.5, reuse_batch=2),
                            batch_size=3)(batch)  # frame 0 all steps, frame 1 part-way from frame 0, frame 2 from frame 1
    plain = Pix2PixBackend(parts, Pix2PixSettings(steps=4, scheduler=name), batch_size=1)(batch)
    assert reused.std() > 5 and np.abs(reused[0].astype(int) - plain[0]).max() <= 1  # the first frame runs all steps


def test_an_unknown_scheduler_is_refused(capsys):
    with pytest.raises(SettingsError, match="--scheduler must be one of model, euler-a"):
        Pix2PixSettings(scheduler="heun")
    with pytest.raises(SystemExit) as exit:
        main(["cartoonize", "in.mp4", "-o", "o.mp4", "--backend", "pix2pix", "--scheduler", "heun"])
    err = capsys.readouterr().err
    assert exit.value.code == ExitStatus.BAD_INPUT and "--scheduler: invalid choice: 'heun'" in err
