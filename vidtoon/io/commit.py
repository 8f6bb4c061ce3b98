"""The last step of every write: a complete temporary file becomes the output.

    commit(temp, target, overwrite)

1. The file is flushed to disk (fsync) first, and its folder after the rename,
   so that after a power cut OUTPUT is the old file or the new one, whole.
2. Without `overwrite`, a target that appeared since the run started (another
   run writing the same name) is kept: the rename refuses to replace it
   (renameat2 RENAME_NOREPLACE; else a hard link; else a last look).
3. Ctrl-C, SIGTERM and SIGHUP are held during the rename and its record, so
   committed() always says whether the output is on disk: the CLI then exits 0
   for a run whose output was complete when the signal came.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import SettingsError

_HELD = {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
_RENAME_NOREPLACE, _AT_FDCWD = 1, -100
_committed: list[Path] = []  # outputs moved into place (in this process since clear_commits)


def commit(temp: Path, target: Path, overwrite: bool = True, sync: bool = True) -> None:
    """Move a complete temporary file into place; see the module docstring."""
    if sync:
        _fsync(temp, os.O_RDONLY)
    with _signals_held():
        if overwrite:
            os.replace(temp, target)
        else:
            _rename_noreplace(temp, target)
        _committed.append(target)
        if sync:
            _fsync(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def committed() -> list[Path]:
    """The outputs committed since clear_commits(), in order."""
    return list(_committed)


def clear_commits() -> None:
    _committed.clear()


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Block the stopping signals on this thread (where Python runs their
    handlers: the main thread) until the block is done."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run on the main thread only; it waits for this one (stages.py)
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


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
