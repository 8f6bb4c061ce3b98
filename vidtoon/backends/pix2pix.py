"""The instruction-tuned Stable Diffusion cartoonizer (InstructPix2Pix).

This release only detects whether the backend could run here; the backend
itself (batched, seeded, with latent reuse) comes with issue #3.
"""

from __future__ import annotations

import importlib.util

MODEL_ID = "instruction-tuning-sd/cartoonizer"


def availability() -> tuple[bool, str]:
    """Can the diffusion backend run here? Checked cheapest first; torch is
    imported only when it is installed."""
    for module in ("torch", "diffusers", "transformers"):
        if importlib.util.find_spec(module) is None:
            return False, f"{module} is not installed (pip install 'vidtoon[diffusion]')"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU found"
    if not _cached(MODEL_ID):
        return False, f"the {MODEL_ID} weights are not in the Hugging Face cache"
    return False, "it is not in this release yet"


def load(settings: object) -> None:
    from ..errors import BackendUnavailable

    raise BackendUnavailable(
        "the pix2pix backend is not in this release yet; use --backend classic (or auto)"
    )


def _cached(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(model_id, "model_index.json"), str)
