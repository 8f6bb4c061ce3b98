"""The pix2pix backend's temporal options on a tiny random model (CPU): cross-frame
attention (backends/pix2pix/crossframe.py), flow-guided latent reuse (latents.py)
and keyframe mode (keyframes.py); their settings, CLI flags and API."""

import math
import os
import subprocess
import sys
from contextlib import contextmanager

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import audio_packets, panning, picture, read_video
from rounding import agree_within_rounding

from vidtoon import backends
from vidtoon.backends.pix2pix import Pix2PixSettings, crossframe
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.keyframes import KeyframeBackend
from vidtoon.backends.pix2pix.latents import LatentReuse, reused_latents, start_step
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.cli import ExitStatus, build_parser, main, recipe_from_args
from vidtoon.config import Recipe
from vidtoon.errors import SettingsError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

FAST = dict(steps=4)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


def frames(n=6, width=64, height=48, start=0):
    return np.stack([picture(start + i, width, height) for i in range(n)])


def pan(n=6, width=64, height=48):
    draw = panning()
    return np.stack([draw(i, width, height) for i in range(n)])


def differs(a, b):
    """Clearly different frames, beyond batch-size rounding: many values off by more than
    one level. (Attention moves the tiny random model's pictures only a little.)"""
    return (np.abs(a.astype(int) - b.astype(int)) > 1).mean() > 0.05


@contextmanager
def unet_frame_steps(unet):
    """A list that grows by the frames in each UNet call (3 samples a frame under guidance)."""
    seen = []
    hook = unet.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0] // 3))
    try:
        yield seen
    finally:
        hook.remove()


# -- settings and the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(cross_frame="yes"), "cross_frame must be True or False"),
        (dict(reuse_latents=1.5), "--reuse-latents must be between 0 and 1, got 1.5"),
        (dict(reuse_latents=-0.1), "--reuse-latents must be between 0 and 1"),
        (dict(reuse_latents="half"), "--reuse-latents must be a number"),
        (dict(keyframe_every=0), "--keyframe-every must be between 1 and 1000, got 0"),
        (dict(keyframe_every=2.5), "--keyframe-every must be a whole number"),
    ],
)
def test_settings_name_the_bad_value(options, message):
    with pytest.raises(SettingsError, match=message):
        Pix2PixSettings(**options)


def test_defaults_are_off_and_zero_strength_is_off():
    d = Pix2PixSettings()
    assert (d.cross_frame, d.reuse_latents, d.keyframe_every) == (False, None, 1)
    assert Pix2PixSettings(reuse_latents=0) == d


def test_cli_builds_the_temporal_settings():
    args = build_parser().parse_args(["cartoonize", "in.mp4", "-o", "o.mp4", "--cross-frame", "--reuse-latents", "0.4",
                                      "--keyframe-every", "3"])
    p = recipe_from_args(args).settings["pix2pix"]
    assert (p.cross_frame, p.reuse_latents, p.keyframe_every) == (True, 0.4, 3)
    args = build_parser().parse_args(["batch", "clips", "-o", "out", "--cross-frame"])
    assert recipe_from_args(args).settings["pix2pix"].cross_frame


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--reuse-latents", "1.5"], "--reuse-latents must be between 0 and 1"),
     (["--keyframe-every", "0"], "--keyframe-every must be between 1 and 1000")],
)
def test_cli_bad_values_are_one_line_exit_2(clip, tmp_path, capsys, option, message):
    code = main(["cartoonize", str(clip(frames=2).path), "-o", str(tmp_path / "o.mp4"), "--backend", "pix2pix", *option])
    err = capsys.readouterr().err
    assert code == ExitStatus.BAD_INPUT and message in err and err.count("error:") == 1 and err.count("\n") == 1
    assert not (tmp_path / "o.mp4").exists()


