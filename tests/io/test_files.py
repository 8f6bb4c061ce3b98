"""io/files.py, the one file-safety module every writer uses: temporary name
beside the target, rename only when complete, cleanup that never hides the
real error, output-path checks, WxH parsing."""

import errno
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from vidtoon.errors import OutputError, SettingsError
from vidtoon.io import commit, files
from vidtoon.io.images import write_image


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_output_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with files.atomic_output(target) as temp:
            temp.write_bytes(b"new, half")
            assert files.is_temporary(temp.name, target.name) and temp.parent == tmp_path
            raise RuntimeError("half way")
    assert target.read_bytes() == b"old" and names(tmp_path) == ["out.bin"]
    files.write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and names(tmp_path) == ["out.bin"]


def test_os_errors_name_the_target_and_cleanup_never_masks_them(tmp_path, monkeypatch):
    target = tmp_path / "missing-folder" / "out.png"
    with pytest.raises(OutputError, match=r"out.png: cannot be written \(No such file or directory\)"):
        files.write_atomic(target, b"x")

    def unlink_fails(self, missing_ok=False):  # e.g. EROFS on the folder
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(Path, "unlink", unlink_fails)
    with pytest.raises(KeyError, match="the real error"):
        with files.atomic_output(tmp_path / "x.png") as temp:
            temp.write_bytes(b"x")
            raise KeyError("the real error")


def test_temporary_names_are_fresh_and_only_their_own_are_removed(tmp_path):
    target = tmp_path / "clip.mp4"
    a, b = files.temporary_path(target), files.temporary_path(target)
    assert a != b and a.name.startswith(".clip.mp4.") and a.name.endswith(files.TEMP_SUFFIX)
    for path in (a, b, files.temporary_path(tmp_path / "other.mp4"), tmp_path / ".clip.mp4.notours.part"):
        path.write_bytes(b"")
    files.remove_temporaries(target)
    assert len(names(tmp_path)) == 2 and not any(files.is_temporary(n, "clip.mp4") for n in names(tmp_path))


@pytest.mark.parametrize(
    ("make", "overwrite", "message"),
    [
        (lambda t: t.mkdir(), True, "is a directory"),
        (lambda t: t.write_bytes(b""), False, "already exists; add --overwrite"),
        (lambda t: None, False, None),
        (lambda t: t.write_bytes(b""), True, None),
    ],
)
def test_check_output_path(tmp_path, make, overwrite, message):
    target = tmp_path / "o.mp4"
    make(target)
    if message is None:
        files.check_output_path(target, overwrite)
    else:
        with pytest.raises(SettingsError, match=message):
            files.check_output_path(target, overwrite)


def test_check_output_path_refuses_the_input_and_a_missing_folder(tmp_path):
    source = tmp_path / "in.mp4"
    source.write_bytes(b"x")
    with pytest.raises(SettingsError, match="is the input file"):
        files.check_output_path(source, True, source)
    with pytest.raises(SettingsError, match="no such directory for the image"):
        files.check_output_path(tmp_path / "nodir" / "o.png", False, what="image")


def test_parse_size():
    assert files.parse_size(" 1280 x720 ") == (1280, 720)
    for bad in ("12x", "x", "1280", "-1x2", "1.5x2"):
        with pytest.raises(SettingsError, match="--size must be WIDTHxHEIGHT"):
            files.parse_size(bad)


def test_images_are_written_atomically(tmp_path):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="cannot encode"):
        write_image(tmp_path / "a.nope", np.zeros((4, 4, 3), np.uint8))
    write_image(target, np.zeros((4, 4, 3), np.uint8))
    assert target.read_bytes()[:4] == b"\x89PNG" and names(tmp_path) == ["a.png"]


def test_the_batch_report_page_uses_a_fresh_temporary_name(tmp_path, monkeypatch):
    """Regression: report.html went through a fixed .report.html.tmp that a failure left behind."""
    from vidtoon.batch import report
    from vidtoon.batch.run import BatchOptions, BatchResult

    batch = BatchResult(results=[], seconds=1.0, report=tmp_path / "report.json")
    seen = []
    real = files.temporary_path
    monkeypatch.setattr(files, "temporary_path", lambda target: seen.append(real(target)) or seen[-1])
    report.write_html(batch, BatchOptions(tmp_path / "in", tmp_path))
    assert names(tmp_path) == ["report.html"] and files.is_temporary(seen[0].name, "report.html")


# ---- issue 16: long names, outputs that appear meanwhile, fsync, FIFOs, signals at the commit ----------


def test_names_near_the_limit_get_short_temporaries_that_are_still_theirs(tmp_path):
    """A 255-byte name gets a temporary of at most 255 bytes (not 270), recognised by
    the cleanup, and two long names that differ only at the end never share one."""
    long_a, long_b = "a" * 247 + "-one.png", "a" * 247 + "-two.png"  # 255 bytes each
    temp_a, temp_b = files.temporary_path(tmp_path / long_a), files.temporary_path(tmp_path / long_b)
    assert len(temp_a.name.encode()) <= 255 and files.is_temporary(temp_a.name, long_a)
    assert not files.is_temporary(temp_a.name, long_b) and not files.is_temporary(temp_b.name, long_a)
    files.write_atomic(tmp_path / long_a, b"x")
    temp_b.write_bytes(b"left by a killed run")
    files.remove_temporaries(tmp_path / long_b)
    assert names(tmp_path) == [long_a]
    short = files.temporary_path(tmp_path / "clip.mp4").name  # short names keep the plain form
    assert short.startswith(".clip.mp4.") and len(short) == len("clip.mp4") + 15
    multibyte = "é" * 120 + ".mp4"  # 244 bytes: cut on a character boundary
    temp = files.temporary_path(tmp_path / multibyte)
    assert len(temp.name.encode()) <= 255 and files.is_temporary(temp.name, multibyte)
    files.write_atomic(tmp_path / multibyte, b"y")


