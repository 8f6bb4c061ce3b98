"""The InstructPix2Pix backend on a tiny random model (vidtoon.backends.pix2pix.testing), through the
real loading code, the Python API and the command line. CPU only, except the
`gpu` test at the end."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import audio_packets, picture, read_video
from rounding import agree_within_rounding

from vidtoon.backends import pix2pix
from vidtoon.backends.pix2pix import Pix2PixSettings, ip2p
from vidtoon.backends.pix2pix.backend import AUTO_BATCH, Pix2PixBackend
from vidtoon.backends.pix2pix.models import load_components, locate
from vidtoon.cli import ExitStatus, main
from vidtoon.config import Job, Recipe
from vidtoon.errors import BackendUnavailable, SettingsError

# diffusers' schedulers call np.array(tensor, copy=False) under numpy 2; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

FAST = dict(steps=4)  # enough steps for the scheduler's noise to matter, few enough to be quick
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # see the tiny_model fixture


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


def frames(n=8, width=64, height=48, start=0):
    return np.stack([picture(start + i, width, height) for i in range(n)])


def run_cli(*args, env=ENV):
    return subprocess.run([sys.executable, "-m", "vidtoon", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(prompt=42), "--prompt must be text, got int"),
        (dict(prompt=["a", "b"]), "--prompt must be text, got list"),
        (dict(prompt=None), "--prompt must be text"),
        (dict(prompt="  "), "--prompt is empty"),
        (dict(steps=0), "--steps must be between 1 and 200, got 0"),
        (dict(steps=2.5), "--steps must be a whole number"),
        (dict(steps=True), "--steps must be a whole number"),
        (dict(guidance=-1.0), "--guidance must be between"),
        (dict(image_guidance=float("nan")), "--image-guidance must be a number"),
        (dict(seed=-1), "--seed must be between"),
        (dict(max_side=32), "--max-side must be between 64 and 4096, got 32"),
        (dict(size=(512,)), "--size must be WIDTHxHEIGHT"),
        (dict(size=(4, 512)), "--size must be between 8 and 4096, got 4"),
        (dict(device="tpu"), "--torch-device must be one of"),
        (dict(dtype="fp8"), "--dtype must be one of"),
        (dict(model=""), "--model must be"),
    ],
)
def test_settings_name_the_bad_value(options, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Pix2PixSettings(**options)


def test_batch_size_is_the_recipes_and_checked():
    with pytest.raises(SettingsError, match="--batch-size must be between 1 and 256"):
        Recipe(batch_size=0)


@pytest.mark.parametrize(
    ("source", "options", "expected"),
    [
        ((64, 48), {}, (64, 48)),  # small frames keep their size
        ((1920, 1080), {}, (512, 288)),  # scaled down to the long side, aspect kept
        ((1080, 1920), {}, (288, 512)),  # portrait
        ((37, 29), {}, (40, 32)),  # odd: nearest multiples of 8
        ((1, 1), {}, (8, 8)),  # never below 8
        ((1000, 1000), dict(max_side=500), (496, 496)),  # never above max_side
        ((1280, 720), dict(max_side=768), (768, 432)),
        ((640, 360), dict(size=(100, 61)), (104, 64)),  # --size, rounded
    ],
)
def test_work_size_is_multiples_of_8(source, options, expected):
    assert Pix2PixSettings(**options).work_size(*source) == expected


def test_cli_builds_pix2pix_settings():
    from vidtoon.cli import build_parser, recipe_from_args

    args = build_parser().parse_args(
        ["cartoonize", "in.mp4", "-o", "o.mp4", "--prompt", "Make it a comic", "--steps", "7", "--guidance", "5",
         "--image-guidance", "1.2", "--seed", "9", "--size", "320x240", "--offline", "--dtype", "bf16", "--model", "m/x"]
    )
    s = recipe_from_args(args)
    assert s.settings["pix2pix"] == Pix2PixSettings(model="m/x", prompt="Make it a comic", steps=7, guidance=5.0,
                                                    image_guidance=1.2, seed=9, size=(320, 240), offline=True, dtype="bf16")
    assert s.batch_size is None  # unset: each backend's own default
    args = build_parser().parse_args(["cartoonize", "in.mp4", "-o", "o.mp4", "--batch-size", "3"])
    assert recipe_from_args(args).batch_size == 3


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--prompt", ""], "--prompt is empty"), (["--steps", "0"], "--steps must be"), (["--torch-device", "tpu"], "--torch-device")],
)
def test_cli_bad_options_are_one_line_exit_2(clip, tmp_path, capsys, option, message):
    code = main(["cartoonize", str(clip(frames=2).path), "-o", str(tmp_path / "o.mp4"), "--backend", "pix2pix", *option])
    err = capsys.readouterr().err
    assert code == ExitStatus.BAD_INPUT and message in err and err.count("error:") == 1
    assert not (tmp_path / "o.mp4").exists()


def test_cli_bad_size_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["cartoonize", "in.mp4", "-o", "o.mp4", "--size", "512"])
    assert exit.value.code == 2 and "--size must be WIDTHxHEIGHT" in capsys.readouterr().err


# -- the denoising itself ---------------------------------------------------------------------


@pytest.mark.parametrize("guidance", [7.0, 1.0])  # with the 3-way guidance, and without
def test_one_frame_matches_the_diffusers_pipeline(parts, guidance):
    """vidtoon's own loop (ip2p.py) is StableDiffusionInstructPix2PixPipeline.__call__
    taken apart: same noise and generator in, same picture out, to the byte. Exact on any
    CPU: both run the same kernels on the same shapes (one frame, its three guidance
    branches in one UNet call), see tests/helpers/rounding.py."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    settings = Pix2PixSettings(guidance=guidance, image_guidance=1.5, seed=5, steps=6)
    frame = frames(1, start=3)
    ours = Pix2PixBackend(parts, settings)(frame)

    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
        scheduler=type(parts.scheduler).from_config(parts.scheduler.config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    noise = torch.randn((1, 4, 6, 8), generator=torch.Generator().manual_seed(5))  # the backend's clip noise
    image = torch.from_numpy(frame).permute(0, 3, 1, 2).float() / 255  # float [0, 1], never uint8
    theirs = pipe(settings.prompt, image=image, num_inference_steps=6, guidance_scale=guidance,
                  image_guidance_scale=1.5, latents=noise, generator=[torch.Generator().manual_seed(6)],
                  output_type="np").images
    assert theirs.shape == (1, 48, 64, 3)
    np.testing.assert_array_equal(ours, (theirs * 255).round().astype(np.uint8))
    assert ours.std() > 5  # a picture, not a constant


def test_batch_sizes_give_the_same_frames(parts):
    batch = frames(8)
    out = {size: Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=size)(batch) for size in (1, 3, 8)}
    assert out[1].shape == batch.shape and out[1].dtype == np.uint8
    agree_within_rounding(out[3], out[1])
    agree_within_rounding(out[8], out[1])
    assert np.abs(out[1].astype(int) - batch).mean() > 10  # it did change the frames