def test_live_turns_latent_reuse_on():
    from vidtoon.backends.pix2pix import LIVE_REUSE
    from vidtoon.live.looks import live_recipe

    fast, note = live_recipe(Recipe(backend="pix2pix"))
    assert fast.active.reuse_latents == LIVE_REUSE and "from the newest finished one's latents (strength 0.5)" in note
    asked = Recipe(backend="pix2pix", settings={"pix2pix": Pix2PixSettings(reuse_latents=0.8)})
    assert live_recipe(asked)[0].active.reuse_latents == 0.8


# -- every option: shapes and determinism -------------------------------------------------------

COMBINATIONS = [
    dict(cross_frame=True),
    dict(reuse_latents=0.5),
    dict(keyframe_every=3),
    dict(cross_frame=True, reuse_latents=0.5, keyframe_every=2),
]


@pytest.mark.parametrize("options", COMBINATIONS)
def test_shapes_and_determinism_across_loads(tiny_model, options):
    """Same input, same settings, two separate loads: byte-identical frames, also
    after reset(); the right shape and dtype, odd sizes included."""
    recipe = Recipe(backend="pix2pix", batch_size=2,
                    settings={"pix2pix": Pix2PixSettings(model=str(tiny_model), **FAST, **options)})
    batch = pan(5, 37, 29)
    first, _ = backends.load(recipe)
    second, _ = backends.load(recipe)
    a = first(batch)
    assert a.shape == batch.shape and a.dtype == np.uint8
    assert np.array_equal(a, second(batch))
    first.reset()
    assert np.array_equal(first(batch), a)
    assert np.abs(a.astype(int) - batch).mean() > 10  # the model did change the frames


# -- cross-frame attention ----------------------------------------------------------------------


def test_cross_frame_keeps_the_anchor_across_batches(parts):
    """Batches of 1 and 2 give the frames one batch of 6 gives: every batch after the
    first reads the first batch's anchor; and the anchor changes the output."""
    batch = pan(6)
    run = {size: Pix2PixBackend(parts, Pix2PixSettings(cross_frame=True, **FAST), batch_size=size)(batch)
           for size in (1, 2, 6)}
    agree_within_rounding(run[2], run[6])
    agree_within_rounding(run[1], run[6])
    off = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=1)(batch)
    # Frame 0 is the anchor: it attends to itself, as without the option, to the byte
    # (batches of 1 both ways, and its own keys/values in the same shapes: the same kernels).
    assert np.array_equal(run[1][0], off[0])
    assert differs(run[1][1:], off[1:])


def test_cross_frame_anchor_is_not_the_current_batch(parts):
    """A later batch alone, on a backend that saw the clip's start, differs from the
    same frames run as a fresh clip (where they would be their own anchor)."""
    batch = pan(4)
    backend = Pix2PixBackend(parts, Pix2PixSettings(cross_frame=True, **FAST), batch_size=2)
    backend(batch[:2])
    later = backend(batch[2:])
    fresh = Pix2PixBackend(parts, Pix2PixSettings(cross_frame=True, **FAST), batch_size=2)(batch[2:])
    assert differs(later, fresh)
    backend.reset()  # and a new clip takes a new anchor
    assert np.array_equal(backend(batch[2:]), fresh)


def test_a_wrong_grouping_is_detected(parts, monkeypatch):
    """Under guidance the anchor is frame 0 of each [text | image | none] block. Grouped
    by 1, every block would read the TEXT block's frame 0, so even the anchor frame,
    which attends to itself when grouped right, comes out changed."""
    batch = pan(3)
    off = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=1)(batch[:1])

    def run(groups):
        backend = Pix2PixBackend(parts, Pix2PixSettings(cross_frame=True, **FAST), batch_size=3)
        processors = backend.anchors.processors(parts.unet, groups)
        monkeypatch.setattr(backend, "_cross_frame", lambda: crossframe.installed(parts.unet, processors))
        return backend(batch)

    right, wrong = run(3), run(1)
    agree_within_rounding(right[0], off[0])
    assert differs(wrong[0], off[0]) and differs(wrong, right)
    with pytest.raises(ValueError, match="a batch of 9 does not split into 2 blocks"):
        run(2)