@pytest.mark.parametrize("fallback", ["renameat2", "link", "last look"])
def test_a_target_that_appears_meanwhile_is_kept_without_overwrite(tmp_path, monkeypatch, fallback):
    """Another run wrote the same name while this one worked: without overwrite the
    commit refuses (exit 2), keeps that file, and leaves no temporary file; with
    overwrite it replaces it. Each way the rename can refuse is tried."""
    if fallback != "renameat2":
        monkeypatch.setattr(commit, "_renameat2", lambda *a: (_ for _ in ()).throw(OSError(errno.EINVAL, "no flags")))
    if fallback == "last look":
        monkeypatch.setattr(commit.os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
    target = tmp_path / "out.png"
    with pytest.raises(SettingsError, match="out.png: already exists .it appeared while this run worked"):
        with files.atomic_output(target, overwrite=False) as temp:
            temp.write_bytes(b"ours")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs" and names(tmp_path) == ["out.png"]
    files.write_atomic(tmp_path / "new.png", b"ours", overwrite=False)  # nothing there: committed
    with files.atomic_output(target, overwrite=True) as temp:
        temp.write_bytes(b"ours")
    assert target.read_bytes() == b"ours" and names(tmp_path) == ["new.png", "out.png"]


def test_the_file_and_its_folder_are_flushed_to_disk_before_the_output_counts(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), [p.name for p in commit.committed()]))
        real(fd)

    monkeypatch.setattr(commit.os, "fsync", fsync)
    commit.clear_commits()
    files.write_atomic(tmp_path / "out.png", b"x")
    (temp, before), (folder, after) = synced
    assert files.is_temporary(Path(temp).name, "out.png") and before == []  # the data, before the rename
    assert folder == str(tmp_path) and after == ["out.png"]  # the rename itself, before it counts


def test_fifos_and_devices_are_refused_as_outputs_even_with_overwrite(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/null")):
        with pytest.raises(SettingsError, match="is not a regular file"):
            files.check_output_path(target, True)
    link = tmp_path / "link.mp4"  # a symbolic link to one is replaced, as links are, never followed
    link.symlink_to(fifo)
    files.check_output_path(link, True)


@pytest.mark.parametrize("when", ["before", "after"])
def test_committed_says_what_is_on_disk_whenever_a_signal_comes(tmp_path, monkeypatch, when):
    """SIGTERM just before or just after the rename: its handler (where the CLI
    decides the exit code) sees the output as committed exactly when it is there."""

    class Stopped(Exception):
        pass

    seen = []

    def handler(signum, frame):
        seen.append([p.name for p in commit.committed()])
        raise Stopped

    real = os.replace

    def replace(src, dst):
        if when == "before":
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, before the rename
        real(src, dst)
        if when == "after":
            os.kill(os.getpid(), signal.SIGTERM)

    target = tmp_path / "out.png"
    target.write_bytes(b"old")  # -y over an old file: it is there either way, ours only after
    old = signal.signal(signal.SIGTERM, handler)
    monkeypatch.setattr(commit.os, "replace", replace)
    commit.clear_commits()
    try:
        with pytest.raises(Stopped):
            files.write_atomic(target, b"new")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert target.read_bytes() == (b"new" if when == "after" else b"old")
    assert seen == [["out.png"] if when == "after" else []] and names(tmp_path) == ["out.png"]


def test_an_interrupted_progress_bar_shows_what_was_done():
    """Stopped by a failure or Ctrl-C, the bar ends at 12/30, not at a full 12/12;
    a finished run ends at the true count (the container's total is an estimate)."""
    import io

    from rich.console import Console

    from vidtoon.progress import BarProgress

    for complete, shown in ((False, "12/30"), (True, "12/12")):
        out = io.StringIO()
        bar = BarProgress(Console(file=out, width=120, force_terminal=False))
        bar.start("clip.mp4", 30)
        bar.advance(12)
        bar.stop(complete=complete)
        assert shown in out.getvalue().splitlines()[-1]


def test_the_pipeline_stops_the_bar_as_incomplete_when_it_fails(clip):
    from vidtoon.config import Job, Recipe
    from vidtoon.pipeline import run

    class Breaks:
        name, summary, batch_size = "breaks", "", 2

        def __call__(self, batch):
            raise RuntimeError("the backend broke")

        def reset(self):
            pass

    class Seen:
        stops = []

        def note(self, message): pass
        def start(self, description, total): pass
        def advance(self, frames): pass
        def stop(self, complete=True): self.stops.append(complete)

    c = clip(frames=4)
    with pytest.raises(RuntimeError, match="broke"):
        run(Job(c.path, c.path.with_name("out.mp4")), Recipe(), Seen(), backend=Breaks())
    assert Seen.stops == [False]


def test_a_progress_without_complete_still_gets_stop(clip):
    """A Progress written before stop(complete=...) (a caller's own, the batch's)
    is stopped the old way on a failure, so the real error is what is raised."""
    from vidtoon.config import Job, Recipe
    from vidtoon.pipeline import run

    class Breaks:
        name, summary, batch_size = "breaks", "", 2

        def __call__(self, batch):
            raise RuntimeError("the backend broke")

        def reset(self):
            pass

    class Old:
        stops = 0

        def note(self, message): pass
        def start(self, description, total): pass
        def advance(self, frames): pass
        def stop(self): Old.stops += 1

    c = clip(frames=4)
    with pytest.raises(RuntimeError, match="broke"):
        run(Job(c.path, c.path.with_name("out.mp4")), Recipe(), Old(), backend=Breaks())
    assert Old.stops == 1
