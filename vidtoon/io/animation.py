"""Animated GIF and WebP outputs, for sharing short clips: smaller and slower than the video.

    animation = Animation("gif", source, encode)    # the size and time base to encode at
    for frame in frames:
        for picture in animation.pictures(frame):   # none for a frame dropped for the rate
            encoder.encode(picture)
    ...animation.flush()

By default the long side is at most 480 px (EncodeSettings.anim_size; never
enlarged) and there are at most 12 frames a second (anim_fps): a frame is kept
when it opens a new 1/fps slot of the clip's time, and keeps its own time, so
the animation plays at the source's speed (variable frame rate too). GIF gets
a 256-colour palette per frame (FFmpeg's palettegen/paletteuse, ordered
dithering, which does not crawl from frame to frame); WebP takes BGRA and
converts it to its own YUV. Neither holds sound or subtitles: the writer says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import cv2
import numpy as np

from ..config import EncodeSettings
from .reader import Frame, VideoInfo

# GIF delays are in centiseconds; animated WebP's in milliseconds.
TIME_BASE = {"gif": Fraction(1, 100), "webp": Fraction(1, 1000)}
NAMES = {"gif": "GIF", "webp": "WebP"}
PALETTE = "stats_mode=single:reserve_transparent=0"
DITHER = "new=1:dither=bayer:bayer_scale=4"


class Animation:
    def __init__(self, container: str, source: VideoInfo, encode: EncodeSettings) -> None:
        self.container = container
        self.time_base = TIME_BASE[container]
        self.fps = float(encode.anim_fps)
        # Square pixels on the way: neither format stores a pixel aspect ratio.
        width = source.width * float(source.sample_aspect_ratio or 1)
        scale = min(1.0, encode.anim_size / max(width, source.height))
        self.size = max(1, round(width * scale)), max(1, round(source.height * scale))
        self._resize = self.size != (source.width, source.height)
        self._start: float | None = None
        self._slot = -1
        self._last_pts = -1
        self.kept = 0  # source frames taken into the animation
        self._graph = _palette_graph(self.size, self.time_base) if container == "gif" else None
        source_fps = f" at {float(source.fps):.3g} fps" if source.fps else ""
        rate = f"up to {self.fps:g} fps" if not source.fps or source.fps > self.fps else f"{float(source.fps):.3g} fps"
        self.note = (f"animated {NAMES[container]} of {self.size[0]}x{self.size[1]} at {rate} (from "
                     f"{source.width}x{source.height}{source_fps}; --anim-size and --anim-fps change that)")

    def pictures(self, frame: Frame) -> Iterator[av.VideoFrame]:
        """The encoder's frames for one source frame: none when it falls in a slot already taken."""
        seconds = frame.time
        if self._start is None:
            self._start = seconds
        slot = int((seconds - self._start) * self.fps + 1e-3)  # (k / fps) * fps may come out a hair under k
        if slot <= self._slot:
            return
        self._slot = slot
        self.kept += 1
        pts = max(self._last_pts + 1, round((seconds - self._start) / self.time_base))
        self._last_pts = pts
        rgb = frame.rgb
        if self._resize:
            shrink = self.size[0] < rgb.shape[1]
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        picture.pts, picture.time_base = pts, self.time_base
        if self._graph is None:
            out = picture.reformat(format="bgra")
            out.pts, out.time_base = pts, self.time_base
            yield out
            return
        self._graph.push(picture)
        yield from _pull(self._graph)

    def flush(self) -> Iterator[av.VideoFrame]:
        """What the palette graph still holds, at the end."""
        if self._graph is not None:
            self._graph.push(None)
            yield from _pull(self._graph)


def _palette_graph(size: tuple[int, int], time_base: Fraction) -> av.filter.Graph:
    """rgb24 -> pal8 with a palette made for each frame: buffer, split, palettegen -> paletteuse."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=size[0], height=size[1], format="rgb24", time_base=time_base)
    split = graph.add("split")
    palette = graph.add("palettegen", PALETTE)
    use = graph.add("paletteuse", DITHER)
    sink = graph.add("buffersink")
    source.link_to(split)
    split.link_to(use, 0, 0)
    split.link_to(palette, 1, 0)
    palette.link_to(use, 0, 1)
    use.link_to(sink)
    graph.configure()
    return graph


def _pull(graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    while True:
        try:
            yield graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return
