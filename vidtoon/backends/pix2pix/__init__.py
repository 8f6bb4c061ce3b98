"""The pix2pix backend: the instruction-tuned Stable Diffusion cartoonizer
(InstructPix2Pix), run through torch and diffusers. This module is the light
part (settings, options, whether it can run here); the rest loads with it:

    backend.py     Pix2PixBackend: batches of frames through the model
    ip2p.py        the denoising loop with InstructPix2Pix's 3-way guidance (2 or 1 UNet samples where exact)
    schedulers.py  --scheduler: the sampler, built from the model's own scheduler config
    lora.py        --lora: a LoRA (e.g. LCM-LoRA) fused into the model, safetensors only
    models.py      finding the weights (folder or HF cache) and loading them safely
    crossframe.py  --cross-frame: self-attention reads the clip's first frame
    latents.py     --reuse-latents, --reuse-batch: start from a previous frame's warped result, in groups
    keyframes.py   --keyframe-every: diffuse keyframes, warp the frames between
    similar.py     --skip-similar: frames that barely changed skip the model (webcam)
    stream.py      the webcam's stream batch: frames at staggered steps, one UNet call a frame
    vae.py         the VAE stages in chunks sized to the free GPU memory, retried smaller
    testing.py     tiny random models, built offline, for tests and benchmarks
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...config import FILE, IMAGE, LIVE, check_bool, check_int, check_number, option
from ...errors import SettingsError
from .. import BackendSpec
from .schedulers import SCHEDULERS

MODEL_ID = "instruction-tuning-sd/cartoonizer"  # the InstructPix2Pix cartoonizer fine-tune
TAESD_MODEL = "madebyollin/taesd"  # the tiny VAE decoder that --fast-vae uses when given no id or folder
DEVICES = ("auto", "cuda", "mps", "cpu")  # "cuda:N" picks one GPU
DTYPES = ("auto", "fp16", "bf16", "fp32")
NOT_IMAGE = frozenset({FILE, LIVE})  # needs the frames before it: nothing to gain on one picture


LIVE_STEPS = 4  # live: denoising steps at most (20 by default for files)
LIVE_MAX_SIDE = 256  # live: long side of the frames it works on, at most
LIVE_REUSE = 0.5  # live: --reuse-latents unless asked otherwise: half the steps after the first frame
LIVE_REUSE_BATCH = 1  # live: --reuse-batch unless asked: one camera frame a call, grouping would only add latency
REUSE_BATCH = 4  # files: --reuse-batch unless asked: frames a UNet batch, each warped from up to this many back
LIVE_SCHEDULER = "dpm++"  # live: unless asked otherwise; better than Euler ancestral at few steps
LIVE_SKIP_SIMILAR = 0.98  # live: --skip-similar unless asked otherwise (StreamDiffusion's default)


def parse_work_size(text: str) -> tuple[int, int]:
    """--size's argparse type: '512x384' -> (512, 384), a usage error otherwise
    (the range is Pix2PixSettings' to check)."""
    import argparse

    from ...io.files import parse_size

    try:
        return parse_size(text)
    except SettingsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@dataclass(frozen=True)
class Pix2PixSettings:
    """The InstructPix2Pix cartoonizer (backend.py)."""

    model: str = option(MODEL_ID, "--model", "Hugging Face id (from its cache) or a folder saved with "
                        "save_pretrained", metavar="ID_OR_DIR")
    prompt: str = option("Cartoonize the following image", "--prompt", "the instruction the model was tuned on")
    steps: int = option(20, "--steps", "denoising steps, 1-200; fewer is faster and rougher")
    scheduler: str = option("model", "--scheduler", "the sampler: model (the model's own: Euler ancestral for the "
                            "cartoonizer), euler-a, euler, ddim, dpm++ (DPM-Solver++ 2M, Karras sigmas: 8-10 steps), "
                            "unipc, lcm (with an LCM LoRA, 4 steps)", choices=tuple(SCHEDULERS), metavar="NAME")
    image_guidance: float = option(1.5, "--image-guidance", "how closely the output follows the input frame")
    guidance: float = option(7.0, "--guidance", "how strongly the output follows the prompt")
    seed: int = option(0, "--seed", "the clip's one noise seed: same input, same output")
    max_side: int = option(512, "--max-side", "process frames with the long side at most this, multiples of 8 "
                           "(SD1.5 saw 512)")
    size: tuple[int, int] | None = option(None, "--size", "process frames at this size instead (rounded to "
                                          "multiples of 8)", scopes={FILE, IMAGE}, type=parse_work_size,
                                          metavar="WxH")
    offline: bool = option(False, "--offline", "never download weights (as HF_HUB_OFFLINE=1)")
    device: str = option("auto", "--torch-device", f"{', '.join(DEVICES)} or cuda:N (auto: cuda, mps, cpu); "
                         "mps (Apple GPUs) is offered but untested: no test or run has used it")
    dtype: str = option("auto", "--dtype", "auto: fp16 on a GPU, fp32 on a CPU", choices=DTYPES)
    # Temporal consistency (crossframe.py, latents.py, keyframes.py); all off by default,
    # so a plain run is per-frame with the shared noise only.
    cross_frame: bool = option(False, "--cross-frame", "self-attention of every frame attends to the clip's first "
                               "frame (steadier look; more memory)", scopes=NOT_IMAGE)
    reuse_latents: float | None = option(
        None, "--reuse-latents", "start each frame from the previous one's result warped along the motion, "
        "noised by STRENGTH in (0, 1] (e.g. 0.5: half the steps); default off", scopes=NOT_IMAGE,
        type=float, metavar="STRENGTH",
    )
    reuse_batch: int | None = option(
        None, "--reuse-batch", f"with --reuse-latents: groups of N frames all start from the last frame of the group "
        f"before, so the UNet batches them (a frame is warped from up to N frames back; 1: each from the one before); "
        f"default {REUSE_BATCH}, {LIVE_REUSE_BATCH} in the webcam", scopes=NOT_IMAGE, type=int, metavar="N",
    )
    keyframe_every: int = option(1, "--keyframe-every", "diffuse every K-th frame and scene cuts only, warp the "
                                 "result along the motion between them (K times fewer diffusion runs; 1: every "
                                 "frame)", scopes=NOT_IMAGE, metavar="K")
    compile: bool = option(False, "--compile", "compile the UNet (torch.compile): faster on a GPU once compiled; the "
                           "first batch waits for the compile (minutes the first time, then cached)")
    lora: str | None = option(None, "--lora", "fuse this LoRA into the model: a .safetensors file, a folder or a "
                              "Hugging Face id (from its cache), safetensors only; e.g. an LCM LoRA with --scheduler "
                              "lcm --steps 4", metavar="PATH_OR_ID")
    lora_scale: float = option(1.0, "--lora-scale", "how strongly --lora applies, 0-4 (0: not at all)", metavar="X")
    skip_similar: float | None = option(
        None, "--skip-similar", f"skip the model on a frame that barely changed since the last one it ran on "
        f"(cosine similarity near THRESHOLD and above; StreamDiffusion's stochastic filter); default "
        f"{LIVE_SKIP_SIMILAR:g}, 1: off", scopes={LIVE}, type=float, metavar="THRESHOLD",
    )
    fast_vae: str | None = option(None, "--fast-vae", f"decode with the tiny TAESD decoder (AutoencoderTiny; "
                                  f"default id {TAESD_MODEL}): several times faster than the model's VAE, "
                                  "slightly softer pictures", nargs="?", const=TAESD_MODEL, metavar="ID_OR_DIR")

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise SettingsError(f"--model must be a Hugging Face id or a folder, got {self.model!r}")
        if not isinstance(self.prompt, str):
            raise SettingsError(f"--prompt must be text, got {type(self.prompt).__name__} {self.prompt!r}")
        if not self.prompt.strip():
            raise SettingsError("--prompt is empty; give an instruction such as 'Cartoonize the following image'")
        check_int("--steps", self.steps, 1, 200)
        if self.scheduler not in SCHEDULERS:
            raise SettingsError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        check_number("--image-guidance", self.image_guidance, 0.0, 20.0)
        check_number("--guidance", self.guidance, 0.0, 50.0)
        check_int("--seed", self.seed, 0, 2**63 - 1)
        check_int("--max-side", self.max_side, 64, 4096)
        if isinstance(self.size, list):
            object.__setattr__(self, "size", tuple(self.size))
        if self.size is not None:
            if not (isinstance(self.size, tuple) and len(self.size) == 2):
                raise SettingsError(f"--size must be WIDTHxHEIGHT, such as 512x384, got {self.size!r}")
            for side in self.size:
                check_int("--size", side, 8, 4096)
        check_bool("offline", self.offline)
        if self.device not in DEVICES and not (isinstance(self.device, str) and self.device.startswith("cuda:")
                                               and self.device[5:].isdigit()):
            raise SettingsError(f"--torch-device must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}")
        if self.fast_vae is not None and not (isinstance(self.fast_vae, str) and self.fast_vae.strip()):
            raise SettingsError(f"--fast-vae must be a Hugging Face id or a folder, got {self.fast_vae!r}")
        if self.lora is not None and not (isinstance(self.lora, str) and self.lora.strip()):
            raise SettingsError(f"--lora must be a file, a folder or a Hugging Face id, got {self.lora!r}")
        check_number("--lora-scale", self.lora_scale, 0.0, 4.0)
        if self.lora is None and self.lora_scale != 1.0:
            raise SettingsError("--lora-scale needs --lora (the LoRA to scale)")
        if self.dtype not in DTYPES:
            raise SettingsError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        check_bool("cross_frame", self.cross_frame)
        check_bool("compile", self.compile)
        if self.reuse_latents is not None:
            check_number("--reuse-latents", self.reuse_latents, 0.0, 1.0)
            if self.reuse_latents == 0:  # 0 means off, stored as None so equal settings compare equal
                object.__setattr__(self, "reuse_latents", None)
        if self.reuse_batch is not None:
            check_int("--reuse-batch", self.reuse_batch, 1, 64)
        check_int("--keyframe-every", self.keyframe_every, 1, 1000)
        if self.skip_similar is not None:
            check_number("--skip-similar", self.skip_similar, 0.5, 1.0)

    def work_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) a width x height frame is processed at: --size, or scaled
        down to fit max_side (never up), keeping the aspect ratio; both multiples of 8."""
        if self.size is not None:
            return _round8(self.size[0]), _round8(self.size[1])
        scale = min(1.0, self.max_side / max(width, height))
        cap = self.max_side - self.max_side % 8
        return min(cap, _round8(width * scale)), min(cap, _round8(height * scale))


DEFAULTS = Pix2PixSettings()


def _round8(x: float) -> int:
    """Nearest multiple of 8, at least 8 (the VAE works on 8x8 pixel cells)."""
    return max(8, 8 * int(x / 8 + 0.5))  # halves round up (round() would go to even)


def availability(settings: Pix2PixSettings = Pix2PixSettings()) -> tuple[bool, str]:
    """Can the diffusion backend run here with this --model? Checked cheapest first;
    torch is imported only when it is installed and the weights are here."""
    missing = missing_package()
    if missing:
        return False, missing
    model = settings.model
    if not (Path(model).expanduser().is_dir() or _cached(model)):
        return False, f"the {model} weights are not in the Hugging Face cache"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU found"
    return True, f"a CUDA GPU and the {model} weights are here"


def reuse_group(settings: Pix2PixSettings) -> int:
    """Frames a latent-reuse group (--reuse-batch; REUSE_BATCH unless given), 0 without
    --reuse-latents. A --reuse-batch without it is refused (live() turns reuse on first)."""
    if settings.reuse_latents is None:
        if settings.reuse_batch is not None:
            raise SettingsError("--reuse-batch needs --reuse-latents (the frames it groups)")
        return 0
    return settings.reuse_batch or REUSE_BATCH


def live(settings: Pix2PixSettings) -> tuple[Pix2PixSettings, str]:
    """The fastest settings for live use: few steps, a small work size, latent reuse
    (frames after the first run only part of the steps), DPM-Solver++ and two guidance
    branches unless another scheduler or image guidance was asked for, and the similarity
    filter; the live loop runs them as a stream batch where streams() says it can.
    A --size asked for is kept; only the steps come down."""
    fast = replace(settings, steps=min(settings.steps, LIVE_STEPS), reuse_latents=settings.reuse_latents or LIVE_REUSE,
                   reuse_batch=settings.reuse_batch or LIVE_REUSE_BATCH,  # frame by frame only: a stream has its own anchors
                   skip_similar=LIVE_SKIP_SIMILAR if settings.skip_similar is None else settings.skip_similar)
    if settings.size is None:
        fast = replace(fast, max_side=min(settings.max_side, LIVE_MAX_SIDE))
    if settings.scheduler == DEFAULTS.scheduler:
        fast = replace(fast, scheduler=LIVE_SCHEDULER)
    if settings.image_guidance == DEFAULTS.image_guidance:  # 1: two UNet samples a step instead of three, exactly
        fast = replace(fast, image_guidance=1.0)
    skip = (f"skipping the model on frames that barely changed (similarity {fast.skip_similar:g})"
            if fast.skip_similar < 1 else "every frame through the model")
    size = f"{fast.size[0]}x{fast.size[1]}" if fast.size else f"{fast.max_side} px on the long side"
    if streams(fast):
        from .latents import start_step

        if settings.reuse_batch is not None:
            raise SettingsError("--reuse-batch does not apply live: the stream batch starts each frame from the newest "
                                "finished one (with --cross-frame the webcam runs frame by frame, in groups)")
        late = fast.steps - start_step(fast.steps, fast.reuse_latents) - 1  # frames a cartoon waits in flight
        when = f"{late} frame{'s' if late > 1 else ''} later" if late else "at once"
        how = (f"in a stream batch (each camera frame joins those in flight at staggered steps: one UNet call a frame, "
               f"its cartoon {when}), each frame from the newest finished one's latents (strength {fast.reuse_latents:g})")
    else:
        reuse = ("reusing the last frame's latents" if fast.reuse_batch == 1 else
                 f"reusing latents in groups of {fast.reuse_batch} frames, each from the last frame of the group before "
                 "(no bigger UNet batch: one camera frame a call)")
        why = "--cross-frame" if fast.cross_frame else "--keyframe-every"
        how = (f"one frame at a time ({why} cannot stream), {reuse} (strength {fast.reuse_latents:g}, "
               f"--reuse-batch {fast.reuse_batch})")
    note = (f"pix2pix live: {fast.steps} steps, frames worked at {size}, {how}, scheduler {fast.scheduler}, image "
            f"guidance {fast.image_guidance:g}, {skip}, for speed; the newest camera frame is always the next one taken")
    return fast, note


def streams(settings: Pix2PixSettings) -> bool:
    """Whether the webcam runs these settings as a stream batch (stream.py): not with
    --cross-frame (its attention store is keyed by the step, one step a call) nor with
    --keyframe-every (the frames between keyframes are warped, not diffused)."""
    return not settings.cross_frame and settings.keyframe_every == 1


def load(settings: Pix2PixSettings, batch_size: int | None = None) -> Any:
    """Find and load the model that settings names; build the backend (and its
    keyframe wrapper with --keyframe-every)."""
    from ...errors import BackendUnavailable

    reuse_group(settings)  # a refusal before any weights load
    missing = missing_package()
    if missing:
        raise BackendUnavailable(f"the pix2pix backend needs torch and diffusers: {missing}")
    from . import models
    from .backend import Pix2PixBackend, pick_device

    device, dtype = pick_device(settings.device, settings.dtype)
    folder = models.locate(settings.model, settings.offline)
    lora_file = None
    if settings.lora:
        from . import lora

        lora_file = lora.locate(settings.lora, settings.offline)  # before the model loads: a refusal comes first
    decoder = models.load_tiny_decoder(settings.fast_vae, settings.offline, device, dtype) if settings.fast_vae else None
    parts = models.load_components(folder, device, dtype)
    if lora_file is not None:
        lora.fuse(parts, lora_file, settings.lora_scale)
    backend = Pix2PixBackend(parts, settings, device, decoder, batch_size)
    if lora_file is not None:
        backend.summary += f"; LoRA {settings.lora} fused at scale {settings.lora_scale:g}"
    if settings.keyframe_every > 1:
        from .keyframes import KeyframeBackend

        backend = KeyframeBackend(backend, settings.keyframe_every)
    if settings.skip_similar is not None and settings.skip_similar < 1:
        from .similar import SimilarityFilter

        backend = SimilarityFilter(backend, settings.skip_similar, seed=settings.seed)
    return backend


def missing_package() -> str:
    for module in ("torch", "diffusers", "transformers"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'vidtoon[diffusion]')"
    return ""


def _cached(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(model_id, "model_index.json"), str)
    except ValueError:  # not a valid repository id
        return False


SPEC = BackendSpec(
    name="pix2pix",
    help="the InstructPix2Pix cartoonizer (Stable Diffusion): needs torch, the weights and, for video, a GPU",
    settings=Pix2PixSettings,
    load=load,
    available=availability,
    gpu=True,
    live=live,
)