def test_cross_frame_touches_only_self_attention_and_puts_processors_back(parts, monkeypatch):
    before = dict(parts.unet.attn_processors)
    called = set()
    real = crossframe.CrossFrameAttention.__call__
    monkeypatch.setattr(crossframe.CrossFrameAttention, "__call__",
                        lambda self, *a, **k: called.add(self.name) or real(self, *a, **k))
    backend = Pix2PixBackend(parts, Pix2PixSettings(cross_frame=True, **FAST), batch_size=2)
    backend(frames(2))
    attn1 = {name for name in before if name.endswith("attn1.processor")}
    assert called == attn1 and len(attn1) == 4
    assert len(backend.anchors.store) == len(attn1) * FAST["steps"]  # layers x steps, one frame per branch
    assert all(k.shape[0] == 3 for k, v in backend.anchors.store.values())
    assert dict(parts.unet.attn_processors) == before  # the same processor objects, restored


# -- latent reuse -------------------------------------------------------------------------------


def test_start_step():
    assert start_step(20, 0.5) == 10 and start_step(20, 1.0) == 0 and start_step(4, 0.01) == 3


def test_latent_reuse_runs_fewer_unet_steps_and_the_first_frame_in_full(parts):
    batch = pan(5)
    with unet_frame_steps(parts.unet) as seen:
        off = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=1)(batch)
        assert sum(seen) == 5 * 4
        seen.clear()
        out = Pix2PixBackend(parts, Pix2PixSettings(reuse_latents=0.5, reuse_batch=1, **FAST), batch_size=5)(batch)
        assert seen == [1] * (4 + 4 * 2)  # frame by frame: 4 steps, then 2 for each later frame
        seen.clear()
        grouped = Pix2PixBackend(parts, Pix2PixSettings(reuse_latents=0.5, **FAST), batch_size=5)(batch)
        assert seen == [1] * 4 + [3] * 2 + [1] * 2  # frame 0 from the noise, 1-3 from frame 0, 4 from frame 3
    agree_within_rounding(grouped[:1], off[:1])
    assert np.abs(grouped[1:].astype(int) - off[1:]).mean() > 1
    agree_within_rounding(out[0], off[0])  # the first frame is the usual full run (VAE batches of 5 vs 1)
    assert np.abs(out[1:].astype(int) - off[1:]).mean() > 1
    assert out.shape == batch.shape


def test_latent_reuse_carries_across_batches_and_restarts_on_a_cut(parts):
    """Frame by frame (--reuse-batch 1): batches of 2 give the frames one batch of 6 gives
    (the UNet runs one frame at a time either way; the VAE's batch size rounds); the frame
    after a cut runs all steps. (Groups: tests/backends/test_reuse_batch.py.)"""
    batch = np.concatenate([pan(3), frames(3, start=20)])
    sequential = Pix2PixSettings(reuse_latents=0.5, reuse_batch=1, **FAST)
    whole = Pix2PixBackend(parts, sequential, batch_size=6)(batch)
    with unet_frame_steps(parts.unet) as seen:
        split = Pix2PixBackend(parts, sequential, batch_size=2)(batch)
    agree_within_rounding(split, whole)
    assert len(seen) == 4 + 2 + 2 + 4 + 2 + 2  # full steps at frame 0 and at the cut (frame 3)


