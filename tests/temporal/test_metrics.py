"""`vidtoon metrics`: warp error against the source's motion, on generated clips."""

import itertools
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from clips import make_clip, panning, picture, read_video

from vidtoon.cli import ExitStatus
from vidtoon.config import Job, Recipe
from vidtoon.errors import InputError
from vidtoon.pipeline import run
from vidtoon.temporal.metrics import _Thumbnails, measure

VIDTOON = [sys.executable, "-m", "vidtoon"]


def run_cli(*args):
    return subprocess.run([*VIDTOON, *map(str, args)], capture_output=True, text=True, timeout=120)


def write(path, frames, **options):
    """Encode RGB frames (libx264 at its default quality, no audio)."""
    height, width = frames[0].shape[:2]
    return make_clip(path, width=width, height=height, frames=len(frames), audio=(),
                     draw=lambda i, w, h: frames[i], **options).path


@pytest.fixture(scope="module")
def pan(tmp_path_factory):
    """A small panning clip with a moving ball, and its decoded frames."""
    path = make_clip(tmp_path_factory.mktemp("pan") / "pan.mp4", width=160, height=120, frames=16,
                     fps=24, draw=panning(seed=3)).path
    return path, read_video(path)[2]


def test_static_clip_scores_near_zero(tmp_path):
    still = write(tmp_path / "still.mp4", [picture(0, 160, 120)] * 8)
    cartoon = tmp_path / "cartoon.mp4"
    run(Job(still, cartoon), Recipe(backend="classic"))
    report = measure(still, cartoon)
    assert report.frames == 8 and len(report.pairs) == 7
    # RMS well under one level (measured: 5e-6 for the first pair, then down to 3e-7): the
    # still cartoon's crisp borders settle over the first frames as the steady stage carries
    # the last cartoon along a near-zero flow
    assert report.source_error < 1e-6 and report.output_error < 5e-6
    assert min(p.compared for p in report.pairs) > 0.95  # nothing moves: little is masked


def test_injected_flicker_scores_much_higher(pan, tmp_path):
    path, frames = pan
    gains = np.random.default_rng(0).uniform(0.85, 1.15, len(frames))
    flicker = [np.clip(f * g, 0, 255).astype(np.uint8) for f, g in zip(frames, gains, strict=True)]
    steady = measure(path, write(tmp_path / "steady.mp4", frames))  # re-encoded, nothing else
    flickering = measure(path, write(tmp_path / "flicker.mp4", flicker))
    assert steady.ratio < 1.5
    assert flickering.ratio > 10 * steady.ratio
    # the per-frame values see it too: every pair with a gain change scores above the source
    assert all(p.output > 2 * p.source for p, (a, b) in zip(flickering.pairs, itertools.pairwise(gains), strict=True) if abs(a - b) > 0.05)


def test_identical_videos_give_ratio_one(pan):
    path, _ = pan
    report = measure(path, path)
    assert report.ratio == 1.0
    assert all(p.source == p.output for p in report.pairs)


def test_json_report_shape(pan):
    path, frames = pan
    proc = run_cli("metrics", path, path, "--json", "-q")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"source", "output", "frames", "size", "output_fit", "flow", "warp_error", "per_frame"}
    assert report["frames"] == len(frames) and report["size"] == [160, 120]
    assert report["warp_error"]["ratio"] == 1.0
    per_frame = report["per_frame"]
    assert [p["frame"] for p in per_frame] == list(range(len(frames) - 1))
    assert all(set(p) == {"frame", "source", "output", "compared"} and 0 < p["compared"] <= 1 for p in per_frame)
    mean = np.mean([p["source"] for p in per_frame])
    assert report["warp_error"]["source"] == pytest.approx(mean)


