"""The last step of every write: a complete temporary file becomes the output.

    commit(temp, target, overwrite)

1. The file is flushed to disk (fsync) first, and its folder after the rename,
   so that after a power cut OUTPUT is the old file or the new one, whole.
2. Without `overwrite`, a target that appeared since the run started (another
   run writing the same name) is kept: the rename refuses to replace it
   (renameat2 RENAME_NOREPLACE; else a hard link; else a last look).
3. committed() says which outputs are in place now: each commit notes the
   temporary file's inode before the rename, and an output counts when OUTPUT
   is that inode. A signal can come at any instant (its handler runs between
   two Python steps, so before the rename or after it, never inside); the CLI
   reads committed() to exit 0 only when the output really is on disk.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from ..errors import SettingsError

_RENAME_NOREPLACE, _AT_FDCWD = 1, -100
_commits: list[tuple[Path, int, int]] = []  # (target, st_dev, st_ino of its temporary file), since clear_commits


def commit(temp: Path, target: Path, overwrite: bool = True, sync: bool = True) -> None:
    """Move a complete temporary file into place; see the module docstring."""
    if sync:
        _fsync(temp, os.O_RDONLY)
    made = os.stat(temp)
    _commits.append((target, made.st_dev, made.st_ino))  # before: a signal may end this function anywhere
    if overwrite:
        os.replace(temp, target)
    else:
        _rename_noreplace(temp, target)
    if sync:
        _fsync(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def committed() -> list[Path]:
    """The outputs committed since clear_commits() that are in place now, in order."""
    return [target for target, dev, ino in _commits if _is_file(target, dev, ino)]


def clear_commits() -> None:
    _commits.clear()


def _is_file(path: Path, dev: int, ino: int) -> bool:
    try:
        found = os.lstat(path)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (dev, ino)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rename_noreplace(temp: Path, target: Path) -> None:
    try:
        _renameat2(temp, target)
        return
    except FileExistsError:
        raise _appeared(target) from None
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    try:  # a file system without RENAME_NOREPLACE: a hard link fails on an existing name too
        os.link(temp, target, follow_symlinks=False)
    except FileExistsError:
        raise _appeared(target) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(target):  # no hard links either (FAT, some FUSE): a last look
            raise _appeared(target) from None
        os.replace(temp, target)
        return
    os.unlink(temp)


def _renameat2(temp: Path, target: Path) -> None:
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not glibc 2.28+ / not Linux
        raise OSError(errno.ENOSYS, "renameat2") from None
    if renameat2(_AT_FDCWD, os.fsencode(temp), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(target))


def _appeared(target: Path) -> SettingsError:
    return SettingsError(
        f"{target}: already exists (it appeared while this run worked, and was kept); "
        "add --overwrite (-y) to replace it"
    )