def test_identical_frames_give_identical_outputs(parts):
    batch = frames(6)
    batch[4] = batch[1]
    batch[5] = batch[1]
    one_by_one = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=1)(batch)
    assert np.array_equal(one_by_one[4], one_by_one[1]) and np.array_equal(one_by_one[5], one_by_one[1])
    together = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=6)(batch)
    agree_within_rounding(together[4], together[1])  # other positions in one batch: see agree_within_rounding
    agree_within_rounding(together[5], together[1])
    assert not np.array_equal(one_by_one[2], one_by_one[1])  # different frames do differ


def test_same_input_same_output_across_loads(tiny_model):
    """Two separately loaded backends, same settings: byte-identical frames; another seed differs."""
    settings = Pix2PixSettings(model=str(tiny_model), **FAST)
    batch = frames(5)
    first, second = pix2pix.load(settings)(batch), pix2pix.load(settings)(batch)
    assert np.array_equal(first, second)
    backend = pix2pix.load(settings)
    backend(batch[:2])
    backend.reset()  # a new clip starts from the same noise
    assert np.array_equal(backend(batch), first)
    other = Pix2PixBackend(backend.parts, Pix2PixSettings(seed=1, **FAST))(batch)
    assert np.abs(other.astype(int) - first).mean() > 1