def test_text_report_plot_and_sheet(pan, tmp_path):
    path, _ = pan
    plot, sheet = tmp_path / "plot.png", tmp_path / "sheet.jpg"
    proc = run_cli("metrics", path, path, "--plot", plot, "--sheet", sheet)
    assert proc.returncode == 0, proc.stderr
    assert "ratio   1.00x" in proc.stdout and "warp error" in proc.stdout
    assert f"wrote {plot}" in proc.stderr
    image = cv2.imread(str(plot))
    assert image is not None and image.shape == (480, 960, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # lines and text, not a blank page
    contact = cv2.imread(str(sheet))
    assert contact is not None and contact.shape[1] > 3 * 160 and contact.shape[0] > 6 * 120
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png", "sheet.jpg"]  # no temporary files
    # an existing image is kept unless -y
    before = plot.read_bytes()
    refused = run_cli("metrics", path, path, "--plot", plot, "-q")
    assert refused.returncode == ExitStatus.BAD_INPUT and "--overwrite" in refused.stderr
    assert plot.read_bytes() == before
    assert run_cli("metrics", path, path, "--plot", plot, "-q", "-y").returncode == 0


def test_sheet_rows_spread_over_a_stream_of_unknown_length():
    frame, keep = np.zeros((12, 16, 3), np.uint8), np.ones((12, 16), bool)
    thumbs = _Thumbnails(rows=6)
    for index in range(100):
        thumbs.offer(index, frame, frame, keep.astype(np.float32), keep)
    picked = [s.frame for s in thumbs.pick()]
    assert len(picked) == 6 and picked[0] == 0 and picked[-1] >= 90
    assert all(b - a >= 8 for a, b in itertools.pairwise(picked))
    few = _Thumbnails(rows=6)
    for index in range(3):
        few.offer(index, frame, frame, keep.astype(np.float32), keep)
    assert [s.frame for s in few.pick()] == [0, 1, 2]


def test_compare_padded_and_resized_outputs_are_fitted(pan, tmp_path):
    path, frames = pan
    plain, compare = tmp_path / "plain.mp4", tmp_path / "compare.mp4"
    run(Job(path, plain), Recipe(backend="classic"))
    run(Job(path, compare), Recipe(backend="classic", compare=True))
    a, b = measure(path, plain), measure(path, compare)
    assert a.output_fit == "same size" and b.output_fit == "right half of a --compare video"
    assert b.ratio == pytest.approx(a.ratio, rel=0.15)
    bigger = measure(path, write(tmp_path / "big.mp4", [cv2.resize(f, (320, 240)) for f in frames]))
    assert bigger.output_fit == "resized from 320x240" and bigger.ratio < 1.5
    odd = make_clip(tmp_path / "odd.mkv", width=65, height=49, frames=4).path  # mpeg4 keeps odd sizes
    padded = tmp_path / "padded.mp4"  # libx264 pads to 66x50
    run(Job(odd, padded), Recipe(backend="classic"))
    assert measure(odd, padded).output_fit == "cropped from 66x50 (encoder padding)"


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda s, t: [t / "missing.mp4", s], "no such file"),
        (lambda s, t: [s, write(t / "short.mp4", [picture(i, 160, 120) for i in range(5)])], "one output frame per source frame"),
        (lambda s, t: [write(t / "short.mp4", [picture(i, 160, 120) for i in range(5)]), s], "one output frame per source frame"),
        (lambda s, t: [s, make_clip(t / "square.mp4", width=120, height=120, frames=16).path], "does not match"),
        (lambda s, t: [write(t / "one.mp4", [picture(0, 160, 120)]), write(t / "one_b.mp4", [picture(0, 160, 120)])], "one frame only"),
        (lambda s, t: [s, s, "--plot", t / "plot.gif"], "unknown image type"),
        (lambda s, t: [s, s, "--sheet", t / "nodir" / "s.png"], "no such directory"),
        (lambda s, t: [s, s, "--plot", t / "same.png", "--sheet", t / "same.png"], "both --plot and --sheet"),
    ],
)
def test_bad_input_is_one_line_exit_2(pan, tmp_path, make_args, message):
    proc = run_cli("metrics", *make_args(pan[0], tmp_path))
    assert proc.returncode == ExitStatus.BAD_INPUT, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*part"))


def test_help():
    proc = run_cli("metrics", "--help")
    assert proc.returncode == 0 and "usage: vidtoon metrics" in proc.stdout and "--sheet" in proc.stdout


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # counted from the index, and from the packets
def test_mismatched_frame_counts_fail_before_any_decoding(pan, tmp_path, monkeypatch, suffix):
    import vidtoon.temporal.metrics as metrics

    path, frames = pan
    short = write(tmp_path / ("short" + suffix), frames[:10])
    monkeypatch.setattr(metrics, "open_video", lambda *a: pytest.fail("decoding started"))
    with pytest.raises(InputError, match=rf"short{suffix}: 10 frames, but .*pan.mp4 has 16; metrics needs one output frame"):
        measure(path, short)


def test_threads_and_flows(pan):
    """Pairs measured on several threads are the sequential run's, to the bit; --flow fast is
    another (coarser) flow, said in the report."""
    path, frames = pan
    cartoon = [np.clip(f.astype(int) // 32 * 32 + 16, 0, 255).astype(np.uint8) for f in frames]
    out = write(path.with_name("posterized.mp4"), cartoon)
    one, four = measure(path, out, threads=1), measure(path, out, threads=4)
    assert one.pairs == four.pairs and one.flow == "DIS medium, full size"
    fast = measure(path, out, flow="fast")
    assert fast.flow == "DIS fast, full size" and fast.pairs != one.pairs
    assert fast.ratio == pytest.approx(one.ratio, rel=0.5)  # the same verdict, roughly
    proc = run_cli("metrics", path, out, "--flow", "fast", "--json", "-q")
    assert proc.returncode == 0 and json.loads(proc.stdout)["flow"] == "DIS fast, full size"
    proc = run_cli("metrics", path, out, "--flow", "slow")
    assert proc.returncode == ExitStatus.BAD_INPUT and "invalid choice: 'slow'" in proc.stderr
