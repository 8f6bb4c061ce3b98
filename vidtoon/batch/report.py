"""What a batch did: OUT_DIR/report.json always, OUT_DIR/report.html on request.

report.json (written atomically, like the manifest):

    {"vidtoon": "0.1.0", "finished": "2026-05-09T07:35:25+00:00", "seconds": 12.3,
     "in_dir": ..., "out_dir": ..., "backend": "classic", "workers": "2 local worker processes",
     "settings": {...}, "interrupted": false, "ignored_files": 1,
     "counts": {"done": 4, "skipped": 2, "failed": 1, "interrupted": 0},
     "clips": [{"clip": "sub/a.mp4", "output": "sub/a.mp4", "status": "done", "frames": 120,
                "seconds": 1.9, "fps": 63.2, "backend": "classic", "error": null,
                "attempts": 1, "worker": "w1", "notes": [], "warnings": [],
                "made": "2026-05-09T07:35:20+00:00", "made_by_this_run": true}, ...]}

`status` and `counts` say what THIS run did; a clip skipped as up to date keeps
the result of the run that made its output (frames, seconds, fps, worker,
notes, warnings, `made`), so a no-op rerun reports the last real results.

report.html is one self-contained file (pictures inline, nothing fetched): per
clip a line of facts and a link to its output, a source/cartoon pair from the
same moment, 480 px wide each, and a strip of six cartoon frames spread over
the clip.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import Recipe
from ..io.files import write_atomic
from ..progress import printable
from .manifest import write_json

if TYPE_CHECKING:
    import numpy as np

    from .run import BatchOptions, BatchResult
    from .workers import ClipResult

STATUSES = ("done", "skipped", "failed", "interrupted")
THUMB_WIDTH = 480  # px, each picture of the source/cartoon pair
THUMB_AT = 0.4  # of the clip's duration: past any fade-in, and the same moment in both files
STRIP_FRAMES = 6  # cartoon frames in the strip, at the middles of six equal parts of the clip
STRIP_WIDTH = 160  # px, each
JPEG_QUALITY = 80


def report_data(batch: BatchResult, options: BatchOptions, recipe: Recipe) -> dict[str, Any]:
    return {
        "vidtoon": __version__,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": round(batch.seconds, 3),
        "in_dir": str(options.in_dir.resolve()),
        "out_dir": str(options.out_dir.resolve()),
        "backend": batch.backend,
        "workers": batch.workers,
        "settings": recipe.describe(),
        "interrupted": batch.interrupted,
        "ignored_files": batch.ignored,
        "counts": {status: batch.count(status) for status in STATUSES},
        "clips": [
            {
                "clip": r.rel,
                "output": r.output_rel,
                "status": r.status,
                "frames": r.frames,
                "seconds": None if r.seconds is None else round(r.seconds, 3),
                "fps": None if r.fps is None else round(r.fps, 2),
                "backend": r.backend,
                "error": r.error,
                "attempts": r.attempts,
                "worker": r.worker,
                "notes": r.notes,
                "warnings": r.warnings,
                "made": r.made,
                "made_by_this_run": r.status == "done",
            }
            for r in batch.results
        ],
    }


def write_report(batch: BatchResult, options: BatchOptions, recipe: Recipe) -> Path:
    write_json(batch.report, report_data(batch, options, recipe))
    return batch.report


def write_html(batch: BatchResult, options: BatchOptions) -> Path:
    """report.html beside report.json: a section per clip, with pictures for every clip that has an output."""
    sections = [_section(r, options) for r in batch.results]
    counts = ", ".join(f"{batch.count(s)} {_WORDS[s]}" for s in STATUSES if batch.count(s))
    page = _PAGE.format(
        title=html.escape(printable(f"vidtoon batch: {options.in_dir}")),
        summary=html.escape(f"This run: {counts} in {batch.seconds:.1f} s; {batch.backend} backend, {batch.workers}."),
        sections="\n".join(sections),
    )
    path = batch.report.with_name("report.html")
    write_atomic(path, page.encode("utf-8"))
    return path


_WORDS = {"done": "done", "skipped": "up to date", "failed": "failed", "interrupted": "interrupted"}


def _section(r: ClipResult, options: BatchOptions) -> str:
    facts = [f'<span class="{r.status}">{_WORDS[r.status]}</span>']
    if r.status == "skipped" and r.made:
        facts.append(f"made {html.escape(_when(r.made))} by an earlier run")
    elif r.status == "done":
        facts.append("made by this run")
    if r.frames is not None:
        facts.append(f"{r.frames} frames")
    if r.seconds is not None:
        facts.append(f"{r.seconds:.1f} s" + (f" ({r.fps:.1f} fps)" if r.fps else ""))
    if r.worker:
        facts.append(html.escape(printable(r.worker)))
    pictures = ""
    if r.status in ("done", "skipped"):
        link = urllib.parse.quote(os.fsencode(r.output_rel))  # the name's own bytes, UTF-8 or not
        facts.append(f'<a href="{link}">{html.escape(printable(r.output_rel))}</a>')
        source, output = options.in_dir / r.rel, options.out_dir / r.output_rel
        pair = thumbnail_pair(source, output)
        pictures = "".join(_img(p, alt) for p, alt in zip(pair, ("source", "cartoon"), strict=True) if p)
        strip = frame_strip(output)
        if strip:
            pictures += f'<br>{_img(strip, "frames of the cartoon")}'
    lines = [html.escape(printable(m)) for m in ([r.error] if r.error else [*r.warnings, *r.notes])]
    said = "".join(f'<p class="{"error" if r.error else "note"}">{line}</p>' for line in lines)
    return (f'<section><h2>{html.escape(printable(r.rel))}</h2><p>{" · ".join(facts)}</p>{said}'
            f'<div class="pictures">{pictures}</div></section>')


def _img(jpeg: bytes, alt: str) -> str:
    return f'<img src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode("ascii")}" alt="{alt}">'


def _when(iso: str) -> str:
    try:
        return datetime.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def thumbnail_pair(source: Path, output: Path) -> tuple[bytes | None, bytes | None]:
    """JPEGs of the source and its cartoon at the same moment (None where unreadable)."""
    start, duration = _span(source)
    moment = start + THUMB_AT * duration
    return _jpeg(_frame_at(source, moment), THUMB_WIDTH), _jpeg(_frame_at(output, moment), THUMB_WIDTH)


def frame_strip(output: Path) -> bytes | None:
    """One JPEG of STRIP_FRAMES cartoon frames side by side, spread over the clip (None where unreadable)."""
    import cv2
    import numpy as np

    start, duration = _span(output)
    frames = [_frame_at(output, start + (k + 0.5) / STRIP_FRAMES * duration) for k in range(STRIP_FRAMES)]
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    height, width = frames[0].shape[:2]
    size = (STRIP_WIDTH, max(1, round(height * STRIP_WIDTH / width)))
    small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return _jpeg(np.hstack(small), None)


def _span(path: Path) -> tuple[float, float]:
    """(start, duration) of the video stream in seconds; (0, 0) where unknown."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            if stream.duration and stream.time_base:
                return start, float(stream.duration * stream.time_base)
            if container.duration:
                return start, container.duration / av.time_base
            return start, 0.0
    except Exception:  # noqa: BLE001 - a thumbnail is never worth failing the report
        return 0.0, 0.0


