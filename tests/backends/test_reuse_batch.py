"""--reuse-latents in groups (--reuse-batch N, backends/pix2pix/latents.py): frame 0 alone,
then frames 1 to N - 1, then groups of N frames [gN, gN + N), each all starting from the last
frame of the group before, so the UNet runs them as one batch. Exact against the same recurrence computed frame by frame, whatever the chunking
into backend calls; N = 1 is the frame-by-frame reuse as it always was."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import panning, picture
from finals import Finals
from rounding import agree_within_rounding

from vidtoon.backends.pix2pix import Pix2PixSettings, ip2p
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.latents import reused_latents, start_step
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.errors import SettingsError
from vidtoon.temporal.flow import MotionTracker

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# Final latents of the batched groups against the frame-by-frame recurrence: the UNet sees
# other batch shapes, so CPU kernels sum in another order (~1e-7 relative, tests/helpers/
# rounding.py). Measured here over 10-16 frames, with and without a cut, both schedulers:
# at most 9e-5 on latents up to ~62 in size (the tiny random model's), so the bound is about
# ten times that; a wrong anchor or start step moves them by 0.1 and more.
LATENT_ATOL, LATENT_RTOL = 1e-3, 1e-5


def settings(n, **options):
    return Pix2PixSettings(steps=4, reuse_latents=0.5, reuse_batch=n, **options)


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


def pan(n, start=0, width=64, height=48):
    draw = panning()
    return np.stack([draw(start + i, width, height) for i in range(n)])


def with_a_flash(n, at):
    """A pan whose frame `at` is an unrelated picture (a cut there and back)."""
    frames = pan(n)
    frames[at] = picture(40, frames.shape[2], frames.shape[1])
    return frames


def sequential(parts, options, sources, consecutive=False):
    """The recurrence, frame by frame: each frame denoised alone (one UNet batch of one)
    from its anchor's warped final latent, or from the clip noise at step 0 (frame 0, a cut,
    and every frame after a cut in its group). consecutive: N = 1 the way the backend did it
    before groups (MotionTracker.__call__ frame after frame). Returns (pictures, finals)."""
    n, k = options.reuse_batch, start_step(options.steps, options.reuse_latents)
    backend = Pix2PixBackend(parts, options, batch_size=len(sources))  # for its VAE, noise, prompt and loop
    tracker, scheduler = MotionTracker(), backend.scheduler
    scaling = parts.vae.config.scaling_factor
    finals, cut = [], False
    with torch.inference_mode():
        image_latents = ip2p.encode_images(parts.vae, backend._to_model(sources))
        for t in range(len(sources)):
            anchor = -1 if t == 0 else max(0, t // n * n - 1)  # groups: [0], [1, n), [n, 2n), ...
            cut = cut and t > 1 and t % n != 0  # a cut lasts to the end of its group
            if consecutive:
                motion = tracker(sources[t])
            else:
                motion = tracker.between(sources[anchor], sources[t]) if anchor >= 0 else None
            cut = cut or (anchor >= 0 and (motion is None or motion.cut))
            scheduler.set_timesteps(options.steps)
            noise = backend._clip_noise(image_latents.shape[1:])
            own = image_latents[t : t + 1]
            if anchor < 0 or cut:
                latents, start = noise * scheduler.init_noise_sigma, 0
            else:
                height, width = own.shape[2:]
                grid = np.ascontiguousarray(finals[anchor][0].permute(1, 2, 0).numpy())
                warped = torch.from_numpy(motion.warp(grid)).permute(2, 0, 1)[None]
                confidence = torch.from_numpy(np.ascontiguousarray(motion.confidence_at((width, height))))[None, None]
                latents, start = reused_latents(scheduler, warped, own * scaling, confidence, noise, k), k
            scheduler.set_timesteps(options.steps)
            finals.append(backend._denoise(own, latents, start))
        latents = torch.cat(finals)
        pictures = backend._to_frames(ip2p.decode(parts.vae, latents), *sources.shape[1:3])
    return pictures, latents


def unet_frames(unet, branches=3):
    """A list that grows by the frames in each UNet call."""
    seen = []
    return seen, unet.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0] // branches))


# -- exactness ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheduler", ["model", "dpm++"])
def test_groups_equal_the_recurrence_frame_by_frame(parts, monkeypatch, scheduler):
    sources = pan(10)
    finals = Finals(monkeypatch)
    out = Pix2PixBackend(parts, settings(4, scheduler=scheduler), batch_size=10)(sources)
    monkeypatch.undo()
    reference, latents = sequential(parts, settings(4, scheduler=scheduler), sources)
    torch.testing.assert_close(finals.all(), latents, atol=LATENT_ATOL, rtol=LATENT_RTOL)
    agree_within_rounding(out, reference)
    # and reuse did something: the frames after the first are not what the full run gives them
    plain = Pix2PixBackend(parts, Pix2PixSettings(steps=4, scheduler=scheduler), batch_size=10)(sources)
    agree_within_rounding(out[:1], plain[:1])  # frame 0: all steps from the noise
    assert np.abs(out[1:].astype(int) - plain[1:]).mean() > 1


@pytest.mark.parametrize("chunks", [[1] * 11, [3, 3, 3, 2], [5, 5, 1], [2, 7, 2]])
def test_the_output_does_not_depend_on_how_the_calls_chop_the_frames(parts, chunks):
    sources = pan(11)
    whole = Pix2PixBackend(parts, settings(4), batch_size=11)(sources)
    backend = Pix2PixBackend(parts, settings(4), batch_size=4)
    out, done = [], 0
    for size in chunks:
        out.append(backend(sources[done : done + size]))
        done += size
    agree_within_rounding(np.concatenate(out), whole)
    agree_within_rounding(Pix2PixBackend(parts, settings(4), batch_size=3)(sources), whole)  # run_batch chunks of 3


def test_one_frame_a_group_is_the_frame_by_frame_reuse_as_before(parts):
    """N = 1 runs the code path reuse always had: byte-identical to the recurrence done
    with MotionTracker frame after frame (the same batch shapes all through)."""
    sources = with_a_flash(7, at=4)
    out = Pix2PixBackend(parts, settings(1), batch_size=7)(sources)
    reference, _ = sequential(parts, settings(1), sources, consecutive=True)
    assert np.array_equal(out, reference)
    agree_within_rounding(Pix2PixBackend(parts, settings(1), batch_size=2)(sources), out)  # other VAE batches


def test_a_cut_inside_a_group_restarts_it_from_there(parts):
    """Group 1 is frames 4-7, its anchor frame 3; frame 5 is a flash: 5, 6 and 7 run all
    steps from the noise (6 and 7 too, though the pan would match the anchor again), 4 is
    reused; group 2 (frame 8) is reused from frame 7. Also when the group is split between
    two calls after the cut."""
    sources = with_a_flash(9, at=5)
    tracker = MotionTracker()
    assert tracker.between(sources[3], sources[5]).cut and not tracker.between(sources[3], sources[6]).cut
    plain = Pix2PixBackend(parts, Pix2PixSettings(steps=4), batch_size=3)(sources[5:8])  # all steps from the noise
    seen, hook = unet_frames(parts.unet)
    try:
        out = Pix2PixBackend(parts, settings(4), batch_size=9)(sources)
        # frame 0; group 0 (1-3) from step 2; group 1: 4 from step 2, 5-7 from 0; group 2 (8)
        assert seen == [1] * 4 + [3] * 2 + [1] * 2 + [3] * 4 + [1] * 2
        seen.clear()
        backend = Pix2PixBackend(parts, settings(4), batch_size=9)
        split = np.concatenate([backend(sources[:6]), backend(sources[6:])])
        assert seen == [1] * 4 + [3] * 2 + [1] * 2 + [1] * 4 + [2] * 4 + [1] * 2  # 6 and 7 in the next call: from 0 too
    finally:
        hook.remove()
    agree_within_rounding(out[5:8], plain)
    agree_within_rounding(split, out)


def test_the_unet_sees_a_group_a_call(parts):
    seen, hook = unet_frames(parts.unet)
    try:
        Pix2PixBackend(parts, settings(4), batch_size=8)(pan(12))
        assert seen == [1] * 4 + [3] * 2 + [4] * 2 + [4] * 2  # frame 0 all 4 steps; 1-3, 4-7, 8-11 the last 2
        seen.clear()
        Pix2PixBackend(parts, settings(1), batch_size=8)(pan(5))
        assert seen == [1] * 4 + [1] * 2 * 4  # frame by frame
    finally:
        hook.remove()


def test_a_failed_batch_is_retried_from_the_same_state(parts, monkeypatch):
    """A simulated out-of-memory in the second group (1-3) of a batch of 8: the backend halves
    its batch and redoes the batch, from the same anchor and clip index."""
    sources = pan(10)
    reference = Pix2PixBackend(parts, settings(4), batch_size=10)(sources)
    backend = Pix2PixBackend(parts, settings(4), batch_size=8)
    real, calls = backend._denoise_reused, []

    def denoise(frames, image_latents):
        calls.append(len(frames))
        if len(calls) == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(frames, image_latents)

    monkeypatch.setattr(backend, "_denoise_reused", denoise)
    out = backend(sources)
    assert backend.batch_size == 4 and calls == [1, 3, 1, 3, 4, 2]
    agree_within_rounding(out, reference)


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "--reuse-batch must be between 1 and 64, got 0"), (65, "--reuse-batch must be between 1 and 64"),
     (2.5, "--reuse-batch must be a whole number")],
)
def test_bad_group_sizes_are_named(value, message):
    with pytest.raises(SettingsError, match=message):
        settings(value)


def test_groups_need_reuse_and_default_to_4_for_files_and_1_live(parts):
    from vidtoon.backends.pix2pix import live

    with pytest.raises(SettingsError, match="--reuse-batch needs --reuse-latents"):
        Pix2PixBackend(parts, Pix2PixSettings(steps=4, reuse_batch=2))
    backend = Pix2PixBackend(parts, Pix2PixSettings(steps=4, reuse_latents=0.5))
    assert backend.reuse.group == 4 and "latent reuse from step 2 of 4, in groups of 4" in backend.summary
    fast, note = live(Pix2PixSettings())  # the stream batch has its own anchors (test_stream.py)
    assert "each frame from the newest finished one's latents (strength 0.5)" in note and "--reuse-batch" not in note
    with pytest.raises(SettingsError, match="--reuse-batch does not apply live"):
        live(Pix2PixSettings(reuse_batch=3))
    fast, note = live(Pix2PixSettings(cross_frame=True))  # frame by frame: the groups as for files
    assert fast.reuse_batch == 1 and "reusing the last frame's latents (strength 0.5, --reuse-batch 1)" in note
    fast, note = live(Pix2PixSettings(cross_frame=True, reuse_batch=3))
    assert fast.reuse_batch == 3 and "in groups of 3 frames" in note and "--reuse-batch 3" in note
    assert "one frame at a time (--cross-frame cannot stream)" in note


@pytest.mark.parametrize(("option", "message"), [
    (["--reuse-batch", "2"], "--reuse-batch needs --reuse-latents"),
    (["--reuse-latents", "0.5", "--reuse-batch", "0"], "--reuse-batch must be between 1 and 64, got 0"),
])
def test_cli_refusals_are_one_line_exit_2(clip, tmp_path, capsys, option, message):
    from vidtoon.cli import ExitStatus, main

    code = main(["cartoonize", str(clip(frames=2).path), "-o", str(tmp_path / "o.mp4"), "--backend", "pix2pix", *option])
    err = capsys.readouterr().err
    assert code == ExitStatus.BAD_INPUT and message in err and err.count("\n") == 1
    assert not (tmp_path / "o.mp4").exists()
