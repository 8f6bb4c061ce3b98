"""benchmarks/gpu.py's option rows (--options) and compile rows, on the tiny model in process:
each row's settings reach the backend, and its UNet samples per frame are counted."""

import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def smoke(**extra):
    return argparse.Namespace(**{**dict(smoke=True, frames=2, runs=1, naive_frames=1, side=64, steps=2, compile=False,
                                        options=False, batch_sizes=None), **extra})


@pytest.mark.parametrize(("settings", "samples"), [
    ({}, 2 * 3),  # the default: 2 steps (smoke) x 3 guidance branches
    (dict(image_guidance=1.0), 2 * 2),
    (dict(scheduler="lcm", steps=4, guidance=2.0, image_guidance=1.0), 4 * 2),
])
def test_an_option_row_runs_its_settings_and_counts_the_unet_samples(settings, samples):
    pytest.importorskip("diffusers")
    import gpu

    result = gpu.run_row(smoke(), dict(label="x", batch=2, settings=settings))
    assert result["fps"] > 0 and result["samples"] == samples


@pytest.mark.parametrize(("group", "samples", "calls"), [(1, (6 + 4 * 3) / 5, 2 + 4), (4, (6 + 4 * 3) / 5, 2 + 1 + 1)])
def test_the_reuse_rows_count_their_groups(group, samples, calls):
    """5 frames, 2 steps (smoke), reuse from step 1: both run frame 0 in full and the rest one
    step; N = 1 a frame a UNet call, N = 4 frames 1-3 in one call and frame 4 in another."""
    pytest.importorskip("diffusers")
    import gpu

    row = dict(label="x", batch=8, settings=dict(reuse_latents=0.5, reuse_batch=group))
    result = gpu.run_row(smoke(frames=5), row)
    assert result["samples"] == pytest.approx(samples) and result["calls"] == calls


def test_the_option_and_compile_calls_have_their_rows():
    pytest.importorskip("diffusers")
    import gpu

    options = gpu.rows(smoke(options=True), smoke=True)
    labels = [row["label"] for row in options]
    assert labels[0].endswith("the default") and any("--image-guidance 1" in label for label in labels)
    assert any(row.get("lora") and row["needs"] == "peft" for row in options)
    reuse = [row["settings"]["reuse_batch"] for row in options if row.get("settings", {}).get("reuse_latents")]
    assert reuse == [1, 4] and all(row["needs"] == "cv2" for row in options if "reuse_latents" in row.get("settings", {}))
    compiled = gpu.rows(smoke(compile=True), smoke=True)
    assert [row.get("settings", {}).get("compile") for row in compiled[:2]] == [True, True]
    assert compiled[1]["settings"]["cross_frame"]


@pytest.mark.parametrize(("way", "calls"), [("frames", 4 + 4 * 2), ("stream", 4 + 4 + 1)])
def test_the_webcam_rows_run_one_camera_frame_a_call(way, calls):
    """5 frames at the webcam's settings (4 steps, reuse from step 2, 2 guidance branches):
    frame 0 runs 4 steps, the rest 2, either way (4.8 samples a frame); frame by frame that is
    a UNet call a step, in the stream batch one a push for the frames in flight, then a drain."""
    pytest.importorskip("diffusers")
    pytest.importorskip("cv2")
    import gpu

    row = dict(label="x", batch=1, live=way, settings=dict(steps=4))
    result = gpu.run_row(smoke(frames=5), row)
    assert result["samples"] == pytest.approx((8 + 4 * 4) / 5) and result["calls"] == calls
    assert any(row.get("live") == way for row in gpu.rows(smoke(options=True), smoke=True))
