"""Frozen settings objects: parsed once (by the CLI or the Python API),
validated here, then passed down unchanged. No globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import SettingsError

BACKENDS = ("auto", "classic", "pix2pix")
PIX2PIX_MODEL = "instruction-tuning-sd/cartoonizer"  # the InstructPix2Pix cartoonizer fine-tune
TAESD_MODEL = "madebyollin/taesd"  # the tiny VAE decoder that --fast-vae uses when given no id or folder
DEVICES = ("auto", "cuda", "mps", "cpu")  # "cuda:N" picks one GPU
DTYPES = ("auto", "fp16", "bf16", "fp32")


@dataclass(frozen=True)
class ClassicSettings:
    """The OpenCV cartoon filter (backends/classic.py)."""

    levels: int = 8  # luminance bands of the toon shading; fewer = flatter
    edges: float = 1.0  # darkness of the soft outlines; 0 turns them off
    smooth: int = 2  # edge-preserving smoothing passes; 0 keeps texture
    stabilize: bool = False  # blend with the previous output warped by the source's flow (temporal.py)

    def __post_init__(self) -> None:
        if not 2 <= self.levels <= 32:
            raise SettingsError(f"--levels must be between 2 and 32, got {self.levels}")
        if not 0.0 <= self.edges <= 3.0:
            raise SettingsError(f"--edges must be between 0 and 3, got {self.edges}")
        if not 0 <= self.smooth <= 6:
            raise SettingsError(f"--smooth must be between 0 and 6, got {self.smooth}")
        if not isinstance(self.stabilize, bool):
            raise SettingsError(f"stabilize must be True or False, got {self.stabilize!r}")


@dataclass(frozen=True)
class Pix2PixSettings:
    """The InstructPix2Pix cartoonizer (backends/pix2pix.py)."""

    model: str = PIX2PIX_MODEL  # Hugging Face id (from its cache) or a folder saved with save_pretrained
    prompt: str = "Cartoonize the following image"  # the instruction the model was tuned on
    steps: int = 20  # denoising steps; fewer is faster and rougher
    image_guidance: float = 1.5  # how closely the output follows the input frame
    guidance: float = 7.0  # how strongly the output follows the prompt
    seed: int = 0  # one seed, one shared noise tensor for every frame: same input, same output
    max_side: int = 512  # frames are processed with their long side at most this (SD1.5 saw 512)
    size: tuple[int, int] | None = None  # (width, height) to process at instead of max_side
    batch_size: int | None = None  # frames per GPU batch; None: 16 on a GPU, 4 on a CPU, halved on out-of-memory
    offline: bool = False  # never download (as does HF_HUB_OFFLINE=1)
    device: str = "auto"  # auto: cuda, else mps, else cpu
    dtype: str = "auto"  # auto: fp16 on a GPU, fp32 on a CPU
    # Temporal consistency (vidtoon/crossframe.py, latents.py, keyframes.py); all off by default,
    # so a plain run is per-frame with the shared noise only.
    cross_frame: bool = False  # self-attention attends to the clip's first frame (Text2Video-Zero)
    reuse_latents: float | None = None  # strength in (0, 1]: start from the previous frame's warped latent; None/0 off
    keyframe_every: int = 1  # diffuse every K-th frame (and cuts), warp the rest; 1: every frame
    fast_vae: str | None = None  # an AutoencoderTiny (TAESD) id or folder to decode with; None: the model's VAE

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise SettingsError(f"--model must be a Hugging Face id or a folder, got {self.model!r}")
        if not isinstance(self.prompt, str):
            raise SettingsError(f"--prompt must be text, got {type(self.prompt).__name__} {self.prompt!r}")
        if not self.prompt.strip():
            raise SettingsError("--prompt is empty; give an instruction such as 'Cartoonize the following image'")
        _check_int("--steps", self.steps, 1, 200)
        _check_number("--image-guidance", self.image_guidance, 0.0, 20.0)
        _check_number("--guidance", self.guidance, 0.0, 50.0)
        _check_int("--seed", self.seed, 0, 2**63 - 1)
        _check_int("--max-side", self.max_side, 64, 4096)
        if isinstance(self.size, list):
            object.__setattr__(self, "size", tuple(self.size))
        if self.size is not None:
            if not (isinstance(self.size, tuple) and len(self.size) == 2):
                raise SettingsError(f"--size must be WIDTHxHEIGHT, such as 512x384, got {self.size!r}")
            for side in self.size:
                _check_int("--size", side, 8, 4096)
        if self.batch_size is not None:
            _check_int("--batch-size", self.batch_size, 1, 256)
        if not isinstance(self.offline, bool):
            raise SettingsError(f"offline must be True or False, got {self.offline!r}")
        if self.device not in DEVICES and not (isinstance(self.device, str) and self.device.startswith("cuda:")
                                               and self.device[5:].isdigit()):
            raise SettingsError(f"--torch-device must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}")
        if self.fast_vae is not None and not (isinstance(self.fast_vae, str) and self.fast_vae.strip()):
            raise SettingsError(f"--fast-vae must be a Hugging Face id or a folder, got {self.fast_vae!r}")
        if self.dtype not in DTYPES:
            raise SettingsError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.cross_frame, bool):
            raise SettingsError(f"cross_frame must be True or False, got {self.cross_frame!r}")
        if self.reuse_latents is not None:
            _check_number("--reuse-latents", self.reuse_latents, 0.0, 1.0)
            if self.reuse_latents == 0:  # 0 means off, stored as None so equal settings compare equal
                object.__setattr__(self, "reuse_latents", None)
        _check_int("--keyframe-every", self.keyframe_every, 1, 1000)

    def work_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) a width x height frame is processed at: --size, or scaled
        down to fit max_side (never up), keeping the aspect ratio; both multiples of 8."""
        if self.size is not None:
            return _round8(self.size[0]), _round8(self.size[1])
        scale = min(1.0, self.max_side / max(width, height))
        cap = self.max_side - self.max_side % 8
        return min(cap, _round8(width * scale)), min(cap, _round8(height * scale))


def _round8(x: float) -> int:
    """Nearest multiple of 8, at least 8 (the VAE works on 8x8 pixel cells)."""
    return max(8, 8 * int(x / 8 + 0.5))  # halves round up (round() would go to even)


def _check_int(option: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(f"{option} must be a whole number, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{option} must be between {low} and {high}, got {value}")


def _check_number(option: str, value: object, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise SettingsError(f"{option} must be a number, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{option} must be between {low:g} and {high:g}, got {value}")


@dataclass(frozen=True)
class EncodeSettings:
    """How the output video is encoded (see formats.py for the codec table)."""

    codec: str | None = None  # None: the container's default (libx264; libvpx-vp9 for .webm)
    crf: int | None = None  # None: the codec's default quality
    preset: str | None = None  # None: the codec's default speed/quality trade-off


@dataclass(frozen=True)
class Settings:
    """Everything one `cartoonize` run needs."""

    input: Path
    output: Path
    backend: str = "auto"  # auto | classic | pix2pix
    classic: ClassicSettings = field(default_factory=ClassicSettings)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    overwrite: bool = False  # replace an existing output file
    batch_size: int = 8  # frames handed to the backend at once
    compare: bool = False  # write original | cartoon side by side, twice as wide
    pix2pix: Pix2PixSettings = field(default_factory=Pix2PixSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", Path(self.input))
        object.__setattr__(self, "output", Path(self.output))
        if self.backend not in BACKENDS:
            raise SettingsError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if not 1 <= self.batch_size <= 256:
            raise SettingsError(f"batch size must be between 1 and 256, got {self.batch_size}")
