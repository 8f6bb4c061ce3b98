"""Bad and odd input through the real command line.

Refused input: exit 2, one `error:` line naming the file and the problem, no
traceback, nothing left in the output folder (no output, no .part file), and
the input's bytes unchanged. Damaged input that still holds frames is
salvaged: exit 0, the frames that decode, and one `warning:` line saying what
was lost. docs/errors.md has the table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import av
import pytest
from clips import noise, read_video
from faults import (
    as_ordinary_user,
    assert_one_line,
    assert_refused,
    audio_only,
    audio_packets_at,
    corrupt,
    digest,
    faststart,
    flat_clip,
    frame_count,
    rename_codec,
    run_cli,
    stderr_text,
    still_image,
    truncate,
    video_packets,
    with_cover_art,
    without_moov,
    zero_frames,
)

from vidtoon.cli import ExitStatus

CLASSIC = ("--backend", "classic")  # where a run succeeds: no torch import to see whether pix2pix could run


@pytest.fixture
def out_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return out


def refused(source, out_dir, message, **kwargs):
    """Run cartoonize on `source` and check the whole refusal contract."""
    before_hash = digest(source) if source.is_file() else None
    before = set(os.listdir(out_dir))
    proc = run_cli("cartoonize", source, "-o", out_dir / "cartoon.mp4", **kwargs)
    line = assert_refused(proc, source, message, out_dir, before)
    if before_hash is not None:
        assert digest(source) == before_hash  # the input is never written
    assert not [p for p in source.parent.iterdir() if p.name.endswith(".part")]
    return line


def salvaged(source, out_dir, message):
    """Run cartoonize on damaged `source`: it must succeed with one warning line;
    returns how many frames it says it salvaged (checked against the output) and the line."""
    before_hash = digest(source)
    out = out_dir / "cartoon.mp4"
    proc = run_cli("cartoonize", source, "-o", out, "-q", *CLASSIC)
    assert proc.returncode == ExitStatus.SUCCESS, stderr_text(proc)
    line = assert_one_line(proc, "warning:")
    assert source.name in line and message in line, line
    assert digest(source) == before_hash
    assert sorted(os.listdir(out_dir)) == ["cartoon.mp4"]
    count = int(re.search(r"salvaged (\d+)", line).group(1))
    assert frame_count(out) == count
    return count, line


# ---- refused: not a video, or nothing in it can be decoded ---------------------------------------


def test_empty_file(tmp_path, out_dir):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    refused(empty, out_dir, "the file is empty")


def test_random_bytes_named_mp4(tmp_path, out_dir):
    path = tmp_path / "noise.mp4"
    path.write_bytes(noise(64 * 1024))
    refused(path, out_dir, "not a readable video")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_mp4_with_index_at_the_end_is_refused(clip, tmp_path, out_dir, fraction):
    """The usual MP4 (PyAV's, FFmpeg's, most cameras') writes its index (moov)
    last, so any cut loses it and no frame can be located: refused, and the
    message says why."""
    source = clip(frames=30).path
    cut = truncate(source, tmp_path / f"cut{int(fraction * 100)}.mp4", fraction)
    refused(cut, out_dir, "index (the moov atom) is missing")


def test_mp4_whose_moov_was_never_written(clip, tmp_path, out_dir):
    source = clip(frames=30).path
    refused(without_moov(source, tmp_path / "recording.mp4"), out_dir, "moov atom")


def test_audio_only_file(clip, tmp_path, out_dir):
    song = audio_only(clip().path, tmp_path / "song.m4a")
    refused(song, out_dir, "no video stream (it holds audio)")


def test_audio_with_cover_art_is_not_a_video(tmp_path, out_dir):
    """An MP3's album cover is a one-picture 'video' stream; it must not be cartoonized as a video."""
    refused(with_cover_art(tmp_path / "song.mp3"), out_dir, "no video stream (it holds a cover picture, audio)")


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg"])
def test_still_image_is_refused(tmp_path, out_dir, name):
    refused(still_image(tmp_path / name), out_dir, "is a still image")


def test_image_sequence_pattern_is_refused_with_a_hint(tmp_path, out_dir):
    for i in range(3):
        still_image(tmp_path / f"frame_{i:03d}.png")
    line = refused(tmp_path / "frame_%03d.png", out_dir, "image sequences (%03d patterns) are not read")
    assert "ffmpeg -framerate" in line


def test_zero_frame_video(tmp_path, out_dir):
    refused(zero_frames(tmp_path / "empty-track.mkv"), out_dir, "the video stream has no frames")


def test_directory_where_a_file_is_expected(tmp_path, out_dir):
    folder = tmp_path / "clips.mp4"
    folder.mkdir()
    refused(folder, out_dir, "is a directory")


def test_fifo_is_refused_without_hanging(tmp_path, out_dir):
    """Opening a FIFO for reading blocks until a writer comes; vidtoon must not wait."""
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    refused(fifo, out_dir, "not a regular file", timeout=60)


def test_unreadable_file(clip, tmp_path, out_dir):
    source = clip(frames=4).path
    try:
        ordinary = as_ordinary_user()
    except OSError as e:
        pytest.skip(f"running as root and {e}")
    source.chmod(0)
    try:
        refused(source, out_dir, "cannot be read (Permission denied)", **ordinary)
    finally:
        source.chmod(0o644)


def test_frames_over_the_size_limit_are_refused(tmp_path, out_dir):
    """One pixel row wider than H.264's largest frame (8192x4352): refused from the
    headers, with the limit in the message."""
    huge = flat_clip(tmp_path / "huge.mp4", 8256, 4352, frames=1)
    refused(huge, out_dir, "frames of 8256x4352 are 35,930,112 pixels, over the 35,651,584 of 8192x4352")


def test_compare_over_the_size_limit_is_refused(tmp_path, out_dir):
    wide = flat_clip(tmp_path / "wide.mp4", 4800, 4000, frames=1)  # fine alone; twice as wide it is not
    before = set(os.listdir(out_dir))
    proc = run_cli("cartoonize", wide, "-o", out_dir / "c.mp4", "--compare")
    assert proc.returncode == ExitStatus.BAD_INPUT
    assert "--compare makes frames of 9600x4000" in assert_one_line(proc, "error:")
    assert set(os.listdir(out_dir)) == before


def test_unknown_video_codec(clip, tmp_path, out_dir):
    """A damaged codec ID leaves a stream FFmpeg has no decoder for (found by fuzzing:
    it was an AttributeError, exit 1)."""
    source = clip("in.mkv").path
    damaged = rename_codec(source, tmp_path / "codec.mkv", b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC")
    refused(damaged, out_dir, "codec FFmpeg does not know")


# ---- salvaged: damaged, but frames can be decoded --------------------------------------------------


def test_truncated_faststart_mp4_is_salvaged(clip, tmp_path, out_dir):
    """An MP4 with its index first (streamed or downloaded files) that is cut short:
    the frames before the cut are cartoonized, and the warning counts them."""
    source = faststart(clip(frames=30).path, tmp_path / "streamed.mp4")
    counts = []
    for fraction in (0.1, 0.5, 0.9):
        cut = truncate(source, tmp_path / f"part{int(fraction * 100)}.mp4", fraction)
        count, line = salvaged(cut, out_dir, "the file is cut short: salvaged")
        assert line.endswith(f"salvaged {count} of 30 frames")
        counts.append(count)
        for name in os.listdir(out_dir):
            os.unlink(out_dir / name)
    assert 0 < counts[0] < counts[1] < counts[2] < 30


def test_corrupt_packets_mid_stream_are_skipped(clip, tmp_path, out_dir):
    """Three video packets overwritten with noise in an MP4: the decoder refuses
    them, they are skipped and counted, every other frame is kept at its own time."""
    c = clip(frames=30)
    packets = video_packets(c.path)
    damaged = corrupt(c.path, tmp_path / "scratched.mp4", [packets[10], packets[11], packets[20]])
    count, _ = salvaged(damaged, out_dir, "skipped 3 damaged video packets: salvaged")
    assert 20 <= count < 30
    in_times = [round(float(p * c.time_base), 3) for p in c.pts]
    out_pts, out_tb, _, _ = read_video(out_dir / "cartoon.mp4")
    out_times = [round(float(p * out_tb), 3) for p in out_pts]
    assert set(out_times) <= set(in_times)  # no frame moved in time: gaps stay gaps
    assert out_times[-1] == in_times[-1]  # and decoding went on to the end


def test_broken_container_mid_stream_keeps_what_came_before(clip, tmp_path, out_dir):
    """Noise over block headers in a Matroska file: the demuxer loses its way and
    finds no more frames; the frames before the damage are kept, with a warning
    that compares where the video stops with the length the file declares."""
    c = clip("in.mkv", frames=30)
    packets = video_packets(c.path)
    damaged = corrupt(c.path, tmp_path / "broken.mkv", [packets[12]])
    count, _ = salvaged(damaged, out_dir, "but the file says it lasts 2.50 s: salvaged")
    assert 0 < count < 30


def test_damaged_audio_is_salvaged_not_a_write_failure(clip, tmp_path, out_dir):
    """Found by fuzzing: audio that fails to decode while being re-encoded
    (AAC into .webm) was reported as 'writing failed', exit 3."""
    c = clip(frames=24, fps=12)
    audio = audio_packets_at(c.path)  # MP4 packet offsets point at the payload itself
    damaged = corrupt(c.path, tmp_path / "hiss.mp4", [audio[5], audio[20]])
    out = out_dir / "cartoon.webm"
    proc = run_cli("cartoonize", damaged, "-o", out, "-q", *CLASSIC)
    assert proc.returncode == ExitStatus.SUCCESS, stderr_text(proc)
    assert "damaged audio packet" in assert_one_line(proc, "warning:")
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    assert frame_count(out) == 24


def test_unknown_audio_codec_is_left_out_with_a_warning(clip, tmp_path, out_dir):
    c = clip("in.mkv", frames=6)
    damaged = rename_codec(c.path, tmp_path / "mute.mkv", b"A_AAC", b"A_QQQ")
    out = out_dir / "cartoon.mp4"
    proc = run_cli("cartoonize", damaged, "-o", out, "-q", *CLASSIC)
    assert proc.returncode == ExitStatus.SUCCESS, stderr_text(proc)
    assert "audio stream 1 is in a codec FFmpeg does not know" in assert_one_line(proc, "warning:")
    with av.open(str(out)) as container:
        assert not container.streams.audio
    assert frame_count(out) == 6


# ---- odd but valid: these work -----------------------------------------------------------------


def test_one_by_one_pixel_video(clip, out_dir):
    c = clip("dot.mkv", width=1, height=1, frames=5, audio=())
    out = out_dir / "dot.mp4"
    proc = run_cli("cartoonize", c.path, "-o", out, "-q", *CLASSIC)
    assert proc.returncode == 0, stderr_text(proc)
    _, _, frames, _ = read_video(out)
    assert len(frames) == 5 and frames[0].shape == (2, 2, 3)  # padded for 4:2:0, nothing cropped


def test_paths_with_spaces(clip, tmp_path):
    folder = tmp_path / "my holiday clips"
    folder.mkdir()
    c = clip("in.mp4", frames=4)
    source = folder / "day one.mp4"
    source.write_bytes(c.path.read_bytes())
    out = folder / "day one (cartoon).mp4"
    proc = run_cli("cartoonize", source, "-o", out, "-q", *CLASSIC)
    assert proc.returncode == 0, stderr_text(proc)
    assert frame_count(out) == 4


def test_non_utf8_file_names_in_and_out(clip, tmp_path):
    """Linux names are bytes; b'caf\\xe9' (Latin-1) is not UTF-8. Input and output both work."""
    c = clip(frames=4)
    source = os.fsencode(tmp_path) + b"/caf\xe9.mp4"
    with open(source, "wb") as f:
        f.write(c.path.read_bytes())
    out = os.fsencode(tmp_path) + b"/caf\xe9 cartoon \xff.mkv"
    proc = run_cli("cartoonize", source, "-o", out, *CLASSIC)
    assert proc.returncode == 0, stderr_text(proc)
    assert b"caf\\xe9 cartoon \\xff.mkv" in proc.stderr  # the 'wrote' line shows the bytes, escaped
    assert os.path.exists(out) and frame_count(os.fsdecode(out)) == 4
    assert sorted(os.listdir(os.fsencode(tmp_path))) == [b"caf\xe9 cartoon \xff.mkv", b"caf\xe9.mp4", b"in.mp4"]


@pytest.mark.parametrize("env", [{}, {"LC_ALL": "C"}, {"PYTHONIOENCODING": "ascii"}])
def test_error_line_for_a_non_utf8_name(tmp_path, out_dir, env):
    """The one-line error names the file with its undecodable byte escaped, whatever the locale."""
    bad = os.fsencode(tmp_path) + b"/ni\xf1o.mp4"
    with open(bad, "wb") as f:
        f.write(noise(4096))
    proc = run_cli("cartoonize", bad, "-o", out_dir / "o.mp4", env={**os.environ, **env})
    assert proc.returncode == ExitStatus.BAD_INPUT
    line = assert_one_line(proc, "error:")
    assert "ni\\xf1o.mp4: not a readable video" in line
    assert os.listdir(out_dir) == []


def test_control_characters_in_names_stay_on_one_line(tmp_path, out_dir):
    """A newline or a terminal escape in a file name is shown escaped, never obeyed."""
    bad = tmp_path / "two\nlines\x1b[31m.mp4"
    bad.write_bytes(noise(4096))
    proc = run_cli("cartoonize", bad, "-o", out_dir / "o.mp4")
    assert proc.returncode == ExitStatus.BAD_INPUT
    line = assert_one_line(proc, "error:")
    assert "two\\nlines\\x1b[31m.mp4" in line and "\x1b" not in stderr_text(proc)


# ---- batch: an OUT_DIR that cannot be written ------------------------------------------------------


def _fsize_limit(size):
    """preexec_fn: writes past `size` bytes fail with EFBIG, as on a full disk (SIGXFSZ is ignored by Python)."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def _read_only(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    return out, as_ordinary_user()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_read_only, "ro/vidtoon-manifest.json: cannot be written (Permission denied)"),
        (lambda t: (_read_only(t)[0] / "new", as_ordinary_user()), "ro/new: cannot be created (Permission denied)"),
        (lambda t: (t / "a-file" / "out", {}), "a-file/out: cannot be created (Not a directory)"),
        (lambda t: (t / "full", {"preexec_fn": _fsize_limit(10)}), "full/vidtoon-manifest.json: cannot be written (File too large)"),
    ],
    ids=["read-only", "read-only-parent", "parent-is-a-file", "full-at-the-first-manifest-write"],
)
def test_batch_into_an_out_dir_that_cannot_be_written_exits_3_in_one_line(clip, tmp_path, make, message):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(clip(frames=2).path.read_bytes())
    (tmp_path / "a-file").write_text("x")
    try:
        out, kwargs = make(tmp_path)
    except OSError as e:  # as the unreadable-file test above
        pytest.skip(f"running as root and {e}")
    proc = run_cli("batch", tmp_path / "in", "-o", out, "-q", *CLASSIC, **kwargs)
    assert proc.returncode == ExitStatus.WRITE_FAILED, stderr_text(proc)
    line = assert_one_line(proc, "error:")
    assert line.endswith(message), line


# ---- issue 16: encoder options and sizes are checked before any work -----------------------------------


def encoder_refused(proc, out_dir, *words):
    """Exit 2, one error line holding `words`, no raw encoder line, nothing written."""
    assert proc.returncode == ExitStatus.BAD_INPUT, stderr_text(proc)
    line = assert_one_line(proc, "error:")
    assert all(w in line for w in words), line
    assert os.listdir(out_dir) == []
    return line


@pytest.mark.parametrize(("options", "words"), [
    (["--preset", "bogus"], ["--preset 'bogus'", "libx264 takes ultrafast, superfast", "placebo"]),
    (["--codec", "libsvtav1", "--preset", "14"], ["--preset '14'", "libsvtav1 takes -2 to 13"]),
    (["--codec", "libvpx-vp9", "--preset", "fast"], ["--preset 'fast'", "libvpx-vp9 takes -8 to 8"]),
])
def test_an_invalid_preset_is_bad_usage_naming_the_values(clip, out_dir, options, words):
    """Not a write failure (exit 3) with x264's own '[error]' line, as it was."""
    c = clip(frames=2)
    suffix = ".webm" if "libvpx-vp9" in options else ".mkv"
    encoder_refused(run_cli("cartoonize", c.path, "-o", out_dir / f"c{suffix}", *options, *CLASSIC), out_dir, *words)


def test_svtav1_refuses_strips_it_would_hang_on(clip, tmp_path, out_dir):
    """SVT-AV1 hangs for ever in its final flush on frames 24 px or less high
    (320x10, 30 frames): refused up front, naming codecs that take the size."""
    thin = flat_clip(tmp_path / "thin.mp4", 320, 10, frames=30)
    proc = run_cli("cartoonize", thin, "-o", out_dir / "c.mkv", "--codec", "libsvtav1", *CLASSIC, timeout=60)
    encoder_refused(proc, out_dir, "libsvtav1 needs frames at least 25x25, these are 320x10", "--codec libx264")


@pytest.mark.parametrize(("suffix", "options", "words"), [
    (".avi", ["--codec", "mpeg4"], ["mpeg4 takes frames at most 8191 px", "10000x10"]),
    (".mp4", ["--compare"], ["libx264 takes frames at most 16384 px", "20000x10", "--codec libvpx-vp9"]),
])
def test_sizes_the_encoder_refuses_are_bad_usage(tmp_path, out_dir, suffix, options, words):
    wide = flat_clip(tmp_path / "wide.mp4", 10000, 10, frames=2)
    encoder_refused(run_cli("cartoonize", wide, "-o", out_dir / f"c{suffix}", *options, *CLASSIC), out_dir, *words)


def test_svtav1_says_nothing_but_vidtoon_lines(clip, out_dir):
    """SVT-AV1 prints an 11-line banner per encoder; vidtoon keeps it off stderr:
    nothing with -q, and without it only vidtoon's three lines (backend, bar, wrote)."""
    c = clip(frames=4, width=64, height=48)
    quiet = run_cli("cartoonize", c.path, "-o", out_dir / "q.mkv", "--codec", "libsvtav1", "-q", *CLASSIC)
    assert quiet.returncode == ExitStatus.SUCCESS and quiet.stderr == b""
    loud = run_cli("cartoonize", c.path, "-o", out_dir / "l.mkv", "--codec", "libsvtav1", *CLASSIC)
    lines = stderr_text(loud).splitlines()
    assert [line.split()[0] for line in lines] == ["backend:", "in.mp4", "wrote"], lines
    raw = run_cli("--traceback", "cartoonize", c.path, "-o", out_dir / "r.mkv", "--codec", "libsvtav1", *CLASSIC)
    assert "Svt[info]" in stderr_text(raw)  # --traceback: the libraries' own messages, raw


def test_python_warnings_and_library_loggers_stay_off_stderr():
    """What quiet_libraries() catches, tried directly: a Python warning (torch's
    pickle notice is one) and a diffusers-style logger warning; without it both
    reach stderr, so the check can fail."""
    script = (
        "import logging, sys, warnings\n"
        "if sys.argv[1] == 'quiet':\n"
        "    from vidtoon.cli.quiet import LOG, quiet_libraries; quiet_libraries()\n"
        "warnings.warn('a library notice')\n"
        "logging.getLogger('diffusers.models').warning('unsafe serialization')\n"
        "if sys.argv[1] == 'quiet':\n    assert len(LOG) == 2, list(LOG)\n"
    )
    loud, quiet = (subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, timeout=60)
                   for how in ("loud", "quiet"))
    assert "a library notice" in loud.stderr and "unsafe serialization" in loud.stderr
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.parametrize("damaged_packet", [1, 2])
def test_one_salvaged_frame_is_said_in_the_singular(clip, tmp_path, out_dir, damaged_packet):
    """A Matroska file broken just after its first frame(s): 'salvaged 1 frame',
    not '1 frames' (and the plural for more)."""
    c = clip("in.mkv", frames=30)
    damaged = corrupt(c.path, tmp_path / "broken.mkv", [video_packets(c.path)[damaged_packet]])
    count, line = salvaged(damaged, out_dir, "salvaged")
    assert count == damaged_packet  # the frames before the damaged packet
    assert line.endswith("salvaged 1 frame" if count == 1 else "salvaged 2 frames"), line


@pytest.mark.parametrize(("size", "message"), [
    (b"W0 H48", "its YUV4MPEG2 header gives a frame size of 0x48"),
    (b"W100000 H100000", "frame size vidtoon does not take: 100000x100000 are 10,000,000,000 pixels"),
    (b"H48", "its YUV4MPEG2 header gives no frame size (W and H)"),
])
def test_a_y4m_header_with_a_bad_size_says_so(tmp_path, out_dir, size, message):
    """FFmpeg reports these as 'Device or resource busy'; the message gives the real cause."""
    bad = tmp_path / "bad.y4m"
    bad.write_bytes(b"YUV4MPEG2 " + size + b" F12:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(64 * 48 * 3 // 2))
    line = refused(bad, out_dir, message)
    assert "busy" not in line
