"""Fuzzing the reader with mutated container bytes (hypothesis, deterministic).

Small valid MP4, Matroska and WebM clips are damaged by flipped bits, cuts,
zeroed runs, inserted noise and spliced copies of their own bytes. Whatever
comes out, the contract holds: `open_video` plus iterating the frames either
works (frames of the announced size, a bounded number of them) or raises
InputError; never another exception, never a hang, never a file left open.
A few mutants also go through the CLI: exit 0 or 2, one line, nothing left.
Batch planning is fuzzed with IN_DIR trees and OUT_DIR symlinks built of the
names that once broke it.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from clips import make_clip
from faults import assert_one_line, digest, rename_codec, run_cli, stderr_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidtoon.errors import InputError
from vidtoon.io.reader import open_video

SUFFIXES = (".mp4", ".mkv", ".webm")
FRAMES = 8
MAX_FRAMES = 10_000  # a mutant announcing more than this is looping, not decoding
SECONDS = 30  # per example; a healthy one takes milliseconds


@cache
def base_clip(suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return make_clip(Path(folder) / f"base{suffix}", frames=FRAMES).path.read_bytes()


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int):
    """Raise Hang if the block runs too long; if it is stuck inside C code where no
    Python signal handler can run, faulthandler dumps the stacks and ends the run."""

    def expire(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(seconds * 4, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# A mutation is (kind, position as a fraction of the length, a size or byte, data).
positions = st.floats(min_value=0, max_value=1, allow_nan=False)
mutation = st.one_of(
    st.tuples(st.just("flip"), positions, st.integers(0, 7), st.just(b"")),
    st.tuples(st.just("cut"), positions, st.just(0), st.just(b"")),
    st.tuples(st.just("zero"), positions, st.integers(1, 512), st.just(b"")),
    st.tuples(st.just("insert"), positions, st.just(0), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("splice"), positions, st.integers(1, 2048), st.binary(min_size=1, max_size=4)),
)


def mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, where, size, extra in mutations:
        if not out:
            break
        at = min(int(where * len(out)), len(out) - 1)
        if kind == "flip":
            out[at] ^= 1 << size
        elif kind == "cut":
            del out[at:]
        elif kind == "zero":
            out[at : at + size] = bytes(len(out[at : at + size]))
        elif kind == "insert":
            out[at:at] = extra
        else:  # splice: copy `size` bytes from elsewhere in the file over this spot
            source = (at + int.from_bytes(extra.ljust(4, b"\0"), "little")) % len(out)
            out[at : at + size] = out[source : source + size]
    return bytes(out)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def check_reader_contract(path: Path) -> str:
    """Open and decode `path`; return 'ok' or 'refused'. Anything else fails the test."""
    before = open_fds()
    try:
        with time_limit(SECONDS), open_video(path) as video:
            info = video.info
            count = 0
            for frame in video.frames():
                assert frame.rgb.shape == (info.height, info.width, 3) and frame.rgb.dtype == "uint8"
                count += 1
                assert count <= MAX_FRAMES
            assert all(w.startswith(f"{path}: ") for w in video.warnings)
        outcome = "ok"
    except InputError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        outcome = "refused"
    assert open_fds() == before  # no file left open, on either path
    return outcome


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="vidtoon-fuzz-") as folder:
        yield Path(folder)


@pytest.mark.parametrize("suffix", SUFFIXES)
@settings(
    max_examples=300,
    derandomize=True,  # the same examples on every run and every machine
    deadline=None,  # timing on shared CI is noise; time_limit() catches hangs
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_reader_contract_on_mutated_files(scratch, suffix, mutations):
    path = scratch / f"mutant{suffix}"
    path.write_bytes(mutate(base_clip(suffix), mutations))
    check_reader_contract(path)


def test_the_mutations_reach_both_outcomes(scratch):
    """The fuzzer is only worth something if its mutants are sometimes still
    decodable and sometimes not: check a fixed sample of each kind."""
    outcomes = set()
    for kind, size in [("flip", 3), ("cut", 0), ("zero", 64), ("splice", 512)]:
        for where in (0.02, 0.3, 0.6, 0.97):
            path = scratch / "sample.mp4"
            path.write_bytes(mutate(base_clip(".mp4"), [(kind, where, size, b"\x10")]))
            outcomes.add(check_reader_contract(path))
    assert outcomes == {"ok", "refused"}


def test_time_limit_catches_a_hang():
    import time

    with pytest.raises(Hang), time_limit(1):
        time.sleep(10)


def test_regression_stream_without_a_decoder(scratch):
    """Fuzzing found this: a damaged codec ID left a stream with no codec context,
    and the reader died with AttributeError."""
    source = scratch / "codec.mkv"
    source.write_bytes(base_clip(".mkv"))
    damaged = rename_codec(source, scratch / "codec-damaged.mkv", b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC")
    assert check_reader_contract(damaged) == "refused"


@settings(max_examples=6, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(suffix=st.sampled_from(SUFFIXES), mutations=st.lists(mutation, min_size=1, max_size=3))
def test_cli_contract_on_mutated_files(scratch, suffix, mutations):
    source = scratch / f"cli-mutant{suffix}"
    source.write_bytes(mutate(base_clip(suffix), mutations))
    out_dir = scratch / "out"
    out_dir.mkdir(exist_ok=True)
    before = digest(source)
    proc = run_cli("cartoonize", source, "-o", out_dir / "cartoon.mp4", "-q", "--backend", "classic")
    assert proc.returncode in (0, 2), stderr_text(proc)
    assert digest(source) == before
    left = sorted(os.listdir(out_dir))
    for name in left:
        os.unlink(out_dir / name)
    if proc.returncode == 2:
        assert_one_line(proc, "error:")
        assert left == []
    else:
        assert left == ["cartoon.mp4"]
        assert stderr_text(proc) == "" or assert_one_line(proc, "warning:")


# ---- batch planning on hostile trees -------------------------------------------------------------

# Folder and file names that have broken batches: the batch's own file names, and a symlink in OUT_DIR.
TREE_NAMES = ("a", "sub", "report.json", "report.html", "vidtoon-manifest.json", ".hidden")


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    clips=st.lists(st.lists(st.sampled_from(TREE_NAMES), max_size=2), min_size=1, max_size=5),
    links=st.lists(st.sampled_from(TREE_NAMES[:5]), max_size=2),
)
def test_batch_planning_never_writes_outside_out_dir_or_over_its_own_files(clips, links):
    """Whatever the IN_DIR tree and the symlinks already in OUT_DIR, every clip the batch
    would run writes inside OUT_DIR and not onto its manifest or report; the others fail with a reason."""
    from vidtoon.batch.manifest import Manifest
    from vidtoon.batch.plan import BATCH_FILES, clip_for, find_clips, plan

    with tempfile.TemporaryDirectory() as folder:
        root, out, elsewhere = Path(folder, "in"), Path(folder, "out"), Path(folder, "elsewhere")
        for i, parts in enumerate(clips):
            path = root.joinpath(*parts, f"c{i}.mp4")  # planning reads names only, not the videos
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        elsewhere.mkdir()
        out.mkdir()
        for name in links:
            if not out.joinpath(name).is_symlink():
                out.joinpath(name).symlink_to(elsewhere, target_is_directory=True)
        sources, _ = find_clips(root, out, recursive=True)
        jobs = [clip_for(root, out, source, None) for source in sources]
        results = {}
        todo = plan(jobs, out, Manifest.load(out), "fingerprint", False, results)
        assert {j.rel for j in todo} | set(results) == {j.rel for j in jobs}
        real_out = out.resolve()
        for job in todo:
            assert job.output.parent.resolve().is_relative_to(real_out), job
            assert job.output.relative_to(out).parts[0] not in BATCH_FILES, job
        assert all(r.status == "failed" and r.error for r in results.values())


# ---- issue 16: y4m headers, and encoder options and sizes -------------------------------------------

y4m_size = st.one_of(st.integers(0, 300_000).map(str), st.sampled_from(["", "-1", "64x", "4e4", "\xff"]))


@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=y4m_size, height=y4m_size, keep=st.booleans())
def test_reader_contract_on_y4m_headers(scratch, width, height, keep):
    """Whatever W and H a YUV4MPEG2 header gives, the reader decodes or refuses with
    the header's problem in words, never FFmpeg's 'Device or resource busy'."""
    fields = f"W{width} H{height}" if keep else f"W{width}"
    path = scratch / "mutant.y4m"
    path.write_bytes(f"YUV4MPEG2 {fields} F12:1 Ip A1:1 C420jpeg\nFRAME\n".encode("utf-8", "surrogateescape")
                     + bytes(64 * 48 * 3 // 2))
    if check_reader_contract(path) == "refused":
        with pytest.raises(InputError) as refused, open_video(path) as video:
            list(video.frames())
        assert "busy" not in str(refused.value), refused.value


codec_name = st.sampled_from(["libx264", "libx265", "libsvtav1", "libvpx-vp9", "mpeg4"])
preset = st.one_of(st.none(), st.sampled_from(["ultrafast", "placebo", "bogus", "-3", "-2", "13", "14", "8", "9", ""]))
side = st.sampled_from([2, 10, 24, 25, 26, 64, 8191, 8192, 16384, 16386])


@settings(max_examples=30, derandomize=True, deadline=None, database=None)
@given(codec=codec_name, preset=preset, width=side, height=side)
def test_encoder_options_and_sizes_are_checked_before_any_frame(tmp_path_factory, codec, preset, width, height):
    """Any codec, preset and size: the writer either opens its encoder (so the
    first frame cannot be refused) or raises SettingsError (exit 2) at once,
    within the time limit (SVT-AV1 at 24 px would hang at the end instead)."""
    from dataclasses import replace

    from vidtoon.config import EncodeSettings
    from vidtoon.errors import SettingsError
    from vidtoon.io.writer import VideoWriter

    if width * height > 35_651_584:  # the reader refuses these before any writer
        return
    folder = tmp_path_factory.mktemp("enc")
    source = folder / "in.mp4"
    source.write_bytes(base_clip(".mp4"))
    with open_video(source) as video:
        info = replace(video.info, width=width, height=height, audio_streams=0, subtitle_streams=0)
    suffix = ".avi" if codec == "mpeg4" else ".mkv"
    try:
        with time_limit(SECONDS):
            writer = VideoWriter(folder / f"out{suffix}", info, EncodeSettings(codec=codec, preset=preset))
            writer.abort()
    except SettingsError as e:
        assert "\n" not in str(e)
    assert sorted(p.name for p in folder.iterdir()) == ["in.mp4"]  # nothing left either way
