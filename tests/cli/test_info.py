"""`vidtoon info`: every stream, exact or estimated frame counts, VFR, colour, rotation, --json."""

import json
import subprocess
import sys

import pytest
from clips import CUES, make_clip

from vidtoon.cli import ExitStatus
from vidtoon.io import probe as probe_module
from vidtoon.io.probe import frame_count, probe
from vidtoon.io.reader import open_video


def info(*args):
    return subprocess.run([sys.executable, "-m", "vidtoon", "info", *map(str, args)], capture_output=True, text=True, timeout=60)


def test_text_report_names_every_stream(clip):
    c = clip("in.mkv", frames=12, audio=("aac", "libopus"), subtitles=CUES, subtitle_language="fra")
    proc = info(c.path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{c.path}: 64x48 h264, 12 fps constant, 12 frames, 2 audio, 1 subtitle"
    assert lines[1].startswith("  container Matroska / WebM, ")
    assert lines[2] == "  video #0: h264 (High), 64x48, yuv420p (8-bit), 12 fps constant, 12 frames (exact, packets counted)"
    assert lines[3].startswith("      colour: matrix unspecified, range ") and lines[3].endswith("rotation 0")
    assert lines[4] == "  audio #1: aac (LC), 2 channels (stereo), 48000 Hz"
    assert lines[5] == "  audio #2: opus, 2 channels (stereo), 48000 Hz"
    assert lines[6] == "  subtitles #3: subrip, text, language fra"


def test_mkv_frames_are_counted_not_estimated(clip):
    """The container's duration x rate says 121 for this 120-frame MKV (its audio runs a little
    longer); info counts."""
    c = clip("in.mkv", frames=120, fps=30)
    with open_video(c.path) as video:
        assert video.info.frame_count == 121  # the reader's quick estimate, for progress bars
    assert frame_count(c.path) == probe_module.FrameCount(120, "counted")
    assert "120 frames (exact, packets counted)" in info(c.path).stdout
    mp4 = clip("in.mp4", frames=120, fps=30, audio=())
    assert frame_count(mp4.path) == probe_module.FrameCount(120, "indexed")


def test_big_files_are_estimated_and_say_so(clip, monkeypatch):
    monkeypatch.setattr(probe_module, "COUNT_LIMIT", 0)
    c = clip("in.mkv", frames=120, fps=30)
    count = frame_count(c.path)
    assert (count.frames, count.how, count.exact) == (121, "estimated", False)
    assert str(count) == "about 121 frames (an estimate from duration x rate)"
    assert probe(c.path).video[0].rate.sampled


def test_variable_frame_rate_rotation_and_depth(clip):
    vfr = probe(clip("vfr.mkv", frames=14, vfr=True).path).video[0]
    # gaps of 1, 2 and 3 frames at 12 fps, in Matroska's milliseconds
    assert vfr.rate.variable and (vfr.rate.lowest, vfr.rate.highest) == pytest.approx((4.0, 12.0), rel=0.01)
    assert str(vfr.rate) == "12 fps variable (4-12)"
    turned = probe(clip("rot.mp4", frames=3, rotation=90).path).video[0]
    assert (turned.width, turned.height, turned.rotation) == (48, 64, 90)
    ten = probe(make_clip(clip("x.mp4").path.with_name("ten.mp4"), width=64, height=64, frames=3, codec="libx265",
                          pix_fmt="yuv420p10le").path).video[0]
    assert (ten.codec, ten.profile, ten.pix_fmt, ten.bit_depth) == ("hevc", "Main 10", "yuv420p10le", 10)


def test_json_for_scripts(clip):
    c = clip("in.mp4", frames=5, subtitles=CUES)
    proc = info(c.path, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"path", "container", "duration", "size", "bit_rate", "video", "audio", "subtitles", "other"}
    (video,) = data["video"]
    assert video["frames"] == {"count": 5, "exact": True, "how": "indexed"}
    assert video["rate"]["variable"] is False and video["cartoonized"] is True
    assert set(video["color"]) == {"space", "range", "primaries", "transfer"}
    (audio,) = data["audio"]
    assert (audio["codec"], audio["channels"], audio["layout"], audio["sample_rate"]) == ("aac", 2, "stereo", 48000)
    (subtitles,) = data["subtitles"]
    assert (subtitles["codec"], subtitles["kind"], subtitles["language"]) == ("mov_text", "text", "eng")


def test_help_has_a_description_and_bad_input_is_one_line():
    proc = info("--help")
    assert proc.returncode == 0 and "stream by stream" in proc.stdout and "--json" in proc.stdout
    proc = info("/nonexistent/clip.mp4")
    assert proc.returncode == ExitStatus.BAD_INPUT and proc.stderr.count("\n") == 1 and "no such file" in proc.stderr
