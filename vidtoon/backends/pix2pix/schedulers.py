"""--scheduler NAME: the sampler the denoising loop steps with, built from the model's own
scheduler config (its betas, timestep offset and prediction type), so a fine-tune's
training noise schedule is kept whichever sampler runs.

    scheduler = make("dpm++", parts.scheduler)   # a fresh, private scheduler

"model" is the model's own (the cartoonizer's: Euler ancestral). The others take 8-10
steps for what Euler ancestral does in 20 (DPM-Solver++ 2M with Karras sigmas, UniPC),
or 4 with an LCM LoRA (--lora, "lcm"). Every one of them can start part-way, so
--reuse-latents works with each (ip2p.part_way_refusal).
"""

from __future__ import annotations

import inspect
from typing import Any

# name -> (diffusers class, settings over the model's config, what it is)
SCHEDULERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "model": ("", {}, "the model's own"),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}, "Euler ancestral"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    # Stable Diffusion's DDIM settings: the defaults (clip_sample, alpha one) are for pixel models.
    "ddim": ("DDIMScheduler", dict(clip_sample=False, set_alpha_to_one=False), "DDIM"),
    "dpm++": ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver++", solver_order=2,
                                                  use_karras_sigmas=True), "DPM-Solver++ 2M, Karras sigmas"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
    "lcm": ("LCMScheduler", {}, "LCM"),
}


def make(name: str, base: Any) -> Any:
    """A new scheduler `name` (SCHEDULERS) from `base`'s config; its state is the caller's own."""
    import diffusers

    class_name, overrides, _ = SCHEDULERS[name]
    cls = getattr(diffusers, class_name) if class_name else type(base)
    if not class_name:
        return cls.from_config(base.config)
    # Only the keys this class takes (diffusers logs a warning for each other one), and only
    # those the model's file set: one it left out (the cartoonizer's timestep_spacing) takes
    # this class's own default, as diffusers' from_config does.
    accepted = inspect.signature(cls.__init__).parameters
    defaulted = set(base.config.get("_use_default_values", ()))
    config = {key: value for key, value in base.config.items() if key in accepted and key not in defaulted}
    return cls.from_config({**config, **overrides})


def describe(name: str, scheduler: Any) -> str:
    """For the backend's summary: 'scheduler DPM-Solver++ 2M, Karras sigmas (DPMSolverMultistepScheduler)'."""
    return f"scheduler {SCHEDULERS[name][2]} ({type(scheduler).__name__})"