def test_prompt_changes_the_output_and_is_encoded_once(parts, monkeypatch):
    calls = []
    real = ip2p.encode_prompt
    monkeypatch.setattr(ip2p, "encode_prompt", lambda *a: calls.append(a[2]) or real(*a))
    backend = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=2)
    batch = frames(4)
    out = backend(batch)
    backend.reset()
    backend(batch[:1])
    assert calls == [backend.settings.prompt]  # once for two clips and three batches
    other = Pix2PixBackend(parts, Pix2PixSettings(prompt="Make it snow", **FAST))(batch)
    assert not np.array_equal(other, out)


def test_denoise_can_start_part_way(parts):
    """The hook for reusing the previous frame's latents: start=k runs only the last steps."""
    seen = []
    unet = lambda x, t, **kw: seen.append(t) or parts.unet(x, t, **kw)  # noqa: E731
    scheduler = type(parts.scheduler).from_config(parts.scheduler.config)
    embeds = ip2p.encode_prompt(parts.tokenizer, parts.text_encoder, "Cartoonize", 3)
    with torch.inference_mode():
        image_latents = ip2p.encode_images(parts.vae, torch.zeros(1, 3, 48, 64))
        scheduler.set_timesteps(8)
        latents = torch.randn(1, 4, 6, 8) * scheduler.sigmas[3]
        out = ip2p.denoise(unet, scheduler, latents, image_latents, embeds, 7.0, 1.5, [torch.Generator().manual_seed(0)], start=3)
    assert seen == list(scheduler.timesteps[3:]) and out.shape == latents.shape and torch.isfinite(out).all()


# -- batching and memory ----------------------------------------------------------------------


def test_out_of_memory_halves_the_batch_and_retries_the_same_frames(parts, monkeypatch):
    reference = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=2)(frames(7))
    backend = Pix2PixBackend(parts, Pix2PixSettings(**FAST), batch_size=8)
    done, real = [], backend.run_batch

    def run_batch(chunk):
        if len(chunk) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        done.extend(int(np.flatnonzero((frames(7) == f).all(axis=(1, 2, 3)))[0]) for f in chunk)
        return real(chunk)

    monkeypatch.setattr(backend, "run_batch", run_batch)
    out = backend(frames(7))
    assert done == list(range(7))  # every frame once, in order
    assert backend.batch_size == 2  # 8 -> 4 -> 2, and it stays there
    np.testing.assert_array_equal(out, reference)  # runs of 2, 2, 2, 1 frames both ways: exact
    monkeypatch.setattr(backend, "run_batch", lambda chunk: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError()))
    with pytest.raises(BackendUnavailable, match="out of GPU memory with one 64x48 frame; lower --max-side"):
        backend(frames(3))


def test_pipeline_batches_follow_the_backend(clip, tmp_path, parts, monkeypatch):
    from vidtoon.pipeline import run

    backend = Pix2PixBackend(parts, Pix2PixSettings(steps=1), batch_size=3)
    sizes, real = [], backend.__call__
    monkeypatch.setattr(Pix2PixBackend, "__call__", lambda self, b: sizes.append(len(b)) or real(b))
    run(Job(clip(frames=7).path, tmp_path / "o.mp4"), backend=backend)
    assert sizes == [3, 3, 1]


def test_auto_batch_size_depends_on_the_device(parts):
    assert Pix2PixBackend(parts, Pix2PixSettings()).batch_size == AUTO_BATCH["cpu"]


