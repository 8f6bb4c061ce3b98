"""The instruction-tuned Stable Diffusion cartoonizer (InstructPix2Pix) backend.

Same call shape as every backend: uint8 (N, H, W, 3) RGB frames in, the same out.
Each call runs its frames in GPU batches of at most `batch_size` frames:

1. Frames go to the device as float [0, 1] (never uint8 arrays: diffusers would
   mis-scale them), are resized to the work size (multiples of 8, Pix2PixSettings.
   work_size) and mapped to [-1, 1].
2. The VAE encodes them to image latents (on CUDA in chunks sized to the free
   memory: vae.py).
3. Every frame starts from the clip's one noise tensor (drawn once from the seed)
   and gets its own generator, seeded alike, for the noise the scheduler adds
   at each step. So a frame's result depends only on the frame: identical frames
   give identical outputs, whatever the batch or the position in it.
4. The denoising loop with the 3-way guidance (ip2p.py). Options for
   steadier video: --cross-frame (crossframe.py: self-attention reads the clip's
   first frame), --reuse-latents (latents.py: start part way from the warped result
   of the previous group's last frame, a group of --reuse-batch frames a UNet batch);
   --keyframe-every wraps the whole backend (keyframes.py). --compile: the loop calls
   the torch.compile'd UNet.
5. The VAE decodes (or, with --fast-vae, the tiny TAESD decoder); the pictures
   are resized back to the source size and rounded to uint8.

Prompt embeddings are computed once, on the first call. On CUDA out-of-memory in
the denoising a batch is retried at half the size, and later batches stay at that
size, so no frame is lost or done twice; one in the VAE redoes only that VAE chunk,
smaller (vae.py), keeping the batch's finished denoising. torch and diffusers are imported only here, and only
when this backend is chosen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import BackendUnavailable, SettingsError
from .. import check_batch
from . import Pix2PixSettings, crossframe, reuse_group, schedulers
from .latents import LatentReuse
from .vae import VaeChunks

AUTO_BATCH = {"cuda": 16, "mps": 4, "cpu": 4}  # frames per batch when not given; halved on out-of-memory
CPU_NOTE = "slow on a CPU: minutes a frame at 512 px on a few cores; use a CUDA GPU for video"


def pick_device(device: str, dtype: str) -> tuple[Any, Any]:
    """(torch.device, torch.dtype) for the --torch-device and --dtype choices."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if _has_mps() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(f"--torch-device {device}: no CUDA GPU found (torch {torch.__version__})")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise BackendUnavailable(f"--torch-device {device}: there are only {torch.cuda.device_count()} CUDA GPUs")
    if device == "mps" and not _has_mps():
        raise BackendUnavailable("--torch-device mps: this torch has no Apple MPS device")
    chosen = torch.device(device)
    if dtype == "auto":
        dtype = "fp32" if chosen.type == "cpu" else "fp16"
    return chosen, {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]