def test_occluded_pixels_start_from_their_own_latent_not_the_warp(parts):
    """The blend, on synthetic latents: trusted pixels = warped latent + noise at
    sigma_k; untrusted ones = the frame's own latent + the same noise at sigma_k."""
    scheduler = type(parts.scheduler).from_config(parts.scheduler.config)
    scheduler.set_timesteps(10)
    g = torch.Generator().manual_seed(0)
    warped, own, noise = (torch.randn((1, 4, 6, 8), generator=g) for _ in range(3))
    confidence = torch.zeros(1, 1, 6, 8)
    confidence[..., :4] = 1  # the right half is disoccluded
    out = reused_latents(scheduler, warped, own, confidence, noise, k=5)
    sigma = scheduler.sigmas[5]
    torch.testing.assert_close(out[..., :4], warped[..., :4] + sigma * noise[..., :4])
    torch.testing.assert_close(out[..., 4:], own[..., 4:] + sigma * noise[..., 4:])
    # what the warp carries never reaches the disoccluded half
    other = reused_latents(scheduler, warped + 100, own, confidence, noise, k=5)
    torch.testing.assert_close(other[..., 4:], out[..., 4:])


def test_disoccluded_region_of_a_real_frame_falls_back(parts):
    """Through LatentReuse.starts with real flow: a square that appears from nowhere in
    frame 1 gets (near) zero confidence; its latents come from its own latent, so a
    huge previous latent does not leak into it, while the static rest does carry it."""
    still = picture(0, 64, 64)
    appeared = still.copy()
    appeared[24:40, 24:40] = (255, 0, 255)
    scheduler = type(parts.scheduler).from_config(parts.scheduler.config)
    scheduler.set_timesteps(4)
    reuse = LatentReuse(0.5, 4)
    noise = torch.zeros(1, 4, 8, 8)
    own = torch.zeros(1, 4, 8, 8)
    [(start, _)] = reuse.starts(scheduler, still[None], own, noise, 1.0)
    assert start == 0  # the first frame: all steps
    reuse.keep(torch.full((1, 4, 8, 8), 50.0))
    [(start, latents)] = reuse.starts(scheduler, appeared[None], own, noise, 1.0)
    assert start == 2
    assert latents[0, :, 3:5, 3:5].abs().max() < 5  # the new square: not the warped 50s
    rest = torch.ones(8, 8, dtype=torch.bool)
    rest[2:6, 2:6] = False
    assert latents[0][:, rest].mean() > 45  # the unchanged rest: reused


# -- keyframes --------------------------------------------------------------------------------


class Counting:
    """A stand-in inner backend: inverts its frames and counts them."""

    name = "pix2pix"
    summary = ""
    batch_size = 2

    def __init__(self):
        self.frames, self.resets = [], 0

    def __call__(self, batch):
        self.frames.extend(map(bytes, batch))
        return 255 - batch

    def reset(self):
        self.resets += 1


