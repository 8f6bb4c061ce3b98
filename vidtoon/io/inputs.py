"""What is refused before a file is decoded, and how a damaged MP4 is described.

    check_readable(path)                   a regular, readable, non-empty file
    check_size(path, width, height)        frames no larger than vidtoon takes
    mp4_damage(path)                       what is wrong with an MP4/MOV's boxes, in words
    y4m_damage(path)                       what is wrong with a YUV4MPEG2 header, in words

Used by reader.py; kept apart so that the reader is about decoding.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import av

from ..errors import InputError

# The largest frame vidtoon takes: H.264's level 6.2 maximum of 139,264 16x16
# macroblocks, i.e. 8192x4352 (8K UHD and DCI 8K fit). Checked before the
# first frame is decoded, so a file that claims a giant size costs nothing.
MAX_PIXELS = 139_264 * 256
MAX_SIZE_TEXT = "8192x4352 (35.7 megapixels)"

# printf-style frame numbers (frame_%03d.png): FFmpeg's image-sequence pattern.
SEQUENCE_PATTERN = re.compile(r"%0?\d*d")



def check_readable(path: Path) -> None:
    if not path.exists():
        pattern = SEQUENCE_PATTERN.search(path.name)
        if pattern:
            raise InputError(
                f"{path}: no such file; image sequences ({pattern.group()} patterns) are not read: "
                "make the images into a video first, e.g. ffmpeg -framerate 25 -i PATTERN frames.mp4"
            )
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    if not stat.S_ISREG(path.stat().st_mode):
        # A FIFO would block the open forever, and the audio is read in a second pass.
        raise InputError(f"{path}: is not a regular file (a pipe or device); give a video file")
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror})") from None
    if not head:
        raise InputError(f"{path}: the file is empty")


def check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise InputError(f"{path}: frames of {too_large(width, height)}; scale the video down first")


def too_large(width: int, height: int) -> str:
    """'8193x4352 are 35,655,936 pixels, over the 35,651,584 of 8192x4352 ...': exact, as
    sizes just over the limit round to the same megapixels."""
    return (f"{width}x{height} are {width * height:,} pixels, over the {MAX_PIXELS:,} of "
            f"{MAX_SIZE_TEXT} that vidtoon takes")


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def index_end(container: av.container.InputContainer) -> int:
    """The furthest byte the container's index points at (MP4/MOV keep one for
    every packet); 0 where there is no index."""
    end = 0
    for stream in container.streams:
        entries = stream.index_entries
        if len(entries):
            last = entries[len(entries) - 1]
            end = max(end, last.pos + last.size)
    return end


def mp4_damage(path: Path) -> str | None:
    """For an MP4/MOV that FFmpeg cannot open: what is wrong with its top-level
    boxes, in words, or None when it is not an MP4/MOV or the boxes look sound."""
    boxes = []
    size = file_size(path)
    try:
        with open(path, "rb") as f:
            pos = 0
            while pos + 8 <= size and len(boxes) < 1000:
                f.seek(pos)
                head = f.read(16)
                length, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if length == 1 and len(head) == 16:
                    length = int.from_bytes(head[8:16], "big")
                elif length == 0:
                    length = size - pos
                if length < 8 or not kind.isalnum():
                    break
                boxes.append((kind, pos + length))
                pos += length
    except OSError:
        return None
    kinds = [kind for kind, _ in boxes]
    if not kinds or kinds[0] != b"ftyp":
        return None
    if b"moov" not in kinds:
        return "its index (the moov atom) is missing, as when a recording is cut off before it is finished"
    if dict(boxes)[b"moov"] > size:
        return "the file is cut short inside its index (the moov atom)"
    return None


def y4m_damage(path: Path) -> str | None:
    """For a YUV4MPEG2 (.y4m) file FFmpeg cannot open: what its header gets wrong,
    in words (FFmpeg itself says "Device or resource busy" for a bad size), or None."""
    try:
        with open(path, "rb") as f:
            line = f.read(256).split(b"\n")[0]
    except OSError:
        return None
    if not line.startswith(b"YUV4MPEG2"):
        return None
    fields = {token[:1]: token[1:] for token in line.split()[1:] if token}
    width, height = fields.get(b"W", b""), fields.get(b"H", b"")
    if not (width.isdigit() and height.isdigit()):
        return "its YUV4MPEG2 header gives no frame size (W and H)"
    if int(width) == 0 or int(height) == 0:
        return f"its YUV4MPEG2 header gives a frame size of {int(width)}x{int(height)}"
    if int(width) * int(height) > MAX_PIXELS:
        return f"its YUV4MPEG2 header gives a frame size vidtoon does not take: {too_large(int(width), int(height))}"
    return None