class Pix2PixBackend:
    """InstructPix2Pix over a batch of frames; see the module docstring for the steps."""

    name = "pix2pix"
    compile_backend: Any = "inductor"  # torch.compile's backend for --compile (tests trace with a cheaper one)

    def __init__(self, parts: Any, settings: Pix2PixSettings = Pix2PixSettings(), device: Any = None,
                 decoder: Any = None, batch_size: int | None = None) -> None:
        """parts: models.Components or a diffusers StableDiffusionInstructPix2PixPipeline
        (same attributes), already on `device` (default: the UNet's) in the dtype to run in.
        decoder: an AutoencoderTiny (--fast-vae) to decode with instead of parts.vae.
        batch_size: frames per GPU batch (None: AUTO_BATCH for the device)."""
        import torch

        from . import ip2p

        self.parts, self.settings, self.decoder = parts, settings, decoder
        self.device = torch.device(device) if device is not None else parts.unet.device
        self.dtype = parts.unet.dtype
        self.batch_size = batch_size or AUTO_BATCH.get(self.device.type, 4)
        self.branches = ip2p.branches(settings.guidance, settings.image_guidance)  # UNet samples per frame and step
        # A private scheduler (--scheduler, from the model's config): its state (step index,
        # history) is per batch, not shared.
        self.scheduler = schedulers.make(settings.scheduler, parts.scheduler)
        refusal = ip2p.part_way_refusal(self.scheduler) if settings.reuse_latents else ""
        if refusal:
            raise SettingsError(f"--reuse-latents: the model's scheduler {refusal}; run without --reuse-latents "
                                f"or choose one with --scheduler (each of its choices but model can)")
        tokens, limit = ip2p.token_count(parts.tokenizer, settings.prompt), parts.tokenizer.model_max_length
        if tokens > limit:
            raise SettingsError(f"--prompt is {tokens} tokens long; the model reads at most {limit}, shorten it")
        if self.device.type == "cuda":
            _tune_for_cuda(parts)
            if decoder is not None:
                decoder.to(memory_format=torch.channels_last)
        self.summary = f"{settings.model} on {self.device} in {str(self.dtype).removeprefix('torch.')}"
        if settings.scheduler != "model":
            self.summary += f", {schedulers.describe(settings.scheduler, self.scheduler)}"
        if decoder is not None:
            self.summary += f", decoding with {settings.fast_vae}"
        if self.device.type == "cpu":
            self.summary += "; " + CPU_NOTE
        self.unet = parts.unet  # what the loop calls: with --compile, the compiled UNet
        if settings.compile:
            self.unet = compile_unet(parts.unet, self.compile_backend)
            self.summary += (f"; UNet compiled: the first batch (and each new frame size) waits for the compile, "
                             f"minutes the first time, kernels kept in {os.environ['TORCHINDUCTOR_CACHE_DIR']}")
        self.vae_chunks = VaeChunks(self.device)  # the VAE stages in memory-sized chunks
        self._embeds: Any = None  # prompt embeddings, computed on the first call
        self._noise: Any = None  # the clip's initial noise, drawn on its first frame
        # Temporal options (off by default): per-clip state, cleared by reset().
        self.anchors = crossframe.Anchors() if settings.cross_frame else None
        self._processors: Any = None  # the cross-frame attention processors, made on the first batch
        group = reuse_group(settings)
        self.reuse = LatentReuse(settings.reuse_latents, settings.steps, group) if group else None
        if self.anchors is not None:
            self.summary += "; cross-frame attention"
        if self.reuse is not None:
            self.summary += f"; latent reuse from step {self.reuse.k} of {settings.steps}"
            if self.reuse.group > 1:  # (the webcam's stream batch has anchors of its own: stream.py)
                self.summary += f", in groups of {self.reuse.group}"

    def reset(self) -> None:
        """Start a new clip: its noise is drawn afresh (the same, from the same seed),
        the cross-frame anchor and the reused latents are forgotten."""
        self._noise = None
        if self.anchors is not None:
            self.anchors.clear()
        if self.reuse is not None:
            self.reuse.reset()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """batch: uint8 (N, H, W, 3) RGB. Returns a new uint8 array of the same shape."""
        import torch

        check_batch(batch, "pix2pix")
        out = np.empty_like(batch)
        done = 0
        while done < len(batch):
            size = min(self.batch_size, len(batch) - done)
            try:
                out[done : done + size] = self.run_batch(batch[done : done + size])
                done += size
                continue
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    width, height = self.settings.work_size(batch.shape[2], batch.shape[1])
                    raise BackendUnavailable(
                        f"out of GPU memory with one {width}x{height} frame; lower --max-side (or --size)"
                    ) from None
            # Outside the except block, so the failed batch's tensors are already freed.
            # Halve the limit; below the failed size, so a short last batch cannot loop.
            self.batch_size = max(1, min(self.batch_size // 2, size - 1))
            torch.cuda.empty_cache()
        return out

    def run_batch(self, frames: np.ndarray) -> np.ndarray:
        """Steps 1-5 of the module docstring on frames that fit the device in one go."""
        import torch

        height, width = frames.shape[1:3]
        state = self.reuse.snapshot() if self.reuse is not None else None
        try:
            if self.reuse is not None:  # the flows on a CPU thread while the VAE and the UNet work
                self.reuse.look_ahead(frames)
            with torch.inference_mode(), self._cross_frame():
                # 1-2. uint8 NHWC -> float [-1, 1] NCHW at the work size -> image latents.
                image_latents = self.encode_frames(frames)
                # 3-4. Where each frame's denoising starts; denoise.
                if self.reuse is None:
                    latents = self._denoise(image_latents, *self.initial_latents(image_latents))
                else:  # group by group: each group's frames start from the last group's last result
                    latents = torch.cat([self._denoise_reused(frames[a:b], image_latents[a:b])
                                         for a, b in self.reuse.segments(len(frames))])
                # 5. Decode, back to the source size.
                return self.decode_frames(latents, height, width)
        except BaseException:
            if state is not None:  # the batch is retried (out of memory) or the run ends
                self.reuse.restore(state)
            raise

    def encode_frames(self, frames: np.ndarray) -> Any:
        """Steps 1-2: uint8 (N, H, W, 3) frames -> unscaled image latents (inference mode)."""
        from . import ip2p

        vae = self.parts.vae
        return self.vae_chunks("encode", vae, lambda c: ip2p.encode_images(vae, c), self._to_model(frames))

    def decode_frames(self, latents: Any, height: int, width: int) -> np.ndarray:
        """Step 5: final latents -> uint8 (N, height, width, 3) on the CPU, through the VAE
        (--fast-vae: the tiny decoder). An out-of-memory redoes only the decode, in smaller
        chunks (vae.py)."""
        from . import ip2p

        if self.decoder is None:
            vae = self.parts.vae
            pictures = self.vae_chunks("decode", vae, lambda c: ip2p.decode(vae, c), latents)
        else:
            pictures = self.vae_chunks("decode", self.decoder, lambda c: ip2p.decode_tiny(self.decoder, c), latents)
        return self._to_frames(pictures, height, width)

    def stream(self) -> Any:
        """The live stream batch over this backend (stream.py), or None where it cannot run:
        cross-frame attention keys the first frame's attention by the step, one step a call."""
        from .stream import Stream

        return None if self.anchors is not None else Stream(self)

    def _denoise(self, image_latents: Any, latents: Any, start: int) -> Any:
        """Step 4: the loop from `start`, one generator per frame (all seeded alike)."""
        import torch

        from . import ip2p

        s = self.settings
        generators = [torch.Generator("cpu").manual_seed(self._step_seed()) for _ in range(len(latents))]
        on_step = self.anchors.at if self.anchors is not None else None
        return ip2p.denoise(self.unet, self.scheduler, latents, image_latents, self._prompt_embeds(),
                            s.guidance, s.image_guidance, generators, start, on_step)

    def _denoise_reused(self, frames: np.ndarray, image_latents: Any) -> Any:
        """The frames of one group (or of the part of it in this call) with --reuse-latents
        (latents.py): those reused run from step k in one batched loop, those restarted
        from step 0 in another; keeps their results for the next group."""
        import torch

        self.scheduler.set_timesteps(self.settings.steps, device=self.device)
        noise = self._clip_noise(image_latents.shape[1:])
        runs = self.reuse.starts(self.scheduler, frames, image_latents, noise, self.parts.vae.config.scaling_factor)
        finals, done = [], 0
        for start, latents in runs:
            self.scheduler.set_timesteps(self.settings.steps, device=self.device)  # also resets the step index
            finals.append(self._denoise(image_latents[done : done + len(latents)], latents, start))
            done += len(latents)
        final = torch.cat(finals) if len(finals) > 1 else finals[0]
        self.reuse.keep(final)
        return final

    def _cross_frame(self) -> Any:
        """The cross-frame attention processors while a batch runs (--cross-frame), else nothing."""
        from contextlib import nullcontext

        if self.anchors is None:
            return nullcontext()
        if self._processors is None:  # the same ones on every batch: a compiled UNet is not recompiled
            self._processors = self.anchors.processors(self.parts.unet, groups=self.branches)
        return crossframe.installed(self.parts.unet, self._processors)

    def initial_latents(self, image_latents: Any) -> tuple[Any, int]:
        """(latents, first step) for a batch: the clip's one noise tensor for every frame,
        from step 0 (--reuse-latents starts from the previous frame's instead: latents.py)."""
        self.scheduler.set_timesteps(self.settings.steps, device=self.device)
        noise = self._clip_noise(image_latents.shape[1:])
        return noise.expand(len(image_latents), -1, -1, -1) * self.scheduler.init_noise_sigma, 0

    def _to_model(self, frames: np.ndarray) -> Any:
        import torch
        import torch.nn.functional as F

        height, width = frames.shape[1:3]
        work_w, work_h = self.settings.work_size(width, height)
        x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float() / 255
        if (work_h, work_w) != (height, width):
            x = F.interpolate(x, size=(work_h, work_w), mode="bicubic", antialias=True).clamp(0, 1)
        x = (2 * x - 1).to(self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    def _to_frames(self, pictures: Any, height: int, width: int) -> np.ndarray:
        """float [0, 1] NCHW at the work size -> uint8 NHWC at (height, width), on the CPU."""
        import torch
        import torch.nn.functional as F

        y = pictures.float()
        if y.shape[2:] != (height, width):
            y = F.interpolate(y, size=(height, width), mode="bicubic", antialias=True).clamp(0, 1)
        return (y * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _prompt_embeds(self) -> Any:
        from . import ip2p

        if self._embeds is None:
            self._embeds = ip2p.encode_prompt(self.parts.tokenizer, self.parts.text_encoder, self.settings.prompt, self.branches)
        return self._embeds

    def _clip_noise(self, shape: tuple[int, ...]) -> Any:
        """(1, C, h, w) standard normal noise from the seed, drawn on the CPU in float32,
        so it is the same on every device and for every batch of the clip."""
        import torch

        if self._noise is None or self._noise.shape[1:] != shape:
            generator = torch.Generator("cpu").manual_seed(self.settings.seed)
            noise = torch.randn((1, *shape), generator=generator, dtype=torch.float32)
            self._noise = noise.to(self.device, self.dtype)
        return self._noise

    def _step_seed(self) -> int:
        # Not the noise's own seed, so the first step's noise is not the initial noise again.
        return (self.settings.seed + 1) % 2**63


def compile_unet(unet: Any, backend: Any = "inductor") -> Any:
    """torch.compile of the UNet, shapes fixed (a clip's frames share one size), its kernels
    kept in a persistent cache (TORCHINDUCTOR_CACHE_DIR, unless set: inductor_cache())."""
    import torch

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache()))
    return torch.compile(unet, backend=backend, dynamic=False)


def inductor_cache() -> Path:
    """~/.cache/vidtoon/inductor (or under $XDG_CACHE_HOME)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vidtoon" / "inductor"


def _tune_for_cuda(parts: Any) -> None:
    """channels_last convolutions and torch's fused SDPA attention."""
    import torch
    from diffusers.models.attention_processor import AttnProcessor2_0

    for model in (parts.unet, parts.vae):
        model.to(memory_format=torch.channels_last)
        model.set_attn_processor(AttnProcessor2_0())


def _has_mps() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
