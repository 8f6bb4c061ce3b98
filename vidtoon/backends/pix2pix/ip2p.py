"""The InstructPix2Pix edit in numbered steps, over plain components (models.Components).

It is diffusers' StableDiffusionInstructPix2PixPipeline.__call__ taken apart
(tests/test_pix2pix.py proves the two agree on a frame), so that the video
backend can prepare once and keep state between batches:

    embeds = encode_prompt(parts.tokenizer, parts.text_encoder, prompt, branches(guidance, image_guidance))  # once
    image_latents = encode_images(parts.vae, frames)         # frames: float [-1, 1]
    scheduler.set_timesteps(steps, device)
    latents = denoise(parts.unet, scheduler, noise * scheduler.init_noise_sigma,
                      image_latents, embeds, guidance, image_guidance, generators)
    pictures = decode(parts.vae, latents)                    # float [0, 1]

Batch layout under guidance (as in diffusers): the UNet sees 3N samples,
[prompt and image | image only | neither], each block in frame order. With
image guidance exactly 1 the "neither" branch cancels out of the formula, so it
sees 2N, [prompt and image | image only]; without guidance, N (branches()).
Attention processors that mix frames (cross-frame attention) must group by the
number of branches.

`denoise(..., start=k)` skips the first k steps, for a caller that brings latents
already at timestep remaining_timesteps(scheduler, k)[0] (reusing the previous
frame's latents); part_way_refusal() says which schedulers cannot do that.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch


def branches(guidance: float, image_guidance: float) -> int:
    """UNet samples per frame and step. IP2P's guided noise is
        none + guidance * (text - image) + image_guidance * (image - none):
    3 branches [text | image | none]; with image_guidance == 1 the `none` terms cancel,
    leaving image + guidance * (text - image): 2 branches [text | image], the same
    result up to float rounding. Guidance is off, 1 branch (text), by diffusers' rule
    (guidance <= 1 or image_guidance < 1), which covers both scales being 1."""
    if not (guidance > 1.0 and image_guidance >= 1.0):
        return 1
    return 2 if image_guidance == 1.0 else 3


def tokenize(tokenizer: Any, prompt: str) -> Any:
    """Token ids (and mask) padded or cut to the model's length, as diffusers does."""
    return tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt")


def token_count(tokenizer: Any, prompt: str) -> int:
    """Tokens in `prompt`, start and end included (the model reads model_max_length)."""
    return len(tokenizer(prompt).input_ids)


def encode_prompt(tokenizer: Any, text_encoder: Any, prompt: str, count: int = 3) -> torch.Tensor:
    """Text embeddings, one row per branch (branches()): (1, L, D) = [prompt],
    (2, L, D) = [prompt, ""] or (3, L, D) = [prompt, "", ""]."""
    if count not in (1, 2, 3) or isinstance(count, bool):
        raise ValueError(f"encode_prompt: count must be 1, 2 or 3 branches, got {count!r}")
    device, dtype = text_encoder.device, text_encoder.dtype
    # 1. The instruction.
    embeds = _text_states(text_encoder, tokenize(tokenizer, prompt), device)
    if count == 1:
        return embeds.to(dtype)
    # 2. The empty prompt, for the image-only and unconditional branches.
    none = _text_states(text_encoder, tokenize(tokenizer, ""), device)
    return torch.cat([embeds, *[none] * (count - 1)]).to(dtype)


def encode_images(vae: Any, images: torch.Tensor) -> torch.Tensor:
    """Image latents (N, 4, h/8, w/8) of images in [-1, 1]: the mode of the VAE's
    posterior, unscaled (IP2P conditions on them as they are)."""
    return vae.encode(images.to(vae.dtype)).latent_dist.mode()


