"""Where the InstructPix2Pix weights come from, and how they are loaded safely.

    folder = locate("instruction-tuning-sd/cartoonizer", offline=False)  # or a local folder
    parts = load_components(folder, torch.device("cuda"), torch.float16)

1. locate(): a local folder as is; a Hugging Face id from the HF cache, downloaded
   only when allowed (not with offline=True or HF_HUB_OFFLINE=1), safetensors only
   where the repository has them. Missing weights: one BackendUnavailable line that
   names the id, the cache folder and --model DIR.
2. check_pickles(): every pickled file in the folder must load with torch's
   weights-only unpickler, which cannot run code; any other is refused.
3. load_components(): each part with its own known class (UNet2DConditionModel,
   AutoencoderKL, CLIPTextModel, CLIPTokenizer, a diffusers scheduler). Class names
   in the folder's configs are never imported, remote code is never trusted, and
   safetensors are preferred over pickles. The safety checker is not loaded: it
   blacks out whole frames, which in a video is a flash, not a filter.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import BackendUnavailable

PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHTS = {  # part -> its weight file names without suffix (diffusers, transformers)
    "unet": "diffusion_pytorch_model",
    "vae": "diffusion_pytorch_model",
    "text_encoder": "model",
}
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
PICKLED_WEIGHTS = {"text_encoder": "pytorch_model"}  # transformers' .bin name differs from its safetensors name


@dataclass
class Components:
    """The parts of an InstructPix2Pix pipeline that vidtoon runs (a diffusers
    pipeline has the same attributes, so either can be handed to the backend)."""

    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    scheduler: Any


def locate(model: str, offline: bool = False) -> Path:
    """The folder holding `model`: itself if it is a folder, else the HF cache's snapshot."""
    path = Path(model).expanduser()
    if path.is_dir():
        check_folder(path, model)
        return path
    if path.exists():
        raise BackendUnavailable(f"--model {model}: is a file; give the folder that holds model_index.json")
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError

    offline = offline or constants.HF_HUB_OFFLINE
    try:
        folder = Path(snapshot_download(model, allow_patterns=_wanted(), local_files_only=offline))
        missing = [part for part in WEIGHTS if not _has(folder / part, ".safetensors")]
        if missing and not offline:  # the repository has only pickles for these parts
            folder = Path(snapshot_download(model, allow_patterns=_wanted(missing, ".bin")))
    except HFValidationError:
        raise BackendUnavailable(f"--model {model}: no such folder, and not a Hugging Face id "
                                 f"(owner/name); give the folder saved with save_pretrained") from None
    except (OSError, ValueError) as e:  # hub errors are OSErrors (not found, no network)
        raise BackendUnavailable(_missing(model, offline, constants.HF_HUB_CACHE, e)) from None
    check_folder(folder, model)
    return folder


def check_folder(folder: Path, model: str) -> None:
    """Refuse a folder that lacks a part, before loading anything."""
    if not (folder / "model_index.json").is_file():
        raise BackendUnavailable(f"--model {model}: {folder} has no model_index.json; "
                                 f"give a folder saved with save_pretrained")
    for part in PARTS:
        if not (folder / part).is_dir():
            raise BackendUnavailable(f"--model {model}: {folder} has no {part}/ folder; it is not "
                                     f"an InstructPix2Pix pipeline or its download is incomplete")
    for part in WEIGHTS:
        if not (_has(folder / part, ".safetensors") or _has(folder / part, ".bin")):
            raise BackendUnavailable(f"--model {model}: {folder / part} has no weights "
                                     f"(.safetensors or .bin); the download is incomplete")


