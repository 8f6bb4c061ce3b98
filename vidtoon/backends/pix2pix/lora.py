"""--lora PATH_OR_ID [--lora-scale X]: a LoRA (such as the few-step LCM-LoRA for SD1.5,
used with --scheduler lcm --steps 4) fused into the loaded model.

    file = locate("latent-consistency/lcm-lora-sdv1-5", offline=False)   # or a file or folder
    fuse(parts, file, scale=1.0)

1. locate(): a .safetensors file, a folder holding one (pytorch_lora_weights.safetensors
   when there are several), or a Hugging Face id taken from the HF cache (downloaded only
   when allowed, safetensors only), as for --model. Pickled LoRAs (.bin, ...) are refused:
   a pickle can run code, and LoRAs are small enough to convert.
2. fuse(): diffusers' load_lora_weights (peft) into the UNet and text encoder, fused at
   `scale` (W + scale * B A), then the LoRA layers unloaded: the model runs at its own
   speed and shapes afterwards (nothing extra per step, nothing for torch.compile to trace).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import BackendUnavailable
from .models import PICKLED, _first_line, cached_snapshot

WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' save_lora_weights name
ADAPTER = "vidtoon-lora"


def locate(lora: str, offline: bool = False) -> Path:
    """The .safetensors file that `lora` names (see the module docstring)."""
    path = Path(lora).expanduser()
    if path.is_file():
        return _checked_file(path, lora)
    if path.is_dir():
        return _in_folder(path, lora)
    folder = cached_snapshot(lora, ["*.safetensors"], offline, "--lora", "file or folder",
                             f"fetch it with `hf download {lora}` or pass the .safetensors file")
    return _in_folder(folder, lora)


def _checked_file(path: Path, lora: str) -> Path:
    if path.suffix.lower() in PICKLED:
        raise BackendUnavailable(f"--lora {lora}: a pickle ({path.suffix}); vidtoon loads LoRAs from .safetensors "
                                 f"only, since a pickle can run code when loaded; use a safetensors copy")
    if path.suffix.lower() != ".safetensors":
        raise BackendUnavailable(f"--lora {lora}: not a .safetensors file")
    return path


def _in_folder(folder: Path, lora: str) -> Path:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".safetensors")
    if len(files) == 1:
        return files[0]
    if (folder / WEIGHT_NAME).is_file():
        return folder / WEIGHT_NAME
    if files:
        raise BackendUnavailable(f"--lora {lora}: {folder} holds several .safetensors files "
                                 f"({', '.join(p.name for p in files)}); pass the one to load")
    pickles = [p.name for p in folder.iterdir() if p.suffix.lower() in PICKLED]
    if pickles:
        return _checked_file(folder / pickles[0], lora)  # refused, in the same words as a file
    raise BackendUnavailable(f"--lora {lora}: {folder} holds no .safetensors LoRA")


def fuse(parts: Any, file: Path, scale: float) -> None:
    """Fuse the LoRA in `file` into parts.unet (and parts.text_encoder, where it has layers
    for it) at `scale`, then unload the LoRA layers; the fused weights stay."""
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise BackendUnavailable("--lora needs peft (diffusers loads LoRAs through it): pip install 'vidtoon[diffusion]'")
    from safetensors.torch import load_file

    try:
        weights = load_file(str(file))
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise BackendUnavailable(f"--lora {file}: cannot read it: {type(e).__name__}: {_first_line(e)}") from None
    with _without(QUIET):
        from diffusers import StableDiffusionInstructPix2PixPipeline

        # The loader lives on the pipeline; one over the loaded parts (no safety checker, no copies).
        pipe = StableDiffusionInstructPix2PixPipeline(
            vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=parts.unet,
            scheduler=parts.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        try:
            pipe.load_lora_weights(weights, adapter_name=ADAPTER)
        except (ValueError, KeyError, RuntimeError) as e:  # not a LoRA, or one for another architecture
            pipe.unload_lora_weights()
            raise BackendUnavailable(f"--lora {file}: does not fit this model ({type(e).__name__}: "
                                     f"{_first_line(e)})") from None
        pipe.fuse_lora(lora_scale=scale, adapter_names=[ADAPTER])
        pipe.unload_lora_weights()


# Lines that say nothing here: the pipeline's import looks up image processors vidtoon never
# uses, and a LoRA for the UNet alone (LCM-LoRA) has no text-encoder part, as expected.
QUIET = ("requires torchvision (not installed)", "No LoRA keys associated to CLIPTextModel")


@contextmanager
def _without(lines: tuple[str, ...]) -> Iterator[None]:
    """transformers' and diffusers' log records that hold one of `lines` dropped for the duration."""
    import logging

    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = record.getMessage()
            return not any(line in message for line in lines)

    drop = Drop()
    handlers = [h for name in ("transformers", "diffusers") for h in logging.getLogger(name).handlers]
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)