def _frame_at(path: Path, seconds: float) -> np.ndarray | None:
    """The first frame at or after `seconds` (upright RGB), seeking to the keyframe before it."""
    import av
    import numpy as np

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if seconds > 0 and stream.time_base:
                container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is not None and frame.time >= seconds - 1e-3:
                    break
            if chosen is None:
                return None
            rgb = chosen.to_ndarray(format="rgb24")
            turns = (round(chosen.rotation) % 360) // 90  # as the reader turns them
            return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb
    except Exception:  # noqa: BLE001
        return None


def _jpeg(rgb: np.ndarray | None, width: int | None) -> bytes | None:
    """A JPEG of `rgb`, `width` px wide (None: as it is)."""
    if rgb is None:
        return None
    import cv2

    height, w = rgb.shape[:2]
    if width is not None and width != w:
        size = (width, max(1, round(height * width / w)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if w > width else cv2.INTER_LINEAR)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return data.tobytes() if ok else None


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1000px; }}
section {{ border-top: 1px solid #ddd; padding: 0.8em 0; }}
h2 {{ font-size: 1.05em; margin: 0 0 0.3em; }}
p {{ margin: 0.2em 0; }}
.pictures img {{ margin: 4px 4px 0 0; max-width: 100%; }}
.note {{ color: #57606a; }} .error {{ color: #cf222e; }}
.done {{ color: #1a7f37; font-weight: bold; }} .skipped {{ color: #57606a; font-weight: bold; }}
.failed {{ color: #cf222e; font-weight: bold; }} .interrupted {{ color: #9a6700; font-weight: bold; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary} Each clip: what this run did with it, the result of the run that made its output,
the source and the cartoon at the same moment, and six frames of the cartoon.</p>
{sections}
</body></html>
"""
