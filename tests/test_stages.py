"""The staged pipeline (vidtoon/stages.py): decode, compute and encode overlap on
three threads, yet frames keep their order and timestamps, memory stays bounded,
and an error in any stage stops them all: the same error on the calling thread,
no output file, no .part file, no thread left running.
"""

from __future__ import annotations

import _thread
import random
import threading
import time

import av
import numpy as np
import pytest
from faults import faststart, truncate

from vidtoon import pipeline
from vidtoon.config import Job, Recipe
from vidtoon.errors import InputError, OutputError
from vidtoon.io.reader import VideoReader
from vidtoon.io.writer import VideoWriter
from vidtoon.stages import staged


class Jittery:
    """An identity backend that takes a random few milliseconds per batch."""

    name = "jittery"
    summary = ""
    batch_size = 8

    def __init__(self, seed: int = 0) -> None:
        self.random = random.Random(seed)
        self.batches = 0

    def __call__(self, batch):
        time.sleep(self.random.uniform(0, 0.02))
        self.batches += 1
        return batch.copy()

    def reset(self):
        pass


class Failing(Jittery):
    """Fails with `error` on batch number `after` (0-based)."""

    def __init__(self, error: BaseException, after: int = 1) -> None:
        super().__init__()
        self.error, self.after = error, after

    def __call__(self, batch):
        if self.batches == self.after:
            raise self.error
        return super().__call__(batch)


def run(source, out, backend=None, batch_size=2):
    return pipeline.run(Job(source, out, overwrite=True), Recipe(batch_size=batch_size), backend=backend or Jittery())


def left_behind(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or p.name == "out.mp4")


def assert_clean_failure(action, expected, message, folder):
    """`action` raises `expected` with `message`, leaves no output and no thread."""
    before = set(threading.enumerate())
    with pytest.raises(expected) as caught:
        action()
    assert str(caught.value) == message
    assert set(threading.enumerate()) == before
    assert left_behind(folder) == []


# staged() on its own


def test_items_keep_their_order_through_jittery_stages():
    rng = random.Random(1)
    seen = []

    def produce():
        for i in range(200):
            time.sleep(rng.uniform(0, 0.001))
            yield i

    def compute(i):
        time.sleep(rng.uniform(0, 0.001))
        return i * 10

    def consume(x):
        time.sleep(rng.uniform(0, 0.001))
        seen.append(x)

    staged(produce, compute, consume, depth=2)
    assert seen == [i * 10 for i in range(200)]


@pytest.mark.parametrize("depth", [1, 3])
def test_a_fast_decoder_waits_for_a_slow_backend(depth):
    """Backpressure: items produced but not yet taken by compute never exceed the
    queue's depth plus the one the producer holds while it waits to hand it over."""
    produced, taken, most = 0, 0, 0
    lock = threading.Lock()

    def produce():
        nonlocal produced, most
        for i in range(40):
            with lock:
                produced += 1
                most = max(most, produced - taken)
            yield i

    def compute(i):
        nonlocal taken
        with lock:
            taken += 1
        time.sleep(0.002)
        return i

    staged(produce, compute, lambda _: None, depth=depth)
    assert taken == 40
    assert 1 <= most <= depth + 1


def test_a_slow_encoder_holds_back_compute():
    computed, written, most = 0, 0, 0
    lock = threading.Lock()

    def compute(i):
        nonlocal computed, most
        with lock:
            computed += 1
            most = max(most, computed - written)
        return i

    def consume(_):
        nonlocal written
        time.sleep(0.002)
        with lock:
            written += 1

    staged(lambda: iter(range(40)), compute, consume, depth=2)
    assert written == 40 and most <= 2 + 2  # the queue, the item being written, the one being handed over


@pytest.mark.parametrize("where", ["produce", "compute", "consume", "finish"])
def test_an_error_in_any_stage_stops_all_and_is_raised_here(where):
    before = set(threading.enumerate())
    closed = []

    def produce():
        try:
            for i in range(1000):
                if where == "produce" and i == 5:
                    raise ValueError("bad at 5")
                yield i
        finally:
            closed.append(threading.current_thread().name)  # the generator is closed on its own thread

    def compute(i):
        if where == "compute" and i == 5:
            raise ValueError("bad at 5")
        return i

    def consume(i):
        if where == "consume" and i == 5:
            raise ValueError("bad at 5")

    def finish():
        if where == "finish":
            raise ValueError("bad at 5")

    with pytest.raises(ValueError, match="^bad at 5$"):
        staged(produce, compute, consume, finish)
    assert set(threading.enumerate()) == before
    assert closed == ["vidtoon-decode"]


# the real pipeline