# -- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "options"),
    [(37, 29, {}), (100, 60, dict(max_side=64)), (64, 48, dict(size=(40, 24)))],
)
def test_frames_come_back_at_their_own_size(parts, width, height, options):
    batch = frames(2, width, height)
    backend = Pix2PixBackend(parts, Pix2PixSettings(**options, **FAST))
    out = backend(batch)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert backend._noise.shape[2:] == tuple(s // 8 for s in backend.settings.work_size(width, height)[::-1])


def test_rejects_what_is_not_a_uint8_rgb_batch(parts):
    backend = Pix2PixBackend(parts, Pix2PixSettings(**FAST))
    with pytest.raises(ValueError, match="uint8"):
        backend(frames(1).astype(np.float32) / 255)
    with pytest.raises(ValueError, match="uint8"):
        backend(frames(1)[0])


def test_prompt_longer_than_the_model_reads_is_refused(parts):
    with pytest.raises(SettingsError, match="--prompt is .* tokens long; the model reads at most 77"):
        Pix2PixBackend(parts, Pix2PixSettings(prompt="cartoon " * 20))


# -- loading: folders, the cache, missing weights ---------------------------------------------


def test_cli_end_to_end_keeps_count_timestamps_and_audio(clip, tmp_path, tiny_model):
    c = clip(frames=9, vfr=True)
    out = tmp_path / "out.mp4"
    proc = run_cli("cartoonize", c.path, "-o", out, "--backend", "pix2pix", "--model", tiny_model, "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert "backend: pix2pix (as asked;" in proc.stderr and "slow on a CPU" in proc.stderr
    in_pts, in_tb, in_frames, _ = read_video(c.path)
    out_pts, out_tb, out_frames, _ = read_video(out)
    assert len(out_frames) == len(in_frames) == 9
    assert [float(p * out_tb) for p in out_pts] == pytest.approx([float(p * in_tb) for p in in_pts], abs=1e-3)
    assert audio_packets(out) == audio_packets(c.path)
    assert np.abs(out_frames[4].astype(int) - in_frames[4]).mean() > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_python_api(clip, tmp_path, tiny_model):
    import vidtoon

    c = clip(width=37, height=29, frames=4)
    result = vidtoon.cartoonize(c.path, tmp_path / "o.mkv", backend="pix2pix", model=str(tiny_model),
                                steps=2, seed=3, batch_size=3, max_side=64)
    assert result.backend == "pix2pix" and result.frames == 4
    assert len(read_video(tmp_path / "o.mkv")[2]) == 4
    with pytest.raises(SettingsError, match="--steps"):
        vidtoon.cartoonize(c.path, tmp_path / "p.mkv", backend="pix2pix", steps=-1)


def fake_hf_cache(root, model_folder, repo="tiny/ip2p"):
    """The Hugging Face cache layout: models--OWNER--NAME/{refs/main, snapshots/COMMIT/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = root / ("models--" + repo.replace("/", "--"))
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(commit)
    shutil.copytree(model_folder, entry / "snapshots" / commit)
    return root


def test_model_from_the_hf_cache_offline(clip, tmp_path, tiny_model):
    cache = fake_hf_cache(tmp_path / "hub", tiny_model)
    env = {**ENV, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    source = clip(frames=3).path
    proc = run_cli("image", source, "-o", tmp_path / "a.png", "--backend", "pix2pix", "--model", "tiny/ip2p",
                   "--steps", "2", "--frame", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("image", source, "-o", tmp_path / "b.png", "--backend", "pix2pix", "--model", "tiny/absent", env=env)
    assert proc.returncode == ExitStatus.BACKEND_UNAVAILABLE
    (line,) = proc.stderr.strip().splitlines()
    assert "'tiny/absent'" in line and str(cache) in line and "--model DIR" in line and "HF_HUB_OFFLINE" in line
    assert not (tmp_path / "b.png").exists()


def test_missing_default_model_offline_says_how_to_get_it(clip, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code = main(["cartoonize", str(clip(frames=2).path), "-o", str(tmp_path / "o.mp4"), "--backend", "pix2pix", "--offline"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == ExitStatus.BACKEND_UNAVAILABLE
    for part in ("instruction-tuning-sd/cartoonizer", str(tmp_path / "empty-cache"), "--model DIR", "hf download"):
        assert part in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t, m: t / "empty", "has no model_index.json"),
        (lambda t, m: t / "file.txt", "is a file"),
        (lambda t, m: t / "./not/here/x", "no such folder, and not a Hugging Face id"),
        (lambda t, m: shutil.rmtree(t / "copy" / "vae") or t / "copy", "has no vae/ folder"),
        (lambda t, m: [p.unlink() for p in (t / "copy" / "unet").glob("*.safetensors")] and t / "copy", "has no weights"),
    ],
)
def test_bad_model_folders_are_one_clear_line(clip, tmp_path, tiny_model, capsys, make, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    shutil.copytree(tiny_model, tmp_path / "copy")
    folder = make(tmp_path, tiny_model)
    code = main(["image", str(clip(frames=1).path), "-o", str(tmp_path / "o.png"), "--backend", "pix2pix",
                 "--model", str(folder), "--offline"])
    err = capsys.readouterr().err
    assert code == ExitStatus.BACKEND_UNAVAILABLE, err
    assert message in err and len(err.strip().splitlines()) == 1


def test_auto_picks_classic_without_cuda(tiny_model):
    from vidtoon.backends import choose

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so auto may pick pix2pix")
    tiny = {"pix2pix": Pix2PixSettings(model=str(tiny_model))}
    assert choose(Recipe(settings=tiny)) == ("classic", "auto: pix2pix cannot run here, no CUDA GPU found")
    assert choose(Recipe(backend="pix2pix", settings=tiny)) == ("pix2pix", "as asked")


# -- one picture ------------------------------------------------------------------------------


def test_image_command_and_preview_frame(clip, tmp_path, tiny_model):
    import cv2

    from vidtoon.backends.classic.filter import cartoonize_image
    from vidtoon.io.reader import open_video

    c = clip(frames=5)
    with open_video(c.path) as video:
        third = [f.rgb for f in video.frames()][3]
    assert main(["image", str(c.path), "-o", str(tmp_path / "c.png"), "--frame", "3", "-q"]) == 0
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "c.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(written, cartoonize_image(third))  # PNG is lossless
    # an image file in, the pix2pix backend, and the same frame as the video path would give
    cv2.imwrite(str(tmp_path / "third.png"), cv2.cvtColor(third, cv2.COLOR_RGB2BGR))
    args = ["--backend", "pix2pix", "--model", str(tiny_model), "--steps", "2", "-q"]
    assert main(["image", str(tmp_path / "third.png"), "-o", str(tmp_path / "p.png"), *args]) == 0
    assert main(["cartoonize", str(c.path), "-o", str(tmp_path / "v.mp4"), "--preview-frame", "3", *args]) == 0
    assert not (tmp_path / "v.mp4").exists()
    p, v = (cv2.imread(str(tmp_path / name)) for name in ("p.png", "v.png"))
    assert p.shape == (48, 64, 3) and np.array_equal(p, v)
    assert main(["image", str(c.path), "-o", str(tmp_path / "x.png"), "--frame", "5"]) == ExitStatus.BAD_INPUT


# -- a real GPU -------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu(tiny_model):
    """fp16 on CUDA: deterministic to the byte; batch sizes agree closely (GPU kernels
    also depend on the batch size); the out-of-memory path stays unexercised here."""
    backend = pix2pix.load(Pix2PixSettings(model=str(tiny_model), device="cuda", **FAST))
    assert backend.device.type == "cuda" and backend.dtype == torch.float16 and backend.batch_size == 16
    batch = frames(8, 96, 64)
    first = backend(batch)
    assert np.array_equal(backend(batch), first)
    for size in (1, 3):
        other = Pix2PixBackend(backend.parts, Pix2PixSettings(**FAST), batch_size=size)(batch)
        assert np.abs(other.astype(int) - first).mean() < 1.0
    cpu = Pix2PixBackend(load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32),
                         Pix2PixSettings(**FAST))(batch)
    assert np.abs(cpu.astype(int) - first).mean() < 3.0  # same noise on every device


def test_import_and_the_classic_path_never_import_torch(clip, tmp_path):
    """The pix2pix options are parsed and validated without torch; --backend auto looks
    for the weights first, so without them it picks classic without importing torch."""
    code = (
        "import sys, vidtoon, vidtoon.cli, vidtoon.backends.pix2pix.models, vidtoon.still\n"
        f"assert vidtoon.cli.main(['cartoonize', {str(clip(frames=2).path)!r}, '-o', {str(tmp_path / 'o.mp4')!r}, "
        "'--backend', 'classic', '--steps', '3', '-q']) == 0\n"
        f"assert vidtoon.cli.main(['image', {str(tmp_path / 'in.mp4')!r}, '-o', {str(tmp_path / 'o.png')!r}, '-q']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**ENV, "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr


def test_full_size_model_is_the_sd15_ip2p_architecture():
    """Built on the meta device (shapes only, no memory): SD1.5's parameter counts, with
    IP2P's 8-channel UNet input, and the same parts as the tiny model."""
    from vidtoon.backends.pix2pix.testing import full_size_model

    pipe = full_size_model("meta")
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(pipe.unet) == 859_532_484  # SD1.5's 859,520,964 + 4 more input channels x 320 x 3 x 3
    assert count(pipe.vae) == 83_653_863 and count(pipe.text_encoder) == 123_060_480
    assert pipe.unet.config.in_channels == 8 and pipe.vae.config.scaling_factor == 0.18215
