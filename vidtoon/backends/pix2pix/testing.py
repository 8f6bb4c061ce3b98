"""InstructPix2Pix models with random weights, built offline, for tests and benchmarks.

    from vidtoon.backends.pix2pix.testing import make_tiny_model, full_size_model
    folder = make_tiny_model(tmp_path / "tiny")     # save_pretrained folder, loads with --model DIR
    pipe = full_size_model("cuda", torch.float16)   # the SD1.5 IP2P architecture, random weights

The tiny model has the real model's shapes where they matter to vidtoon (UNet with
8 input channels, a VAE that scales by 8, a CLIP text encoder behind a CLIP
tokenizer) and is small enough to run a few frames on a CPU in about a second.
Its tokenizer is a byte-level BPE with no merges, written here as vocab.json and
merges.txt, so any prompt tokenizes without a download. Output pictures are noise.

Imports torch, diffusers and transformers (the `diffusion` extra).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

MAX_TOKENS = 77  # CLIP's context length, as in SD1.5

# The tiny model: every component a few thousand parameters, same structure as SD1.5.
TINY_UNET = dict(
    sample_size=8,
    in_channels=8,  # 4 noisy latent channels + 4 image latent channels (IP2P)
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=8,
    norm_num_groups=32,
)
TINY_VAE = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(32, 32, 32, 32),  # four levels: latents are 1/8 of the picture, as in SD
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=64,
)
TINY_TEXT = dict(
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=MAX_TOKENS,
    layer_norm_eps=1e-5,
    projection_dim=32,
)
# Euler ancestral adds fresh noise at every step, so the tests exercise the per-frame generators.
SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    steps_offset=1,
    timestep_spacing="leading",
)

# Stable Diffusion 1.5 (and so InstructPix2Pix and the cartoonizer fine-tune), as in
# their published config files.
FULL_UNET = dict(
    sample_size=64,
    in_channels=8,
    out_channels=4,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
)
FULL_VAE = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
FULL_TEXT = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=MAX_TOKENS,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=768,
    vocab_size=49408,
)


def make_tiny_model(folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny random IP2P pipeline and save it to `folder` (safetensors); return the folder."""
    import torch

    folder = Path(folder)
    torch.manual_seed(seed)  # the only global state touched: module init draws from it
    pipe = build_pipeline(TINY_UNET, TINY_VAE, TINY_TEXT)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def make_tiny_decoder(folder: str | Path, seed: int = 0) -> Path:
    """A tiny random AutoencoderTiny (TAESD's architecture, 8 channels) saved to `folder`
    (safetensors), for --fast-vae tests; return the folder."""
    import torch
    from diffusers import AutoencoderTiny

    folder = Path(folder)
    torch.manual_seed(seed)
    AutoencoderTiny(encoder_block_out_channels=(8,) * 4, decoder_block_out_channels=(8,) * 4,
                    num_encoder_blocks=(1,) * 4, num_decoder_blocks=(1,) * 4).save_pretrained(folder, safe_serialization=True)
    return folder


def full_size_model(device: str = "cpu", dtype: Any = None, seed: int = 0) -> Any:
    """The full-size SD1.5 InstructPix2Pix architecture with random weights, built on `device`
    (no download, nothing written). For measuring speed and memory, not for pictures."""
    import torch

    torch.manual_seed(seed)
    pipe = build_pipeline(FULL_UNET, FULL_VAE, FULL_TEXT, device)
    if dtype is not None:
        pipe.to(dtype=dtype)
    return pipe


def build_pipeline(unet: dict, vae: dict, text: dict, device: str = "cpu") -> Any:
    """A StableDiffusionInstructPix2PixPipeline from component configs, random weights,
    the models allocated on `device` (the scheduler keeps its tables on the CPU)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer()
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    text = {"vocab_size": len(tokenizer), **text, **ids}
    with torch.device(device):  # allocate the parameters where they will run (~1 B at full size)
        models = dict(vae=AutoencoderKL(**vae), text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
                      unet=UNet2DConditionModel(**unet))
    return StableDiffusionInstructPix2PixPipeline(
        **{name: model.eval() for name, model in models.items()},
        tokenizer=tokenizer,
        scheduler=EulerAncestralDiscreteScheduler(**SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_tokenizer() -> Any:
    """A CLIPTokenizer over single bytes (no merges) from hand-written vocab.json/merges.txt."""
    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        Path(tmp, "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=MAX_TOKENS)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character map (each byte one symbol)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))
