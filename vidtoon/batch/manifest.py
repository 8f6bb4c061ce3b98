"""The batch manifest: which clips in OUT_DIR are finished, from which input, with which settings.

    manifest = Manifest.load(out_dir)
    if manifest.is_current(rel, source, output, fingerprint): ...skip...
    manifest.mark_running(rel, ...); manifest.save()      # before a clip is handed out
    manifest.mark_done(rel, ...); manifest.save()         # after its output landed

It lives in OUT_DIR/vidtoon-manifest.json and is rewritten whole, atomically
(io/files.py: temporary file, then rename), after every change, so a kill -9 at any moment
leaves either the old or the new version and loses at most the clips in flight.

A "running" entry records when a clip was handed out. If the run dies after the
clip's output landed (the writer renames it into place only when complete) but
before its "done" entry was saved, the next run finds an output newer than that
moment and adopts it instead of cartoonizing the clip a second time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Recipe
from ..io.files import write_atomic

MANIFEST_NAME = "vidtoon-manifest.json"
FORMAT = 1  # bump when the layout changes; older manifests are then ignored

def recipe_fingerprint(recipe: Recipe) -> str:
    """A short hash of everything in a (resolved) recipe that can change an output file:
    Recipe.describe(), i.e. the active backend's settings and not the others', so
    that a classic option does not redo pix2pix clips. Generic on purpose: every
    field counts, so options added later are covered without touching this."""
    fields = {**recipe.describe(), "vidtoon": __version__}  # a new release may draw differently
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
    """Write JSON so that readers see the old file or the new one, never half of one;
    on disk before it replaces the old (a power cut keeps one of the two)."""
    write_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"), sync=True)


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
        """record: input (size, mtime_ns, sha256), output, output_size, settings, frames, seconds, backend;
        and what a rerun reports of the clip: made (when), worker, notes, warnings."""
        self.clips[rel] = {"state": "done", **record}

    def mark_failed(self, rel: str, error: str) -> None:
        """Keep the entry (so its output path stays ours to replace) but never skip it."""
        entry = self.clips.setdefault(rel, {})
        entry.update(state="failed", error=error)
