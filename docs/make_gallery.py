"""Make the pictures of docs/gallery.md: every --style on several subjects, and
a 4K crop beside its source.

    pip install scikit-image        # its sample photos
    python docs/make_gallery.py

The sample's frames go through the filter as a clip does (frames 0-60, the
palette fitted on frame 0), the photos one at a time.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidtoon.backends.classic import STYLES, ClassicSettings
from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.io.reader import open_video

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "gallery"
TILE_HEIGHT = 220


def subjects() -> dict[str, list[np.ndarray]]:
    import skimage.data

    with open_video(ROOT / "samples" / "astronaut.mp4") as video:
        clip = [f.rgb for f in video.frames() if f.index <= 60]
    photos = {name: [getattr(skimage.data, name)()] for name in ("coffee", "chelsea", "rocket")}
    return {"sample, frame 60": clip, **photos}


def label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = cv2.copyMakeBorder(tile, 24, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    cv2.putText(tile, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def fit(image: np.ndarray, height: int) -> np.ndarray:
    width = round(image.shape[1] * height / image.shape[0])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def styles_sheet() -> np.ndarray:
    rows = []
    for name, frames in subjects().items():
        tiles = [label(fit(frames[-1], TILE_HEIGHT), f"{name}: source")]
        for style in STYLES:
            cartoon = ClassicBackend(ClassicSettings(style=style))(np.stack(frames))[-1]
            tiles.append(label(fit(cartoon, TILE_HEIGHT), f"--style {style}"))
        rows.append(np.hstack(tiles))
    width = max(r.shape[1] for r in rows)
    return np.vstack([cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
                      for r in rows])


def crop_4k() -> np.ndarray:
    """The sample's frame 60 upscaled to 4K, cartoonized at 4K, a 1:1 crop of the face."""
    with open_video(ROOT / "samples" / "astronaut.mp4") as video:
        frames = [cv2.resize(f.rgb, (3840, 2160), interpolation=cv2.INTER_LANCZOS4) for f in video.frames() if f.index in (0, 60)]
    cartoon = ClassicBackend()(np.stack(frames))[-1]
    crop = (slice(300, 1200), slice(1350, 2550))
    return np.hstack([label(frames[-1][crop], "4K source, 1:1"), label(cartoon[crop], "the default at 4K, 1:1")])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, image in (("styles.jpg", styles_sheet()), ("4k_crop.jpg", crop_4k())):
        cv2.imwrite(str(OUT / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