def test_frames_and_timestamps_survive_a_jittery_backend(clip, tmp_path):
    c = clip(frames=30, vfr=True)
    with av.open(str(c.path)) as container:
        sources = [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]
    out = tmp_path / "out.mp4"
    result = run(c.path, out, Jittery(seed=3), batch_size=3)
    assert result.frames == 30
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        seconds = [float(f.pts * f.time_base) for f in frames]
        outputs = [f.to_ndarray(format="rgb24").astype(int) for f in frames]
    assert seconds == pytest.approx([float(p * c.time_base) for p in c.pts], abs=1e-3)
    for i, picture in enumerate(outputs):  # each output is closest to its own source frame
        errors = [np.abs(picture - source).mean() for source in sources]
        assert int(np.argmin(errors)) == i


def test_decode_error_mid_file(clip, tmp_path, monkeypatch):
    c = clip(frames=20)
    frames = VideoReader.frames

    def breaks(self):
        for frame in frames(self):
            if frame.index == 7:
                raise InputError(f"{c.path}: decoding failed at frame 7 (test)")
            yield frame

    monkeypatch.setattr(VideoReader, "frames", breaks)
    assert_clean_failure(lambda: run(c.path, tmp_path / "out.mp4"), InputError,
                         f"{c.path}: decoding failed at frame 7 (test)", tmp_path)


def test_backend_error(clip, tmp_path):
    c = clip(frames=20)
    assert_clean_failure(lambda: run(c.path, tmp_path / "out.mp4", Failing(RuntimeError("boom"), after=2)),
                         RuntimeError, "boom", tmp_path)


def test_encoder_error(clip, tmp_path, monkeypatch):
    c = clip(frames=20)
    write = VideoWriter.write

    def fails(self, frame, planes=None):
        if self.frames_written == 9:
            raise OutputError(f"{self.path}: writing failed (No space left on device)")
        write(self, frame, planes)

    monkeypatch.setattr(VideoWriter, "write", fails)
    out = tmp_path / "out.mp4"
    assert_clean_failure(lambda: run(c.path, out), OutputError,
                         f"{out}: writing failed (No space left on device)", tmp_path)


def test_keyboard_interrupt_from_the_backend(clip, tmp_path):
    c = clip(frames=20)
    assert_clean_failure(lambda: run(c.path, tmp_path / "out.mp4", Failing(KeyboardInterrupt(), after=3)),
                         KeyboardInterrupt, "", tmp_path)


def test_ctrl_c_while_the_main_thread_waits(clip, tmp_path):
    """Ctrl-C arrives while the calling thread is blocked (here: on a slow backend)."""
    c = clip(frames=60)

    class Slow(Jittery):
        def __call__(self, batch):
            if self.batches == 2:
                threading.Timer(0.01, _thread.interrupt_main).start()
            time.sleep(0.05)
            return super().__call__(batch)

    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        run(c.path, tmp_path / "out.mp4", Slow())
    time.sleep(0.05)  # the Timer thread ends just after it fired
    assert set(threading.enumerate()) == before
    assert left_behind(tmp_path) == []


def test_salvage_warnings_still_reach_the_result(clip, tmp_path):
    cut = truncate(faststart(clip(frames=24).path, tmp_path / "fs.mp4"), tmp_path / "cut.mp4", 0.6)
    result = run(cut, tmp_path / "out.mp4")
    assert 0 < result.frames < 24
    assert any("salvaged" in w for w in result.warnings), result.warnings


def test_the_pipeline_never_decodes_far_ahead_of_the_backend(clip, tmp_path, monkeypatch):
    """Backpressure in the real pipeline: with a slow backend, frames decoded but not
    yet given to the backend stay within the queue's batches plus the one being built."""
    c = clip(frames=60)
    monkeypatch.setattr(pipeline, "QUEUE_DEPTH", 2)
    frames = VideoReader.frames
    decoded, processed, most = 0, 0, 0

    def counting(self):
        nonlocal decoded
        for frame in frames(self):
            decoded += 1
            yield frame

    class Slow(Jittery):
        def __call__(self, batch):
            nonlocal processed, most
            most = max(most, decoded - processed)
            time.sleep(0.01)
            processed += len(batch)
            return super().__call__(batch)

    monkeypatch.setattr(VideoReader, "frames", counting)
    result = run(c.path, tmp_path / "out.mp4", Slow(), batch_size=3)
    assert result.frames == 60
    # this batch, 2 queued, the one the decode thread waits to hand over, and one frame of the next
    assert most <= 3 * (1 + 2 + 1) + 1


def test_progress_counts_every_frame_once(clip, tmp_path):
    c = clip(frames=17)
    calls = []

    class Recorder:
        def note(self, message):
            pass

        def start(self, description, total):
            calls.append(("start", total, threading.current_thread().name))

        def advance(self, frames):
            calls.append(("advance", frames, threading.current_thread().name))

        def stop(self):
            calls.append(("stop", None, threading.current_thread().name))

    pipeline.run(Job(c.path, tmp_path / "out.mp4"), Recipe(batch_size=4), progress=Recorder(), backend=Jittery())
    assert calls[0][:2] == ("start", 17) and calls[-1][:2] == ("stop", None)
    assert [n for kind, n, _ in calls if kind == "advance"] == [4, 4, 4, 4, 1]
    assert {thread for *_, thread in calls} == {"MainThread"}  # progress is only ever touched here
