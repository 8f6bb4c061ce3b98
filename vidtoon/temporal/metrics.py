"""Flicker as a number: the warp error of Lai et al. 2018 ("Learning Blind Video
Temporal Consistency"), measured against the source's own.

    from vidtoon.temporal.metrics import measure
    report = measure("in.mp4", "cartoon.mp4")
    print(report.output_error / report.source_error)   # = report.ratio

For every pair of frames (t, t+1): optical flow on the SOURCE (OpenCV DIS,
"medium" preset; or "fast" with --flow fast: about 3x quicker, but coarser, so
the source's own error rises and ratios come out lower, 1.82x against 2.39x
for the classic cartoon of the astronaut sample: compare only numbers measured
with the same flow; either differs from the stabiliser's flow, at a quarter of
the size, so that it cannot grade its own homework), occlusions masked by a forward-backward check and motion
boundaries (flow.valid_mask), then the mean squared RGB difference (0-1
scale) between frame t and frame t+1 warped onto t over the pixels kept. The
source's own error (flow and interpolation are not perfect, real video has
noise) is the floor: an output as steady as its source scores a ratio of 1.

Both videos are streamed side by side; the pairs are measured on a pool of
threads, one per core (OpenCV and numpy release the GIL), while the next
frames decode, so only a few frames of each and a few thumbnails (for the
contact sheet) are held at a time. The results are those of a sequential run:
each pair is measured on its own. Before any of that, the frame counts are
compared (io/probe.py: the index, or the packets counted), so that mismatched
inputs fail at once.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, SettingsError
from ..io.reader import VideoInfo, open_video
from ..progress import NoProgress, Progress, stop_unfinished
from . import METRICS_FLOWS
from .flow import FlowEstimator, squared_norm, valid_mask, warp

# Flow at the full compared size: a coarser flow raises the source's own error and
# flatters the ratio (classic on the astronaut sample: 2.36x at 720p, 1.80x at 360p).
FLOWS = METRICS_FLOWS  # DIS presets --flow offers
FLOW_PRESET = FLOWS[0]  # medium, the default; the stabiliser uses "fast" at about a quarter of the size
AHEAD = 2  # pairs queued per thread: enough to keep every core busy while frames decode
MAX_SHORT_SIDE = 720  # bigger videos are compared at this size
THUMB_WIDTH = 320  # px, contact-sheet thumbnails


@dataclass(frozen=True)
class PairError:
    """Warp error of the frame pair (frame, frame + 1)."""

    frame: int
    source: float | None  # None when no pixel could be compared (e.g. a scene cut)
    output: float | None
    compared: float  # fraction of pixels kept by the occlusion mask


@dataclass(frozen=True)
class Sample:
    """One row of the contact sheet: RGB thumbnails of frame t, and where the
    output changed from t to t+1 more than the motion explains (0-255 RMS per
    pixel, occluded pixels -1)."""

    frame: int
    source: np.ndarray
    output: np.ndarray
    residual: np.ndarray


@dataclass(frozen=True)
class WarpReport:
    source: Path
    output: Path
    size: tuple[int, int]  # (width, height) the frames were compared at
    output_fit: str  # how the output frames were brought to that size
    flow: str
    pairs: tuple[PairError, ...]
    samples: tuple[Sample, ...] = field(default=(), repr=False)

    @property
    def frames(self) -> int:
        return len(self.pairs) + 1

    @property
    def source_error(self) -> float:
        return _mean(p.source for p in self.pairs)

    @property
    def output_error(self) -> float:
        return _mean(p.output for p in self.pairs)

    @property
    def ratio(self) -> float | None:
        """output / source warp error; None when the source has none to compare with."""
        source, output = self.source_error, self.output_error
        if not source > 1e-12 or math.isnan(output):
            return None
        return output / source

    def as_json(self) -> dict:
        return {
            "source": str(self.source),
            "output": str(self.output),
            "frames": self.frames,
            "size": list(self.size),
            "output_fit": self.output_fit,
            "flow": self.flow,
            "warp_error": {
                "source": _number(self.source_error),
                "output": _number(self.output_error),
                "ratio": _number(self.ratio),
            },
            "per_frame": [
                {"frame": p.frame, "source": p.source, "output": p.output, "compared": round(p.compared, 4)}
                for p in self.pairs
            ],
        }

    def summary(self) -> str:
        """A few plain lines for people."""
        ratio = f"{self.ratio:.2f}x the source's" if self.ratio is not None else "n/a (the source has no warp error)"
        compared = _mean(p.compared for p in self.pairs)
        lines = [
            f"source  {self.source}: warp error {_fmt(self.source_error)}",
            f"output  {self.output}: warp error {_fmt(self.output_error)} ({self.output_fit})",
            f"ratio   {ratio}",
            f"over {len(self.pairs)} frame pairs at {self.size[0]}x{self.size[1]}, "
            f"{compared:.0%} of pixels compared ({self.flow}); mean squared RGB difference, 0-1 scale",
        ]
        worst = max((p for p in self.pairs if p.output is not None), key=lambda p: p.output, default=None)
        if worst is not None:
            lines.append(
                f"worst   frames {worst.frame}-{worst.frame + 1}: output {_fmt(worst.output)}, source {_fmt(worst.source)}"
            )
        return "\n".join(lines)


def measure(
    source: str | Path, output: str | Path, progress: Progress = NoProgress(), samples: int = 0,
    flow: str = FLOW_PRESET, threads: int | None = None,
) -> WarpReport:
    """Warp error of `output` (one frame per source frame) against `source`'s motion.
    `samples` > 0 also keeps that many evenly spread thumbnail rows for a contact sheet.
    flow: a DIS preset of FLOWS; threads: optical flows computed at once (default: one per core)."""
    source, output = Path(source), Path(output)
    if flow not in FLOWS:
        raise SettingsError(f"--flow must be one of {', '.join(FLOWS)}, got {flow!r}")
    check_frame_counts(source, output)
    threads = threads or available_cores()
    local = threading.local()  # one DIS per thread: an estimator is not safe to share

    def flow_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not hasattr(local, "flow"):
            local.flow = FlowEstimator(flow)
        return local.flow(a, b)

    # DIS runs on one core, so the pair's two flows (and the next pairs') go to a pool of
    # `threads`; the rest of a pair, OpenCV calls that use every core themselves, to one
    # thread, so that only one pair's full-size float arrays are in the caches at a time.
    with (open_video(source) as src, open_video(output) as out,
          ThreadPoolExecutor(threads) as flows, ThreadPoolExecutor(1) as rest):
        size = _compare_size(src.info)
        fit, how = output_fitter(src.info, out.info, output)
        to_size = _resizer(src.info, size)
        pairs: list[PairError] = []
        kept = _Thumbnails(samples)
        pending: deque[tuple[int, tuple, Future]] = deque()

        def collect() -> None:  # the oldest pair, in order
            index, previous, future = pending.popleft()
            pair, output_sq, keep = future.result()
            pairs.append(pair)
            kept.offer(index, previous[0], previous[2], output_sq, keep)
            progress.advance(1)

        progress.start(f"{source.name} vs {output.name}", src.info.frame_count)
        try:
            previous = None  # (source rgb, source gray, output rgb) of the frame before
            for index, (s, o) in enumerate(_zip_frames(src, out, source, output)):
                source_rgb = to_size(s.rgb)
                current = (source_rgb, cv2.cvtColor(source_rgb, cv2.COLOR_RGB2GRAY), to_size(fit(o.rgb)))
                if previous is None:
                    progress.advance(1)
                else:  # the pair (index - 1, index)
                    forward = flows.submit(flow_of, previous[1], current[1])
                    backward = flows.submit(flow_of, current[1], previous[1])
                    done = rest.submit(_pair, previous, current, forward, backward, index - 1)
                    pending.append((index - 1, previous, done))
                    if len(pending) > AHEAD * threads:
                        collect()
                previous = current
            while pending:
                collect()
        except BaseException:
            stop_unfinished(progress)  # the bar shows how far it got
            raise
        finally:
            for _, _, future in pending:
                future.cancel()
        progress.stop()
    if not pairs:
        raise InputError(f"{source}: one frame only; warp error needs at least two")
    return WarpReport(source, output, size, how, str(FlowEstimator(flow)), tuple(pairs), kept.pick())


def check_frame_counts(source: Path, output: Path) -> None:
    """Fail at once when the frame counts differ, by the index or the packets
    (estimates are not trusted to refuse: the frame-by-frame check stays)."""
    from ..io.probe import frame_count

    src, out = frame_count(source), frame_count(output)
    if src.exact and out.exact and src.frames != out.frames:
        raise InputError(
            f"{output}: {out.frames} frames, but {source} has {src.frames}; "
            "metrics needs one output frame per source frame"
        )


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pair(a: tuple, b: tuple, forward: Future, backward: Future, index: int) -> tuple[PairError, np.ndarray, np.ndarray]:
    """Warp error of source and output between frames a = t and b = t + 1, given the flows
    a -> b and b -> a (being computed); also the output's per-pixel squared error and the
    mask of pixels compared."""
    (source_a, _, output_a), (source_b, _, output_b) = a, b
    forward, backward = forward.result(), backward.result()
    keep = valid_mask(forward, backward)
    source_sq = _squared(source_a, warp(source_b, forward))
    output_sq = _squared(output_a, warp(output_b, forward))
    if not keep.any():
        return PairError(index, None, None, 0.0), output_sq, keep
    pair = PairError(index, _masked_mean(source_sq, keep), _masked_mean(output_sq, keep), float(keep.mean()))
    return pair, output_sq, keep


def _squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel squared RGB difference, mean over channels, in 0-255 units."""
    return squared_norm(a.astype(np.float32) - b) / 3


