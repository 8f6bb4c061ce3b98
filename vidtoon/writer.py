"""Moved to vidtoon.io.writer; this name is kept so that code written against the
old layout (`from vidtoon.writer import VideoWriter`) keeps working."""

import warnings

from .io.writer import VideoWriter

__all__ = ["VideoWriter"]

warnings.warn("vidtoon.writer moved to vidtoon.io.writer (or use vidtoon.VideoWriter)", DeprecationWarning, stacklevel=2)
