"""One picture through a backend: an image file, or one frame of a video, to an image file.

    vidtoon image photo.jpg -o cartoon.png --backend pix2pix --steps 10
    vidtoon image clip.mp4 -o frame30.png --frame 30
    vidtoon cartoonize clip.mp4 -o out.mp4 --preview-frame 30   # writes out.png

So a user can try settings in seconds before a long run. The backend is the one
`cartoonize` would use, with the same settings, so frame N comes out as it would
in the video (pix2pix: the same seed and noise).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .backends import Backend
from .config import Settings
from .errors import InputError, OutputError, SettingsError, describe
from .progress import NoProgress, Progress
from .reader import open_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class StillResult:
    output: Path
    seconds: float
    backend: str


def cartoonize_still(settings: Settings, frame: int = 0, progress: Progress = NoProgress(),
                     backend: Backend | None = None) -> StillResult:
    """Cartoonize settings.input (an image, or frame `frame` of a video) into settings.output."""
    from .pipeline import check_paths, ready_backend

    if settings.output.suffix.lower() not in IMAGE_SUFFIXES:
        raise SettingsError(f"{settings.output}: unknown image type; use one of {' '.join(IMAGE_SUFFIXES)}")
    check_paths(settings)
    started = time.perf_counter()
    rgb = read_picture(settings.input, frame)
    backend = ready_backend(settings, backend, progress)
    cartoon = backend(rgb[None])[0]
    write_image(np.hstack([rgb, cartoon]) if settings.compare else cartoon, settings.output)
    return StillResult(settings.output, time.perf_counter() - started, backend.name)


def read_picture(path: Path, frame: int = 0) -> np.ndarray:
    """uint8 (H, W, 3) RGB: the image at `path`, or frame `frame` (0-based) of the video there."""
    if frame < 0:
        raise SettingsError(f"--frame must be 0 or more, got {frame}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if frame:
            raise SettingsError(f"{path}: is an image; --frame applies to videos only")
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # applies EXIF orientation, drops alpha
        if bgr is None:
            raise InputError(f"{path}: not a readable image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    with open_video(path) as video:
        for decoded in video.frames():
            if decoded.index == frame:
                return decoded.rgb
    raise SettingsError(f"{path}: has {decoded.index + 1} frames; --frame must be below that, got {frame}")


def write_image(rgb: np.ndarray, path: Path) -> None:
    """Encode by suffix into a temporary file beside `path`, then rename it into place."""
    ok, data = cv2.imencode(path.suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"{path}: OpenCV cannot encode this image type")
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        temp.write_bytes(data.tobytes())
        os.replace(temp, path)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot be written ({describe(e)})") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
