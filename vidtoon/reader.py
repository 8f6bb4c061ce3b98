"""Moved to vidtoon.io.reader; this name is kept so that code written against the
old layout (`from vidtoon.reader import open_video`) keeps working."""

import warnings

from .io.reader import MAX_PIXELS, MAX_SIZE_TEXT, ColorInfo, Frame, VideoInfo, VideoReader, open_video

__all__ = ["MAX_PIXELS", "MAX_SIZE_TEXT", "ColorInfo", "Frame", "VideoInfo", "VideoReader", "open_video"]

warnings.warn("vidtoon.reader moved to vidtoon.io.reader (or use vidtoon.open_video)", DeprecationWarning, stacklevel=2)
