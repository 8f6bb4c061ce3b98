"""InstructPix2Pix models with random weights, built offline, for tests and benchmarks.

    from vidtoon.backends.pix2pix.testing import make_tiny_model, full_size_model, make_cartoonizer_replica
    folder = make_tiny_model(tmp_path / "tiny")     # save_pretrained folder, loads with --model DIR
    pipe = full_size_model("cuda", torch.float16)   # the SD1.5 IP2P architecture, random weights
    hub = make_cartoonizer_replica(tmp_path / "hub")  # HF_HUB_CACHE=hub: the default --model, tiny
    lora = make_random_lora(pipe.unet, tmp_path / "lora")  # a random LoRA: --lora lora

The tiny model has the real model's shapes where they matter to vidtoon (UNet with
8 input channels, a VAE that scales by 8, a CLIP text encoder behind a CLIP
tokenizer) and is small enough to run a few frames on a CPU in about a second.
Its tokenizer is a byte-level BPE with no merges, written here as vocab.json and
merges.txt, so any prompt tokenizes without a download. Output pictures are noise.

The replica is the real instruction-tuning-sd/cartoonizer's layout with the tiny model's
weights: every part a pickle (.bin, fp32), no safetensors, safety_checker/ and
feature_extractor/ folders, the real Euler-ancestral scheduler config (default "linspace"
spacing: float timesteps, start noise sigma ~14.6), stored as the Hugging Face cache stores
a download (blobs named by hash, snapshot files that are symlinks to them, refs/main).

Imports torch, diffusers and transformers (the `diffusion` extra).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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


CARTOONIZER = "instruction-tuning-sd/cartoonizer"  # the id the replica is stored under (pix2pix.MODEL_ID)
# The cartoonizer's scheduler_config.json (InstructPix2Pix's): no timestep_spacing, so diffusers'
# default "linspace"; Stable Diffusion 1.5's betas.
CARTOONIZER_SCHEDULER = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "_diffusers_version": "0.15.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "trained_betas": None,
}
TINY_SAFETY = dict(  # a tiny StableDiffusionSafetyChecker: vidtoon never loads it, it only has to be there
    text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4, vocab_size=99,
                     max_position_embeddings=MAX_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1),
    vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4, image_size=32,
                       patch_size=8),
    projection_dim=32,
)
PICKLE_NAMES = {"diffusion_pytorch_model.safetensors": "diffusion_pytorch_model.bin", "model.safetensors": "pytorch_model.bin"}


def make_cartoonizer_replica(cache: str | Path, seed: int = 0, model_id: str = CARTOONIZER) -> Path:
    """A Hugging Face cache folder (for HF_HUB_CACHE) holding `model_id` in the real cartoonizer's
    layout with the tiny model's random weights (see the module docstring); return the cache folder."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    cache = Path(cache)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_tiny_model(Path(tmp) / "model", seed)
        torch.manual_seed(seed)
        StableDiffusionSafetyChecker(CLIPConfig(**TINY_SAFETY)).eval().save_pretrained(folder / "safety_checker")
        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
            folder / "feature_extractor")
        tokenizer = folder / "tokenizer"  # the Hub's files: vocab.json and merges.txt, no tokenizer.json
        (tokenizer / "tokenizer.json").unlink(missing_ok=True)
        _write_vocabulary(tokenizer)
        for weights in list(folder.rglob("*.safetensors")):  # every part a pickle, as on the Hub
            _to_pickle(weights, weights.with_name(PICKLE_NAMES[weights.name]))
        (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(CARTOONIZER_SCHEDULER, indent=2))
        index = json.loads((folder / "model_index.json").read_text())
        index.update(_diffusers_version="0.15.0.dev0", requires_safety_checker=True,
                     safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"],
                     feature_extractor=["transformers", "CLIPImageProcessor"])
        (folder / "model_index.json").write_text(json.dumps(index, indent=2))
        _store_as_hf_cache(folder, cache / ("models--" + model_id.replace("/", "--")))
    # As transformers leaves it in a cache it has used; without it, transformers before 4.4x
    # prints a one-time "Migrating your old cache" note on its first import.
    (cache / "version.txt").write_text("1")
    return cache


def _to_pickle(safe: Path, pickle: Path) -> None:
    """A safetensors file as torch.save's pickle of the same fp32 tensors (how the Hub's .bin files are made)."""
    import torch
    from safetensors.torch import load_file

    torch.save({name: tensor.float() for name, tensor in load_file(safe).items()}, pickle)
    safe.unlink()
    index = safe.with_name(safe.name + ".index.json")
    if index.exists():
        index.unlink()


def _store_as_hf_cache(folder: Path, entry: Path) -> None:
    """huggingface_hub's cache layout: blobs/HASH, snapshots/COMMIT/PATH -> ../../blobs/HASH, refs/main."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    commit = hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest()
    (entry / "blobs").mkdir(parents=True)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    snapshot = entry / "snapshots" / commit
    for path in files:
        blob = entry / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


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


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections, as LoRAs for SD usually train


def make_random_lora(unet: Any, folder: str | Path, rank: int = 4, seed: int = 0, std: float = 0.05) -> Path:
    """A random LoRA for `unet`'s attention projections, saved to `folder` as diffusers'
    pytorch_lora_weights.safetensors (peft's lora_A/lora_B keys under "unet."), for --lora
    tests and benchmarks; `unet` is only read. Return the file."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name.endswith(f"attn1.{t}") or name.endswith(f"attn2.{t}")
                                                       for t in LORA_TARGETS):
            weights[f"unet.{name}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=g) * std
            weights[f"unet.{name}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=g) * std
    path = folder / "pytorch_lora_weights.safetensors"
    save_file({key: value.contiguous() for key, value in weights.items()}, str(path))
    return path


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

    with tempfile.TemporaryDirectory() as tmp:
        _write_vocabulary(Path(tmp))
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=MAX_TOKENS)


def _write_vocabulary(folder: Path) -> None:
    """vocab.json and merges.txt of the tiny byte-level tokenizer (as SD1.5's tokenizer/ folder has them)."""
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


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