def texture(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(30, 225, (6, 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 20, (h, w, 3)).astype(np.float32), (0, 0), 1.2)
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def translated(n, dx=2, dy=1):
    big = texture(96 + 8 * n, 128 + 8 * n)
    return np.stack([big[i * dy : i * dy + 96, i * dx : i * dx + 128] for i in range(n)])


@pytest.mark.parametrize(("n", "every"), [(10, 3), (9, 3), (7, 4), (5, 1)])
def test_keyframes_diffuse_one_frame_in_k(n, every):
    inner = Counting()
    backend = KeyframeBackend(inner, every)
    backend.reset()
    batch = translated(n)
    out = backend(batch)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert len(inner.frames) == backend.keyframes == math.ceil(n / every)
    assert inner.frames == [bytes(batch[i]) for i in range(0, n, every)]
    assert backend.batch_size == 2 * every  # the inner backend still gets full batches


def test_keyframes_across_batch_boundaries_and_reset():
    batch = translated(10)
    whole = KeyframeBackend(Counting(), 4)
    expected = whole(batch)
    inner = Counting()
    split = KeyframeBackend(inner, 4)
    split(batch[:3])  # a first clip, then a new one: reset clears all state
    split.reset()
    inner.frames.clear()
    out = np.concatenate([split(batch[i : i + 3]) for i in range(0, 10, 3)])
    assert np.array_equal(out, expected)
    assert inner.frames == [bytes(batch[i]) for i in (0, 4, 8)]


def test_a_scene_cut_forces_a_keyframe():
    inner = Counting()
    backend = KeyframeBackend(inner, 100)
    batch = np.concatenate([translated(4), pan(4, 128, 96)])
    backend(batch)
    assert inner.frames == [bytes(batch[0]), bytes(batch[4])]


def test_propagated_frames_follow_the_motion():
    """A picture moving 2 px right and 1 down a frame: the frames between keyframes
    are the keyframe's cartoon moved along, not the keyframe's cartoon again."""
    batch = translated(4)
    out = KeyframeBackend(Counting(), 4)(batch)
    inside = (slice(12, -12), slice(12, -12))
    for i in (1, 2, 3):
        followed = np.abs(out[i][inside].astype(int) - (255 - batch[i])[inside]).mean()
        stale = np.abs(out[0][inside].astype(int) - (255 - batch[i])[inside]).mean()
        assert followed < 4 and stale > 4 * followed, (i, followed, stale)


def test_keyframes_wrap_the_pix2pix_backend_when_asked(tiny_model):
    recipe = Recipe(backend="pix2pix", settings={"pix2pix": Pix2PixSettings(model=str(tiny_model), keyframe_every=3, **FAST)})
    backend, why = backends.load(recipe)
    assert isinstance(backend, KeyframeBackend) and backend.name == "pix2pix" and "keyframes every 3" in why
    with unet_frame_steps(backend.inner.parts.unet) as seen:
        out = backend(pan(7))
    assert sum(seen) == 3 * 4 and out.shape == (7, 48, 64, 3)  # frames 0, 3, 6 diffused
    plain, _ = backends.load(Recipe(backend="pix2pix", settings={"pix2pix": Pix2PixSettings(model=str(tiny_model))}))
    assert isinstance(plain, Pix2PixBackend)


# -- all of it, end to end ----------------------------------------------------------------------


def test_reset_between_clips_clears_all_state(parts):
    settings = Pix2PixSettings(cross_frame=True, reuse_latents=0.5, **FAST)
    a, b = pan(3), frames(4, start=30)
    backend = KeyframeBackend(Pix2PixBackend(parts, settings, batch_size=2), 2)
    backend(a)
    backend.reset()
    fresh = KeyframeBackend(Pix2PixBackend(parts, settings, batch_size=2), 2)
    assert np.array_equal(backend(b), fresh(b))


def test_cli_end_to_end_with_every_option(clip, tmp_path, tiny_model):
    c = clip(frames=8)
    out = tmp_path / "out.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "vidtoon", "cartoonize", str(c.path), "-o", str(out), "--backend", "pix2pix",
         "--model", str(tiny_model), "--steps", "2", "--cross-frame", "--reuse-latents", "0.5", "--keyframe-every", "3"],
        capture_output=True, text=True, timeout=300, env=ENV,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cross-frame attention; latent reuse from step 1 of 2, in groups of 4; keyframes every 3" in proc.stderr
    assert len(read_video(out)[2]) == 8
    assert audio_packets(out) == audio_packets(c.path)


def test_python_api_and_image_command(clip, tmp_path, tiny_model):
    import vidtoon

    c = clip(frames=4)
    result = vidtoon.cartoonize(c.path, tmp_path / "o.mp4", backend="pix2pix", model=str(tiny_model), steps=2,
                                cross_frame=True, reuse_latents=0.5, keyframe_every=2)
    assert result.frames == 4 and len(read_video(tmp_path / "o.mp4")[2]) == 4
    args = ["--backend", "pix2pix", "--model", str(tiny_model), "--steps", "2", "-q"]
    assert main(["image", str(c.path), "-o", str(tmp_path / "p.png"), *args]) == 0
    assert cv2.imread(str(tmp_path / "p.png")).shape == (48, 64, 3)