def check_pickles(folder: Path) -> None:
    """Every pickled file under `folder` must load with torch's weights-only unpickler
    (plain tensors and containers; no code). Raise BackendUnavailable for the first that does not."""
    import torch

    for path in _every_file(folder):
        if path.suffix.lower() not in PICKLED:
            continue
        try:
            try:
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                torch.load(path, map_location="cpu", weights_only=True)  # old formats cannot be mapped
        except pickle.UnpicklingError as e:
            raise BackendUnavailable(
                f"refusing {path}: torch's weights-only loader rejects it ({_unpickler_reason(e)}), and a "
                f"pickle that is not plain weights can run code when loaded; use a safetensors copy of the model"
            ) from None
        except Exception as e:  # noqa: BLE001 - corrupt or truncated files
            raise BackendUnavailable(f"cannot read {path}: {type(e).__name__}: {e}") from None


def _every_file(folder: Path) -> list[Path]:
    """Every file under `folder`, through symlinked folders too (an HF cache snapshot is links,
    and a linked unet/ is still loaded), each real folder once (a link loop ends)."""
    seen, files = set(), []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        files += [Path(root, name) for name in names if Path(root, name).is_file()]
    return sorted(files)


def load_components(folder: Path, device: Any, dtype: Any) -> Components:
    """Load each part with its known class, on `device` in `dtype` (see the module docstring)."""
    import diffusers
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    check_pickles(folder)
    common = dict(local_files_only=True)  # the folder is already here; never fetch or run code
    bars = diffusers.utils.logging.is_progress_bar_enabled(), transformers.utils.logging.is_progress_bar_enabled()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    try:
        scheduler = _scheduler_class(folder).from_pretrained(folder, subfolder="scheduler", **common)
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", **common)
        # use_safetensors says which format is there: without it, a part that has only pickles
        # (every part of the real cartoonizer) logs "Defaulting to unsafe serialization", though
        # check_pickles() has just read each one with the weights-only loader.
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **{_dtype_keyword(): dtype},
                                                     use_safetensors=_safe(folder, "text_encoder"), **common)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, low_cpu_mem_usage=False,
                                            use_safetensors=_safe(folder, "vae"), **common)
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, low_cpu_mem_usage=False,
                                                    use_safetensors=_safe(folder, "unet"), **common)
    except (OSError, ValueError, KeyError) as e:
        raise BackendUnavailable(f"cannot load the model in {folder}: {type(e).__name__}: {_first_line(e)}") from None
    finally:
        if bars[0]:
            diffusers.utils.logging.enable_progress_bar()
        if bars[1]:
            transformers.utils.logging.enable_progress_bar()
    if unet.config.in_channels != 2 * vae.config.latent_channels:
        raise BackendUnavailable(
            f"{folder}: its UNet takes {unet.config.in_channels} channels, not {2 * vae.config.latent_channels}; "
            f"it is not an InstructPix2Pix model (plain Stable Diffusion cannot edit a given frame)"
        )
    return Components(tokenizer, text_encoder.to(device).eval(), vae.to(device).eval(), unet.to(device).eval(), scheduler)