def _masked_mean(squared: np.ndarray, keep: np.ndarray) -> float:
    return float(squared[keep].mean() / (255.0 * 255.0))


def _zip_frames(src, out, source: Path, output: Path):
    """Frames of both videos in step; a clear error if their counts differ."""
    src_frames, out_frames = src.frames(), out.frames()
    count = 0
    for s in src_frames:
        o = next(out_frames, None)
        if o is None:
            raise InputError(
                f"{output}: {count} frames, but {source} has more (about {src.info.frame_count}); "
                "metrics needs one output frame per source frame"
            )
        yield s, o
        count += 1
    if next(out_frames, None) is not None:
        raise InputError(
            f"{output}: more frames (about {out.info.frame_count}) than {source} ({count}); "
            "metrics needs one output frame per source frame"
        )


def output_fitter(
    src: VideoInfo, out: VideoInfo, output: Path
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """How to bring an output frame to the source's size, and what that does, in words.

    Same size: as is. One extra row/column (vidtoon pads odd sizes for 4:2:0
    encoders): cropped. Twice as wide (a --compare video, original | cartoon):
    its right half. Same shape, other size: resized. Anything else: InputError.
    """
    W, H = src.width, src.height
    w, h = out.width, out.height

    def padded(n: int, m: int) -> bool:
        return m == n or m == n + n % 2

    if (w, h) == (W, H):
        return (lambda rgb: rgb), "same size"
    if padded(W, w) and padded(H, h):
        return (lambda rgb: rgb[:H, :W]), f"cropped from {w}x{h} (encoder padding)"
    if padded(2 * W, w) and padded(H, h):
        return (lambda rgb: np.ascontiguousarray(rgb[:H, W : 2 * W])), "right half of a --compare video"
    if abs(w * H - W * h) <= 0.01 * W * h:
        shrink = w * h > W * H
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        return (lambda rgb: cv2.resize(rgb, (W, H), interpolation=interpolation)), f"resized from {w}x{h}"
    raise InputError(
        f"{output}: {w}x{h} does not match the source's {W}x{H} "
        "(neither the same picture resized nor a --compare video)"
    )


def _compare_size(info: VideoInfo) -> tuple[int, int]:
    scale = min(1.0, MAX_SHORT_SIDE / min(info.width, info.height))
    return max(1, round(info.width * scale)), max(1, round(info.height * scale))


def _resizer(info: VideoInfo, size: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    if size == (info.width, info.height):
        return lambda rgb: rgb
    return lambda rgb: cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class _Thumbnails:
    """Keeps about `rows` evenly spread frames of a stream of unknown length:
    every stride-th frame, halving the kept ones and doubling the stride when
    there are more than 2 * rows."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.stride = 1
        self.kept: list[Sample] = []

    def offer(self, index: int, source: np.ndarray, output: np.ndarray, output_sq: np.ndarray, keep: np.ndarray) -> None:
        if self.rows <= 0 or index % self.stride:
            return
        height, width = source.shape[:2]
        size = (min(width, THUMB_WIDTH), max(1, round(height * min(width, THUMB_WIDTH) / width)))
        residual = np.where(keep, np.sqrt(output_sq), np.float32(-1)).astype(np.float32)
        self.kept.append(Sample(
            index,
            cv2.resize(source, size, interpolation=cv2.INTER_AREA),
            cv2.resize(output, size, interpolation=cv2.INTER_AREA),
            cv2.resize(residual, size, interpolation=cv2.INTER_NEAREST),
        ))
        if len(self.kept) > 2 * self.rows:
            self.kept = self.kept[::2]
            self.stride *= 2

    def pick(self) -> tuple[Sample, ...]:
        if not self.kept:
            return ()
        at = np.linspace(0, len(self.kept) - 1, min(self.rows, len(self.kept))).round().astype(int)
        return tuple(self.kept[i] for i in at)


def _mean(values) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")


def _number(value: float | None) -> float | None:
    """JSON has no NaN: None instead."""
    return None if value is None or math.isnan(value) else value


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.6f}"
