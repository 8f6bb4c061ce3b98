"""Frames for the page's frame slider, decoded by the library's reader (the pixels
`vidtoon image --frame N` and the video job see), and kept at preview size.

A reader stays open where the last frame asked for was, so moving the slider
forward decodes only the frames in between, and the BEHIND frames before the
one asked for are kept on the way; moving back further starts again from the
first frame. The reader has no seeking, so the first
look at a frame far into a long video costs its decoding time (docs/web.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..errors import SettingsError
from ..io.reader import Frame, VideoReader, open_video

KEPT_FRAMES = 64  # preview-size frames kept, about 0.7 MB each at 640x360
BEHIND = 24  # frames just before the one asked for are kept on the way, for a slider dragged back
OPEN_READERS = 2  # videos kept open at their last position


class Scrubber:
    def __init__(self, shrink: Callable[[np.ndarray], np.ndarray]) -> None:
        self._shrink = shrink
        self._frames: OrderedDict[tuple[Path, int], np.ndarray] = OrderedDict()
        self._readers: OrderedDict[Path, tuple[VideoReader, Iterator[Frame], list[int]]] = OrderedDict()

    def frame(self, source: Path, index: int) -> np.ndarray:
        """Frame `index` (0-based) of the video at `source`, shrunk; SettingsError past the end."""
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise SettingsError(f"--frame must be 0 or more, got {index!r}")
        key = (source, index)
        if key not in self._frames:
            self._decode(source, index)
        self._frames.move_to_end(key)
        return self._frames[key]

    def _keep(self, key: tuple[Path, int], rgb: np.ndarray) -> None:
        self._frames[key] = self._shrink(rgb)
        while len(self._frames) > KEPT_FRAMES:
            self._frames.popitem(last=False)

    def _decode(self, source: Path, index: int) -> None:
        held = self._readers.get(source)
        if held is None or held[2][0] > index:  # not open, or already past the frame: from the start
            self.close(source)
            reader = open_video(source)
            held = self._readers[source] = (reader, reader.frames(), [0])
            while len(self._readers) > OPEN_READERS:
                self.close(next(iter(self._readers)))
        self._readers.move_to_end(source)
        _, frames, position = held
        for decoded in frames:
            position[0] = decoded.index + 1
            if decoded.index >= index - BEHIND:
                self._keep((source, decoded.index), decoded.rgb)
            if decoded.index == index:
                return
        self.close(source)
        raise SettingsError(f"{source}: has {position[0]} frames; --frame must be below that, got {index}")

    def close(self, source: Path | None = None) -> None:
        """Close the reader of `source` (None: every reader)."""
        for path in [source] if source is not None else list(self._readers):
            held = self._readers.pop(path, None)
            if held is not None:
                held[1].close()
                held[0].close()
