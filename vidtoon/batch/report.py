"""What a batch did: OUT_DIR/report.json always, OUT_DIR/report.html on request.

report.json (written atomically, like the manifest):

    {"vidtoon": "0.1.0", "finished": "2026-05-09T07:35:25+00:00", "seconds": 12.3,
     "in_dir": ..., "out_dir": ..., "backend": "classic", "workers": "2 local worker processes",
     "settings": {...}, "interrupted": false, "ignored_files": 1,
     "counts": {"done": 4, "skipped": 2, "failed": 1, "interrupted": 0},
     "clips": [{"clip": "sub/a.mp4", "output": "sub/a.mp4", "status": "done", "frames": 120,
                "seconds": 1.9, "fps": 63.2, "backend": "classic", "error": null,
                "attempts": 1, "worker": "w1", "notes": []}, ...]}

report.html is one self-contained file: the same table plus, per clip, a
source/cartoon thumbnail pair from the same moment (JPEG, inline).
"""

from __future__ import annotations

import base64
import datetime
import html
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

STATUSES = ("done", "skipped", "failed", "interrupted")
THUMB_WIDTH = 192  # px
THUMB_AT = 0.4  # of the clip's duration: past any fade-in, and the same moment in both files


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
            }
            for r in batch.results
        ],
    }


def write_report(batch: BatchResult, options: BatchOptions, recipe: Recipe) -> Path:
    write_json(batch.report, report_data(batch, options, recipe))
    return batch.report


def write_html(batch: BatchResult, options: BatchOptions) -> Path:
    """report.html beside report.json, with a thumbnail pair for every clip that has an output."""
    rows = []
    for r in batch.results:
        pictures = ""
        if r.status in ("done", "skipped"):
            pair = thumbnail_pair(options.in_dir / r.rel, options.out_dir / r.output_rel)
            pictures = "".join(f'<img src="data:image/jpeg;base64,{_b64(p)}" alt="{a}">' for p, a in zip(pair, ("source", "cartoon"), strict=True) if p)
        cells = [
            html.escape(printable(r.rel)),
            f'<span class="{r.status}">{r.status}</span>',
            "" if r.frames is None else str(r.frames),
            "" if r.seconds is None else f"{r.seconds:.1f}",
            "" if r.fps is None else f"{r.fps:.1f}",
            html.escape(printable(r.error or "; ".join([*r.warnings, *r.notes]))),
            pictures,
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    counts = ", ".join(f"{batch.count(s)} {s}" for s in STATUSES if batch.count(s))
    page = _PAGE.format(
        title=html.escape(printable(f"vidtoon batch: {options.in_dir}")),
        summary=html.escape(f"{counts} in {batch.seconds:.1f} s; {batch.backend} backend, {batch.workers}"),
        rows="\n".join(rows),
    )
    path = batch.report.with_name("report.html")
    write_atomic(path, page.encode("utf-8"))
    return path


def thumbnail_pair(source: Path, output: Path) -> tuple[bytes | None, bytes | None]:
    """JPEGs of the source and its cartoon at the same moment (None where unreadable)."""
    moment = _moment(source)
    return _jpeg(_frame_at(source, moment)), _jpeg(_frame_at(output, moment))


def _moment(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            if stream.duration and stream.time_base:
                return start + THUMB_AT * float(stream.duration * stream.time_base)
            if container.duration:
                return start + THUMB_AT * container.duration / av.time_base
            return start
    except Exception:  # noqa: BLE001 - a thumbnail is never worth failing the report
        return 0.0


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


def _jpeg(rgb: np.ndarray | None) -> bytes | None:
    if rgb is None:
        return None
    import cv2

    height, width = rgb.shape[:2]
    size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if width > THUMB_WIDTH else cv2.INTER_LINEAR)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return data.tobytes() if ok else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: middle; }}
img {{ margin-right: 4px; }}
.done {{ color: #1a7f37; }} .skipped {{ color: #57606a; }} .failed {{ color: #cf222e; font-weight: bold; }}
.interrupted {{ color: #9a6700; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}</p>
<table>
<tr><th>clip</th><th>status</th><th>frames</th><th>seconds</th><th>fps</th><th>error / notes</th><th>source | cartoon</th></tr>
{rows}
</table>
</body></html>
"""
