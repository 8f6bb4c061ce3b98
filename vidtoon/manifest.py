"""The batch manifest: which clips in OUT_DIR are finished, from which input, with which settings.

    manifest = Manifest.load(out_dir)
    if manifest.is_current(rel, source, output, fingerprint): ...skip...
    manifest.mark_running(rel, ...); manifest.save()      # before a clip is handed out
    manifest.mark_done(rel, ...); manifest.save()         # after its output landed

It lives in OUT_DIR/vidtoon-manifest.json and is rewritten whole, atomically
(temporary file + os.replace), after every change, so a kill -9 at any moment
leaves either the old or the new version and loses at most the clips in flight.

A "running" entry records when a clip was handed out. If the run dies after the
clip's output landed (the writer renames it into place only when complete) but
before its "done" entry was saved, the next run finds an output newer than that
moment and adopts it instead of cartoonizing the clip a second time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from . import __version__
from .config import Settings

MANIFEST_NAME = "vidtoon-manifest.json"
FORMAT = 1  # bump when the layout changes; older manifests are then ignored

# Settings fields that say where to read and write, not what the cartoon looks like.
NOT_IN_FINGERPRINT = ("input", "output", "overwrite")


def settings_fingerprint(settings: Settings) -> str:
    """A short hash of everything in `settings` that can change an output file.

    Generic on purpose: every field (nested dataclasses included) counts except
    the paths, so options added later are covered without touching this."""
    fields = dataclasses.asdict(settings)
    for name in NOT_IN_FINGERPRINT:
        fields.pop(name, None)
    fields["vidtoon"] = __version__  # a new release may draw differently
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def write_json(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


class Manifest:
    """Per-clip records keyed by the clip's path relative to IN_DIR (with '/')."""

    def __init__(self, path: Path, clips: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.clips: dict[str, dict[str, Any]] = clips or {}

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """The manifest in out_dir; an empty one if there is none, or it is unreadable
        (then every clip is simply redone)."""
        path = out_dir / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("clips"), dict):
            return cls(path)
        clips = {rel: entry for rel, entry in data["clips"].items() if isinstance(entry, dict)}
        return cls(path, clips)

    def save(self) -> None:
        write_json(self.path, {"format": FORMAT, "vidtoon": __version__, "clips": self.clips})

    def is_current(self, rel: str, source: Path, output: Path, output_rel: str, fingerprint: str) -> bool:
        """Is the output of `rel` complete and made from this input with these settings?

        Size and mtime decide quickly; when only the mtime moved (a copy, a touch),
        the content hash decides, and the new mtime is remembered."""
        entry = self._entry(rel, "done", output_rel, fingerprint)
        if entry is None:
            return False
        try:
            if output.stat().st_size != entry.get("output_size"):
                return False
            stamp = file_stamp(source)
        except OSError:
            return False
        recorded = entry.get("input") or {}
        if stamp == {"size": recorded.get("size"), "mtime_ns": recorded.get("mtime_ns")}:
            return True
        if stamp["size"] != recorded.get("size") or not recorded.get("sha256"):
            return False
        try:
            same = file_digest(source) == recorded["sha256"]
        except OSError:
            return False
        if same:
            entry["input"] = {**recorded, **stamp}
        return same

    def landed_while_running(self, rel: str, source: Path, output: Path, output_rel: str, fingerprint: str) -> bool:
        """Did a run that died (or was stopped) finish this clip after handing it out?"""
        entry = self._entry(rel, "running", output_rel, fingerprint)
        if entry is None:
            return False
        try:
            landed = output.stat().st_mtime_ns
            stamp = file_stamp(source)
        except OSError:
            return False
        recorded = entry.get("input") or {}
        unchanged = stamp == {"size": recorded.get("size"), "mtime_ns": recorded.get("mtime_ns")}
        return unchanged and landed >= entry.get("started_ns", float("inf"))

    def _entry(self, rel: str, state: str, output_rel: str, fingerprint: str) -> dict[str, Any] | None:
        """rel's entry if it is in `state` and was made for this output with these settings."""
        entry = self.clips.get(rel)
        if entry and entry.get("state") == state and entry.get("settings") == fingerprint and entry.get("output") == output_rel:
            return entry
        return None

    def mark_running(self, rel: str, input_stamp: dict[str, int], output_rel: str, fingerprint: str, started_ns: int) -> None:
        self.clips[rel] = {
            "state": "running",
            "input": input_stamp,
            "output": output_rel,
            "settings": fingerprint,
            "started_ns": started_ns,
        }

    def mark_done(self, rel: str, record: dict[str, Any]) -> None:
        """record: input (size, mtime_ns, sha256), output, output_size, settings, frames, seconds, backend."""
        self.clips[rel] = {"state": "done", **record}

    def mark_failed(self, rel: str, error: str) -> None:
        """Keep the entry (so its output path stays ours to replace) but never skip it."""
        entry = self.clips.setdefault(rel, {})
        entry.update(state="failed", error=error)