def denoise(
    unet: Any,
    scheduler: Any,
    latents: torch.Tensor,
    image_latents: torch.Tensor,
    embeds: torch.Tensor,
    guidance: float,
    image_guidance: float,
    generators: list[torch.Generator],
    start: int = 0,
    on_step: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Run the scheduler's steps from `start` on; `scheduler.set_timesteps` must have run.
    latents: (N, 4, h, w), already scaled for the first step; image_latents: (N, 4, h, w);
    embeds from encode_prompt, one row per branch; one generator per frame (the ancestral noise).
    on_step(timestep) before each UNet call, with the timestep as a Python float (read from
    the device once per run, not once per step: cross-frame attention keys its store by it)."""
    # 1. Conditioning for the whole batch: [text | image | none] blocks (one a branch).
    embeds, image_latents = conditioning(embeds, image_latents, image_guidance)
    step_kwargs = step_kwargs_for(scheduler, generators)
    timesteps = begin(scheduler, start)
    # 2. The loop: scale, concatenate the image latents as extra channels, predict, guide, step.
    values = timesteps.tolist() if on_step is not None else []
    for i, t in enumerate(timesteps):
        if on_step is not None:
            on_step(values[i])
        noise = predict(unet, scheduler.scale_model_input(latents, t), t, image_latents, embeds, guidance, image_guidance)
        latents = scheduler.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
    return latents


def conditioning(embeds: torch.Tensor, image_latents: torch.Tensor, image_guidance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(text, image) conditioning of N frames in the UNet's batch layout, one block of N per
    branch: embeds from encode_prompt (one row per branch), image_latents (N, 4, h, w)."""
    n, count = image_latents.shape[0], embeds.shape[0]
    if count == 2 and image_guidance != 1.0:
        raise ValueError(f"two-branch guidance is exact only at image guidance 1, not {image_guidance}")
    blocks = torch.cat([e.expand(n, -1, -1) for e in embeds.unbind()])
    return blocks, torch.cat([image_latents, image_latents, torch.zeros_like(image_latents)][:count])


def predict(unet: Any, scaled: torch.Tensor, t: torch.Tensor, image_latents: torch.Tensor, embeds: torch.Tensor,
            guidance: float, image_guidance: float) -> torch.Tensor:
    """The guided noise of one step, one UNet call: scaled (N, 4, h, w) latents already
    through scale_model_input; t one timestep or one per frame (N,); image_latents and
    embeds from conditioning(). Scaling is per element, so scaling before the branches are
    stacked is the same as after."""
    count = embeds.shape[0] // scaled.shape[0]
    model_input = torch.cat([scaled] * count) if count > 1 else scaled
    if t.ndim:  # a timestep per frame, the same in each branch
        t = t.repeat(count)
    model_input = torch.cat([model_input, image_latents], dim=1)
    return guide(unet(model_input, t, encoder_hidden_states=embeds, return_dict=False)[0], count, guidance, image_guidance)


def guide(noise: torch.Tensor, count: int, guidance: float, image_guidance: float) -> torch.Tensor:
    """The guided noise from the UNet's `count` branches (branches())."""
    if count == 3:
        text, image, none = noise.chunk(3)
        return none + guidance * (text - image) + image_guidance * (image - none)
    if count == 2:  # image_guidance == 1: the `none` terms cancel
        text, image = noise.chunk(2)
        return image + guidance * (text - image)
    return noise


# Schedulers without set_begin_index whose step depends only on (timestep, sample): they
# start part-way by being handed the later timesteps (diffusers' img2img does the same).
BY_TIMESTEP = ("DDIMScheduler", "DDPMScheduler", "DDIMParallelScheduler", "DDPMParallelScheduler")


def part_way_refusal(scheduler: Any) -> str:
    """Why `scheduler` cannot start at a later step (--reuse-latents), or "" if it can."""
    name = type(scheduler).__name__
    if not hasattr(scheduler, "add_noise"):
        return f"{name} cannot noise a latent to a given step (it has no add_noise)"
    if name == "PNDMScheduler" and not scheduler.config.skip_prk_steps:
        return f"{name} with skip_prk_steps=False runs Runge-Kutta warm-up steps that cannot start part-way"
    if hasattr(scheduler, "set_begin_index") or name in BY_TIMESTEP or name == "PNDMScheduler":
        return ""
    return f"{name} keeps per-step state and has no set_begin_index, so it cannot start part-way"


def begin(scheduler: Any, start: int) -> torch.Tensor:
    """Set `scheduler` (set_timesteps has run) to run from step `start`; the timesteps it
    then goes through (remaining_timesteps())."""
    if start and hasattr(scheduler, "set_begin_index"):  # schedulers that count their steps
        scheduler.set_begin_index(start * scheduler.order)
    return remaining_timesteps(scheduler, start)


def remaining_timesteps(scheduler: Any, start: int) -> torch.Tensor:
    """The timesteps a run from step `start` of the schedule goes through (set_timesteps has run).
    Higher-order schedulers hold `order` entries a step. PNDM's linear multistep repeats its
    second timestep as a warm-up; a run that starts later needs that warm-up at its own start,
    or it stops one step short and leaves noise."""
    if not start:
        return scheduler.timesteps
    if type(scheduler).__name__ == "PNDMScheduler":  # skip_prk_steps (part_way_refusal refuses the rest)
        plain = torch.from_numpy(scheduler._timesteps[::-1].copy())[start:].to(scheduler.timesteps)
        return torch.cat([plain[:2], plain[1:2], plain[2:]]) if len(plain) > 1 else plain
    return scheduler.timesteps[start * scheduler.order :]


def decode(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Pictures in [0, 1], (N, 3, H, W), from latents."""
    images = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    return (images / 2 + 0.5).clamp(0, 1)


def decode_tiny(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Pictures in [0, 1] from latents with an AutoencoderTiny (TAESD, --fast-vae). TAESD
    works in the UNet's scaled latent space: the latents go in as they are, not divided
    by the SD VAE's scaling factor (0.18215) as decode() does."""
    images = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
    return (images / 2 + 0.5).clamp(0, 1)


def _text_states(text_encoder: Any, tokens: Any, device: torch.device) -> torch.Tensor:
    """The last hidden states; SD1.5's text encoder reads padding too (no mask) unless its config asks."""
    mask = tokens.attention_mask.to(device) if getattr(text_encoder.config, "use_attention_mask", False) else None
    return text_encoder(tokens.input_ids.to(device), attention_mask=mask)[0]


def step_kwargs_for(scheduler: Any, generators: list[torch.Generator]) -> dict[str, Any]:
    """eta=0 and the generators, for the schedulers whose step takes them."""
    accepted = inspect.signature(scheduler.step).parameters
    kwargs: dict[str, Any] = {}
    if "eta" in accepted:
        kwargs["eta"] = 0.0
    if "generator" in accepted:
        kwargs["generator"] = generators
    return kwargs
