"""Still pictures in and out: an image file, or one frame of a video, as RGB;
image files written atomically (files.py).

    rgb = read_picture(Path("photo.jpg"))            # or read_picture(video, frame=30)
    write_image(Path("cartoon.png"), rgb)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError, SettingsError
from .files import check_output_path, write_atomic
from .reader import open_video

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


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


def check_image_path(path: Path, overwrite: bool, source: Path | None = None,
                     suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> None:
    """Refuse, before any work, an image path that cannot or should not be written."""
    if path.suffix.lower() not in suffixes:
        raise SettingsError(f"{path}: unknown image type; use one of {', '.join(suffixes)}")
    check_output_path(path, overwrite, source, what="image")


def write_image(path: Path, rgb: np.ndarray) -> None:
    """An RGB picture, encoded by the suffix, written atomically."""
    write_bgr(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_bgr(path: Path, bgr: np.ndarray) -> None:
    """A BGR picture (as OpenCV draws), encoded by the suffix, written atomically."""
    try:
        ok, data = cv2.imencode(path.suffix.lower(), bgr)
    except cv2.error:  # no encoder for this suffix
        ok = False
    if not ok:
        raise OutputError(f"{path}: OpenCV cannot encode {path.suffix} images")
    write_atomic(path, data.tobytes())