def load_tiny_decoder(model: str, offline: bool, device: Any, dtype: Any) -> Any:
    """The AutoencoderTiny (TAESD) for --fast-vae, from a folder or the HF cache (downloaded
    only when allowed), safetensors only; used for decoding, never for the image latents."""
    from diffusers import AutoencoderTiny

    folder = _tiny_folder(model, offline)
    try:
        vae = AutoencoderTiny.from_pretrained(folder, torch_dtype=dtype, use_safetensors=True, low_cpu_mem_usage=False,
                                              local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise BackendUnavailable(f"--fast-vae {model}: cannot load {folder}: {type(e).__name__}: {_first_line(e)}") from None
    return vae.to(device).eval()


def _tiny_folder(model: str, offline: bool) -> Path:
    path = Path(model).expanduser()
    if path.is_dir():
        folder = path
    else:
        folder = cached_snapshot(model, ["config.json", "*.safetensors"], offline, "--fast-vae", "folder",
                                 "pass a folder saved with save_pretrained")
    if not ((folder / "config.json").is_file() and _has(folder, ".safetensors")):
        raise BackendUnavailable(f"--fast-vae {model}: {folder} has no config.json and .safetensors weights "
                                 f"(an AutoencoderTiny saved with save_pretrained)")
    return folder


def _dtype_keyword() -> str:
    """transformers took `torch_dtype` until 4.56, which added `dtype` and deprecated the
    old name; an older one passes `dtype` on to the model's constructor and fails."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__).release >= (4, 56) else "torch_dtype"


def _scheduler_class(folder: Path) -> Any:
    """The scheduler class named in the folder's config, if diffusers ships a scheduler by that name."""
    import diffusers
    from diffusers import SchedulerMixin

    config = folder / "scheduler" / "scheduler_config.json"
    try:
        name = json.loads(config.read_text())["_class_name"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackendUnavailable(f"cannot read {config}: {type(e).__name__}: {e}") from None
    cls = getattr(diffusers.schedulers, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        raise BackendUnavailable(f"{config}: {name!r} is not a diffusers scheduler; vidtoon loads no other code")
    return cls


def _safe(folder: Path, part: str) -> bool:
    """Load `part` from safetensors (preferred) if it has them, else from its checked pickles."""
    return _has(folder / part, ".safetensors")


def _has(folder: Path, suffix: str) -> bool:
    return folder.is_dir() and any(p.name.endswith(suffix) for p in folder.iterdir())


def _wanted(parts: list[str] | tuple[str, ...] = tuple(WEIGHTS), suffix: str = ".safetensors") -> list[str]:
    """Download patterns: configs and tokenizer files, plus the weights of `parts` in one
    format (not fp16 variants, not the safety checker)."""
    patterns = ["model_index.json", *(f"{part}/*.json" for part in PARTS), "tokenizer/*.txt"]
    for part in parts:
        name = PICKLED_WEIGHTS.get(part, WEIGHTS[part]) if suffix == ".bin" else WEIGHTS[part]
        patterns += [f"{part}/{name}{suffix}", f"{part}/{name}-*-of-*{suffix}"]  # one file, or shards
    return patterns


def cached_snapshot(repo: str, patterns: list[str], offline: bool, option: str, local: str, hint: str) -> Path:
    """The Hugging Face snapshot of `repo` (only the files matching `patterns`; from the cache
    alone with offline or HF_HUB_OFFLINE=1), for an `option` that also takes a local `local`
    ("folder", "file or folder"); else BackendUnavailable, ending with `hint`."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError

    offline = offline or constants.HF_HUB_OFFLINE
    try:
        return Path(snapshot_download(repo, allow_patterns=patterns, local_files_only=offline,
                                      cache_dir=constants.HF_HUB_CACHE))
    except HFValidationError:
        raise BackendUnavailable(f"{option} {repo}: no such {local}, and not a Hugging Face id (owner/name)") from None
    except (OSError, ValueError) as e:  # hub errors are OSErrors (not found, no network)
        raise BackendUnavailable(f"{option} {repo}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
                                 f"and {_why_missing(offline, e)}; {hint}") from None


def _why_missing(offline: bool, error: Exception) -> str:
    return "downloads are off (--offline or HF_HUB_OFFLINE=1)" if offline else f"the download failed ({_first_line(error)})"


def _missing(model: str, offline: bool, cache: str, error: Exception) -> str:
    why = _why_missing(offline, error)
    return (f"the pix2pix weights '{model}' are not in the Hugging Face cache ({cache}) and {why}; "
            f"fetch them on a connected machine with `hf download {model}` into that cache, "
            f"or pass --model DIR (a folder saved with save_pretrained)")


def _unpickler_reason(error: Exception) -> str:
    """The line of torch's long weights-only message that says what was refused."""
    match = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. |\.?\n|\.?$)", str(error))
    return match.group(1) if match else _first_line(error)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(error).__name__
