"""`vidtoon info`: what vidtoon sees in a video file, stream by stream."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from ..progress import printable
from .quiet import write_stdout
from .status import ExitStatus

DESCRIPTION = (
    "Show what vidtoon sees in INPUT, stream by stream. Video: codec and profile, size as displayed, "
    "pixel format and bit depth, frame rate (constant or variable), frame count and whether it is exact "
    "(the container's index, or the packets counted) or an estimate, colour matrix, range, primaries and "
    "transfer, rotation; the stream vidtoon cartoonizes is marked. Audio: codec, channels and layout, "
    "sample rate, language. Subtitles: codec, text or pictures, language. --json gives the same for scripts."
)


def add(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    info = commands.add_parser("info", parents=[common], help="show what vidtoon sees in a video file",
                               description=DESCRIPTION)
    info.add_argument("input", type=Path, metavar="INPUT", help="video file (mp4, mov, mkv, webm, avi, ...)")
    info.add_argument("--json", action="store_true", help="print it as JSON on stdout")
    info.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from ..io.probe import probe

    media = probe(args.input)
    if args.json:
        write_stdout(json.dumps(media.as_json(), indent=2, default=str))
        return ExitStatus.SUCCESS
    for line in lines(media):
        write_stdout(printable(line))
    return ExitStatus.SUCCESS


def lines(media) -> list[str]:
    """The text report: a line for the file, then one or two per stream."""
    main = next((v for v in media.video if v.cartoonized), media.video[0])
    summary = [f"{main.width}x{main.height} {main.codec}", str(main.rate).split(" (")[0],
               f"{'' if main.frames.exact else 'about '}{main.frames.frames if main.frames.frames is not None else '?'} frames",
               f"{len(media.audio)} audio" if media.audio else "no audio"]
    if media.subtitles:
        summary.append(f"{len(media.subtitles)} subtitle{'s' * (len(media.subtitles) != 1)}")
    out = [f"{media.path}: {', '.join(summary)}"]
    duration = f"{media.duration:.3f} s" if media.duration is not None else "unknown duration"
    rate = f", {media.bit_rate / 1000:.0f} kb/s" if media.bit_rate else ""
    out.append(f"  container {media.container}, {duration}, {_size(media.size)}{rate}")
    for v in media.video:
        role = " (cartoonized)" if v.cartoonized and len(media.video) > 1 else " (a cover picture)" if v.cover else ""
        profile = f" ({v.profile})" if v.profile else ""
        sar = f", pixel aspect {v.sample_aspect_ratio}" if v.sample_aspect_ratio else ""
        out.append(f"  video #{v.index}{role}: {v.codec}{profile}, {v.width}x{v.height}{sar}, {v.pix_fmt} ({v.bit_depth}-bit), "
                   f"{v.rate}, {v.frames}")
        c = v.color
        turn = f", rotation {v.rotation} (shown upright)" if v.rotation else ", rotation 0"
        out.append(f"      colour: matrix {c['space']}, range {c['range']}, primaries {c['primaries']}, "
                   f"transfer {c['transfer']}{turn}")
    for a in media.audio:
        profile = f" ({a.profile})" if a.profile else ""
        bits = [f"{a.channels} channel{'s' * (a.channels != 1)} ({a.layout})", f"{a.sample_rate} Hz"]
        bits += [f"{a.bit_rate / 1000:.0f} kb/s"] if a.bit_rate else []
        bits += [f"language {a.language}"] if a.language else []
        bits += [f"title {a.title!r}"] if a.title else []
        out.append(f"  audio #{a.index}: {a.codec}{profile}, {', '.join(bits)}")
    for s in media.subtitles:
        bits = [s.kind] + ([f"language {s.language}"] if s.language else []) + ([f"title {s.title!r}"] if s.title else [])
        bits += [flag for flag, on in (("default", s.default), ("forced", s.forced)) if on]
        out.append(f"  subtitles #{s.index}: {s.codec}, {', '.join(bits)}")
    for o in media.other:
        out.append(f"  {o['type']} #{o['index']}: {o['codec'] or 'unknown codec'} (not carried)")
    return out


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
