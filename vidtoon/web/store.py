"""Where the web page may read and write: an uploads folder and an outputs folder,
both inside one temporary folder that is removed on exit (outputs: or --out-dir),
and, read-only, a batch OUT_DIR (--batch-dir).

Uploads and outputs are named by the server (a random id and a known suffix),
and looked up by that id only: no name the browser sends ever becomes a path.
The batch folder is the one place a browser path is used, and it is resolved
and refused unless it stays inside that folder (no '..', no absolute path, no
symbolic link out).
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from ..errors import SettingsError

ID = re.compile(r"[0-9a-f]{16}")
SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")
GiB = 2**30


class NotFound(LookupError):
    """No such upload, output or batch file (also for any name that tries to leave its folder)."""


class Store:
    def __init__(self, out_dir: Path | None = None, batch_dir: Path | None = None, limit: int = 2 * GiB) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vidtoon-serve-"))
        self.uploads = self.root / "uploads"
        self.uploads.mkdir()
        self.outputs = Path(out_dir) if out_dir is not None else self.root / "outputs"
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.batch_dir = Path(batch_dir).resolve() if batch_dir is not None else None
        self.limit = limit
        self.names: dict[str, str] = {}  # upload id -> the file name the browser gave, for messages

    def new_upload(self, name: str) -> tuple[str, Path]:
        """A fresh id and the path its bytes go to; the suffix is kept (the reader needs no more)."""
        suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
        upload_id = secrets.token_hex(8)
        self.names[upload_id] = PurePosixPath(name.replace("\\", "/")).name or "upload"
        return upload_id, self.uploads / (upload_id + (suffix if SUFFIX.fullmatch(suffix) else ""))

    def upload(self, upload_id: str) -> Path:
        return self._find(self.uploads, upload_id)

    def output(self, job_id: str) -> Path:
        return self._find(self.outputs, job_id)

    def output_path(self, job_id: str, suffix: str = ".mp4") -> Path:
        return self.outputs / f"{job_id}{suffix}"

    def forget(self, upload_id: str) -> None:
        """Remove an upload (refused by the reader, or no longer wanted)."""
        try:
            self.upload(upload_id).unlink()
        except (NotFound, FileNotFoundError):
            pass
        self.names.pop(upload_id, None)

    def batch_file(self, rel: str) -> Path:
        """A file inside the batch folder, from the path in the URL (already percent-decoded)."""
        if self.batch_dir is None:
            raise NotFound("no --batch-dir was given")
        rel = rel or "report.html"
        parts = PurePosixPath(rel).parts
        if "\\" in rel or "\0" in rel or rel.startswith("/") or any(p in ("..", ".") for p in parts):
            raise NotFound(rel)
        path = self.batch_dir.joinpath(*parts)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotFound(rel) from None
        if not real.is_relative_to(self.batch_dir) or not real.is_file():
            raise NotFound(rel)  # a symbolic link out of the folder, or a folder
        return real

    def message(self, error: Exception | str, upload_id: str) -> str:
        """The CLI's one-line error (or warning), with the upload's own name in place of its stored path."""
        text = str(error)
        path = self.names.get(upload_id)
        if path is not None:
            for stored in self.uploads.glob(upload_id + "*"):
                text = text.replace(str(stored), path)
        return text

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _find(folder: Path, file_id: str) -> Path:
        if not ID.fullmatch(file_id):
            raise NotFound(file_id)
        for path in folder.glob(file_id + "*"):
            if ID.fullmatch(path.name[:16]) and not path.is_symlink() and path.is_file() and not path.name.startswith("."):
                return path
        raise NotFound(file_id)


def parse_bytes(text: str, option: str = "--max-upload") -> int:
    """'2G', '500M', '64K' or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise SettingsError(f"{option} must be a size such as 2G, 500M or 1000000, got {text!r}")
    value = float(match[1]) * {"": 1, "K": 2**10, "M": 2**20, "G": GiB}[match[2].upper()]
    if value < 1:
        raise SettingsError(f"{option} must be at least 1 byte, got {text!r}")
    return int(value)


def size_text(size: int) -> str:
    """2147483648 -> '2 GiB', 1000 -> '1000 bytes'."""
    for unit, scale in (("GiB", GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"
