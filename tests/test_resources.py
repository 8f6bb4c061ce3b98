"""Nothing outlives a run: no open files, threads or child processes after
`vidtoon.cartoonize` returns or raises, whatever went wrong. Memory does not
grow with the video's length, and huge frames stay within a bounded batch.
"""

from __future__ import annotations

import os
import resource

import psutil
import pytest
from clips import noise
from faults import faststart, flat_clip, long_clip, run_cli_peak, still_image, truncate

import vidtoon
from vidtoon import pipeline
from vidtoon.config import Job, Recipe
from vidtoon.errors import InputError, OutputError, SettingsError


def snapshot() -> dict:
    me = psutil.Process()
    return {
        "files": sorted(f.path for f in me.open_files()),
        "fds": sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else me.num_fds(),
        "threads": me.num_threads(),
        "children": [c.pid for c in me.children(recursive=True)],
    }


class Failing:
    """A backend that fails after `after` batches, with `error`."""

    name = "failing"
    summary = ""
    batch_size = 8

    def __init__(self, error: BaseException, after: int = 1) -> None:
        self.error, self.after = error, after

    def __call__(self, batch):
        if self.after == 0:
            raise self.error
        self.after -= 1
        return batch

    def reset(self):
        pass


def with_file_size_limit(limit: int, action):
    """Run `action` with writes past `limit` bytes failing (EFBIG), like a full disk.
    Python ignores SIGXFSZ, so the write fails instead of killing the process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        return action()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def cases(tmp_path, clip):
    """(name, action, expected exception or None): one per way a run can end."""
    good = clip(frames=12).path
    big = clip("big.mp4", width=320, height=240, frames=40).path
    random_bytes = tmp_path / "noise.mp4"
    random_bytes.write_bytes(noise(8192))
    still = still_image(tmp_path / "still.png")
    cut = truncate(faststart(good, tmp_path / "fs.mp4"), tmp_path / "cut.mp4", 0.5)
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"x")
    out = tmp_path / "out.mp4"

    def run(source, **kwargs):
        return lambda: vidtoon.cartoonize(source, out, overwrite=True, **kwargs)

    def run_with(backend):
        return lambda: pipeline.run(Job(good, out, overwrite=True), Recipe(batch_size=4), backend=backend)

    return [
        ("success", run(good), None),
        ("salvaged truncated file", run(cut), None),
        ("missing input", run(tmp_path / "missing.mp4"), InputError),
        ("random bytes", run(random_bytes), InputError),
        ("directory", run(tmp_path), InputError),
        ("still image", run(still), InputError),
        ("output exists", lambda: vidtoon.cartoonize(good, taken), SettingsError),
        ("codec refuses the size", run(good, codec="libx265"), SettingsError),
        ("disk full mid-encode", lambda: with_file_size_limit(20_000, run(big)), OutputError),
        ("backend crashes mid-run", run_with(Failing(RuntimeError("boom"))), RuntimeError),
        ("Ctrl-C mid-run", run_with(Failing(KeyboardInterrupt())), KeyboardInterrupt),
    ]


def test_nothing_is_left_open_after_any_run(clip, tmp_path):
    all_cases = cases(tmp_path, clip)
    # Warm up: OpenCV starts its process-wide worker pool the first time a frame is
    # big enough to split (so: the 320x240 clip); every later run reuses it.
    vidtoon.cartoonize(clip("warm.mp4", width=320, height=240, frames=8).path, tmp_path / "warm_out.mp4")
    for name, action, expected in all_cases:
        before = snapshot()
        if expected is None:
            action()
        else:
            with pytest.raises(expected):
                action()
        assert snapshot() == before, name
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")], name


def test_batches_are_capped_by_bytes(clip, tmp_path, monkeypatch):
    """Whatever --batch-size asks, a batch holds at most BATCH_BYTES of frames."""
    c = clip(frames=10)  # 64x48: 9216 bytes a frame
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 3 * 64 * 48 * 3)
    sizes = []

    class Recorder:
        name = "recorder"
        summary = ""
        batch_size = 8

        def __call__(self, batch):
            sizes.append(len(batch))
            return batch

        def reset(self):
            pass

    result = pipeline.run(Job(c.path, tmp_path / "o.mp4"), Recipe(batch_size=8), backend=Recorder())
    assert sizes == [3, 3, 3, 1] and result.frames == 10


@pytest.mark.slow
def test_memory_does_not_grow_with_length(tmp_path):
    """Peak RSS cartoonizing a 5-minute clip is that of a 30-second one (160x120,
    30 fps, with audio): frames stream through; nothing accumulates per frame.
    One leaked frame per frame would add 8100 x 57.6 kB = 466 MB here."""
    peaks = {}
    for seconds in (30, 300):
        source = long_clip(tmp_path / f"{seconds}s.mp4", seconds)
        proc, peaks[seconds] = run_cli_peak(
            "cartoonize", source, "-o", tmp_path / f"{seconds}s_cartoon.mp4", "-q", "--backend", "classic"
        )
        assert proc.returncode == 0, proc.stderr
        source.unlink()
    print(f"peak RSS: 30 s clip {peaks[30]} MiB, 5 min clip {peaks[300]} MiB")
    assert peaks[300] < peaks[30] + 32


@pytest.mark.slow
def test_8k_frames_stay_bounded(tmp_path):
    """7680x4320 frames (8K UHD, 99.5 MB each as RGB) work, two to a batch (the
    byte cap). The peak, about 2 GiB here, is mostly libx264's and the decoder's
    own frame buffers; the 4 GiB bound leaves room for other machines."""
    source = flat_clip(tmp_path / "8k.mp4", 7680, 4320, frames=4)
    proc, peak = run_cli_peak("cartoonize", source, "-o", tmp_path / "8k_cartoon.mp4", "--backend", "classic")
    assert proc.returncode == 0, proc.stderr
    assert "frames of 7680x4320: 2 per batch, to bound memory" in proc.stderr
    print(f"peak RSS 8K, 4 frames: {peak} MiB")
    assert peak < 4096
