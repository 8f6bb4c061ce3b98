"""Make samples/before_after.jpg, the README's picture: a frame of the sample,
original on the left and the default cartoon on the right, as `vidtoon
cartoonize` makes it (the clip's palette from its first frame, the frames
before carried along).

    python samples/make_before_after.py [FRAME_INDEX]
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from vidtoon.backends.classic.filter import ClassicBackend
from vidtoon.io.reader import open_video

HERE = Path(__file__).resolve().parent


def main(index: int = 60) -> None:
    with open_video(HERE / "astronaut.mp4") as video:
        frames = np.stack([f.rgb for f in video.frames() if f.index <= index])
    frame, cartoon = frames[-1], ClassicBackend()(frames)[-1]
    pair = np.hstack([frame, np.full((frame.shape[0], 8, 3), 255, np.uint8), cartoon])
    pair = cv2.resize(pair, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    out = HERE / "before_after.jpg"
    cv2.imwrite(str(out), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
