"""File safety, for every file vidtoon writes (video, image, plot, sheet,
manifest, report, snapshot):

    check_output_path(target, overwrite, source)   refuse before any work
    with atomic_output(target) as temp:            write temp; it becomes target
        temp.write_bytes(...)                      only when the block succeeds
    write_atomic(target, data)                     the same for bytes in hand

A file is written under a hidden temporary name beside its target and renamed
over it only when complete (commit.py: flushed to disk first, and never over a
file that appeared meanwhile unless overwriting was asked), so a failure or
Ctrl-C leaves the old file (or none), never half of one. Cleaning up after a
failure never hides the failure: an error while deleting the temporary file
is swallowed, the original raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError, SettingsError, describe
from .commit import commit

TEMP_SUFFIX = ".part"
_TEMP = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX))
NAME_MAX = 255  # bytes in one file name, on every file system vidtoon writes to
_EXTRA = len(f"..{'0' * 8}{TEMP_SUFFIX}")  # what the temporary name adds: 15 bytes


def temporary_path(target: Path) -> Path:
    """A fresh hidden name beside `target`: .NAME.XXXXXXXX.part (NAME shortened
    where that would be too long a file name; see _stem)."""
    return target.with_name(f".{_stem(target.name)}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


def _stem(name: str) -> str:
    """`name`, or for a name within 15 bytes of NAME_MAX its first bytes and a hash
    of the whole (so two long names that start alike never share temporaries)."""
    raw = os.fsencode(name)
    if len(raw) + _EXTRA <= NAME_MAX:
        return name
    tag = "~" + hashlib.sha256(raw).hexdigest()[:8]
    cut = NAME_MAX - _EXTRA - len(tag)
    while cut and raw[cut] & 0xC0 == 0x80:  # not inside a UTF-8 character
        cut -= 1
    return os.fsdecode(raw[:cut]) + tag


def is_temporary(name: str, target_name: str | None = None) -> bool:
    """Is `name` a temporary file's name (of `target_name`, if given)?"""
    match = _TEMP.fullmatch(name)
    return match is not None and (target_name is None or match["name"] == _stem(target_name))


def remove_temporaries(target: Path) -> None:
    """Delete temporary files that a killed run left for `target`."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            if is_temporary(entry.name, target.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def discard(temp: Path) -> None:
    """Delete a temporary file if it is there; never raises (the caller's error matters)."""
    with contextlib.suppress(OSError):
        temp.unlink()


@contextlib.contextmanager
def atomic_output(target: Path, overwrite: bool = True, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place (commit.py) when
    the block succeeds, delete it when it fails. OS errors become OutputError
    naming `target`. overwrite=False: a `target` that appeared meanwhile is kept
    and SettingsError raised. sync=False: skip the flush to disk (scratch files)."""
    temp = temporary_path(target)
    try:
        yield temp
        commit(temp, target, overwrite, sync)
    except OSError as e:
        discard(temp)
        raise OutputError(f"{target}: cannot be written ({describe(e)})") from None
    except BaseException:
        discard(temp)
        raise


def write_atomic(target: Path, data: bytes, sync: bool = True, overwrite: bool = True) -> None:
    """Write `data` to `target` all at once or not at all (see atomic_output)."""
    with atomic_output(target, overwrite, sync) as temp:
        temp.write_bytes(data)


def check_output_path(target: Path, overwrite: bool, source: Path | None = None, what: str = "output") -> None:
    """Refuse a target that is a folder, a FIFO or device, the input itself, or
    exists (unless `overwrite`), or whose folder is missing: SettingsError, before
    any work."""
    if target.exists() or target.is_symlink():
        if target.is_dir():
            raise SettingsError(f"{target}: is a directory; give an {what} file name")
        mode = os.lstat(target).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # a link itself is replaced, its target never written
            raise SettingsError(f"{target}: is not a regular file (a FIFO, device or socket); give an {what} file name")
        if source is not None and source.exists() and target.exists() and target.samefile(source):
            raise SettingsError(f"{target}: is the input file; choose another {what} name")
        if not overwrite:
            raise SettingsError(f"{target}: already exists; add --overwrite (-y) to replace it")
    if not target.parent.is_dir():
        raise SettingsError(f"{target.parent}: no such directory for the {what}")


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """'1280x720' -> (1280, 720); SettingsError otherwise (ranges are the caller's)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise SettingsError(f"{option} must be WIDTHxHEIGHT, like 1280x720; got {text!r}")
    return int(match[1]), int(match[2])
