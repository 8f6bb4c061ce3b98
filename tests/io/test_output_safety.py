"""Nothing is lost on the output side: an interrupted or failed run leaves no
partial file and never harms an existing file it was asked to replace; the
output is never the input, however it is spelled or linked.

(test_cli.py covers the basics: SIGINT/SIGTERM leave no partial output, a
file-size limit gives exit 3, `-o INPUT` is refused.)
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults import VIDTOON, as_ordinary_user, assert_one_line, digest, frame_count, long_clip, run_cli, stderr_text

from vidtoon.cli import ExitStatus


def wait_for_part_file(folder, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while not any(p.name.endswith(".part") for p in folder.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "never started writing"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        (signal.SIGINT, ExitStatus.INTERRUPTED),
        (signal.SIGTERM, ExitStatus.TERMINATED),
        (signal.SIGHUP, ExitStatus.HANGUP),
    ],
)
def test_interrupted_overwrite_keeps_the_old_file(clip, tmp_path, sig, code):
    """-y over an existing output, then a signal mid-encode: the old file is still
    there, byte for byte, and no .part file is left."""
    source_path = long_clip(tmp_path / "in.mp4", 20, width=640, height=360)  # long enough to be mid-encode
    out = tmp_path / "cartoon.mp4"
    shutil.copyfile(clip("old.mp4", frames=5).path, out)
    old = digest(out)
    source = digest(source_path)
    proc = subprocess.Popen(
        [*VIDTOON, "cartoonize", str(source_path), "-o", str(out), "-y", "-q", "--backend", "classic"],
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),  # as from a terminal, even under nohup
    )
    wait_for_part_file(tmp_path, proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.mp4", "in.mp4", "old.mp4"]
    assert digest(out) == old and frame_count(out) == 5
    assert digest(source_path) == source


def test_failed_overwrite_keeps_the_old_file(clip, tmp_path):
    """A write failure (file-size limit: EFBIG mid-encode) with -y: exit 3, the old file intact."""
    c = clip(width=320, height=240, frames=60)
    out = tmp_path / "cartoon.mp4"
    out.write_bytes(b"the old cartoon")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = run_cli("cartoonize", c.path, "-o", out, "-y", "-q", preexec_fn=limit)
    assert proc.returncode == ExitStatus.WRITE_FAILED, stderr_text(proc)
    assert "cartoon.mp4: writing failed" in assert_one_line(proc, "error:")
    assert out.read_bytes() == b"the old cartoon"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.mp4", "in.mp4"]


def test_full_disk_on_a_small_filesystem(clip, tmp_path):
    """A real full disk: a 64 KiB tmpfs, mounted in a private user and mount
    namespace (no root needed where unprivileged user namespaces are allowed).
    The run fails with exit 3 and ENOSPC in the message; an old file there survives."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1) to mount a small tmpfs")
    c = clip(width=320, height=240, frames=60)
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        'mount -t tmpfs -o size=64k tmpfs "$1" || exit 99\n'
        'printf "the old cartoon" > "$1/cartoon.mp4"\n'
        '"$2" -m vidtoon cartoonize "$3" -o "$1/cartoon.mp4" -y -q; code=$?\n'
        'echo "left: $(ls -A "$1" | tr "\\n" " ")" >&2; echo "old: $(cat "$1/cartoon.mp4")" >&2\n'
        "exit $code\n"
    )
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(disk), sys.executable, str(c.path)],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode == 99 or "unshare failed" in proc.stderr or "Operation not permitted" in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {proc.stderr.strip()[-200:]}")
    error, left, old = proc.stderr.splitlines()
    assert proc.returncode == ExitStatus.WRITE_FAILED, proc.stderr
    assert error.startswith("error:") and "cartoon.mp4: writing failed (No space left on device)" in error
    assert left.split() == ["left:", "cartoon.mp4"]  # no .part file
    assert old == "old: the old cartoon"


@pytest.mark.parametrize("overwrite", [[], ["-y"]])
def test_symlink_to_the_input_is_refused(clip, tmp_path, overwrite):
    c = clip(frames=4)
    link = tmp_path / "cartoon.mp4"
    link.symlink_to(c.path)
    before = digest(c.path)
    proc = run_cli("cartoonize", c.path, "-o", link, *overwrite)
    assert proc.returncode == ExitStatus.BAD_INPUT
    assert "cartoon.mp4: is the input file" in assert_one_line(proc, "error:")
    assert link.is_symlink() and os.readlink(link) == str(c.path)
    assert digest(c.path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.mp4", "in.mp4"]


@pytest.mark.parametrize("overwrite", [[], ["-y"]])
def test_hard_link_to_the_input_is_refused(clip, tmp_path, overwrite):
    c = clip(frames=4)
    link = tmp_path / "cartoon.mp4"
    os.link(c.path, link)
    before = digest(c.path)
    proc = run_cli("cartoonize", c.path, "-o", link, *overwrite)
    assert proc.returncode == ExitStatus.BAD_INPUT
    assert "is the input file" in assert_one_line(proc, "error:")
    assert digest(c.path) == before and os.stat(c.path).st_nlink == 2


def test_input_reached_through_a_symlinked_folder_is_refused_as_output(clip, tmp_path):
    c = clip(frames=4)
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "sub").mkdir()
    before = digest(c.path)
    for spelling in (alias / "in.mp4", tmp_path / "sub" / ".." / "in.mp4"):
        proc = run_cli("cartoonize", c.path, "-o", spelling, "-y")
        assert proc.returncode == ExitStatus.BAD_INPUT
        assert "is the input file" in assert_one_line(proc, "error:")
    proc = run_cli("cartoonize", "in.mp4", "-o", "./in.mp4", "-y", cwd=tmp_path)
    assert proc.returncode == ExitStatus.BAD_INPUT
    assert digest(c.path) == before


def test_output_folder_without_write_permission(clip, tmp_path):
    c = clip(frames=4)
    locked = tmp_path / "locked"
    locked.mkdir()
    try:
        ordinary = as_ordinary_user()
    except OSError as e:
        pytest.skip(f"running as root and {e}")
    locked.chmod(0o555)
    try:
        proc = run_cli("cartoonize", c.path, "-o", locked / "cartoon.mp4", **ordinary)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == ExitStatus.WRITE_FAILED, stderr_text(proc)
    assert "cartoon.mp4: cannot be written (Permission denied)" in assert_one_line(proc, "error:")
    assert list(locked.iterdir()) == []


def test_dangling_symlink_output_is_replaced_not_followed(clip, tmp_path):
    """With -y, an output name that is a symlink is replaced by the new file; the
    file it pointed at (here: nothing, somewhere else) is never created or written."""
    c = clip(frames=4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "cartoon.mp4"
    link.symlink_to(elsewhere / "target.mp4")
    proc = run_cli("cartoonize", c.path, "-o", link, "-y", "-q")
    assert proc.returncode == 0, stderr_text(proc)
    assert not link.is_symlink() and frame_count(link) == 4
    assert list(elsewhere.iterdir()) == []


# ---- issue 16: files, signals at the commit, broken streams ---------------------------------------------

# Runs the CLI with a hook in the commit: SIGTERM or SIGINT to itself right after the
# rename (the last instant the issue saw exit 143 with a complete output); -y, so that
# the rename is os.replace.
SIGNAL_AT_COMMIT = """
import os, signal, sys
sig = getattr(signal, sys.argv.pop(1))
real = os.replace
def replace(src, dst):
    real(src, dst)
    os.kill(os.getpid(), sig)
os.replace = replace
from vidtoon.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("command", ["cartoonize", "image"])
def test_a_signal_after_the_commit_exits_0_with_the_output(clip, tmp_path, sig, command):
    """The exit code says what is on disk: the output was complete when the signal
    came, so the run exits 0 (the video commits on the encode thread, the image on
    the main one)."""
    c = clip(frames=6)
    out = tmp_path / ("cartoon.mp4" if command == "cartoonize" else "cartoon.png")
    out.write_bytes(b"the old cartoon")
    proc = subprocess.run([sys.executable, "-c", SIGNAL_AT_COMMIT, sig, command, c.path, "-o", out, "-y"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == ExitStatus.SUCCESS, proc.stderr
    assert "it was complete when the signal came" in proc.stderr.splitlines()[-1]
    assert out.read_bytes() != b"the old cartoon" and not any(p.name.endswith(".part") for p in tmp_path.iterdir())
    if command == "cartoonize":
        assert frame_count(out) == 6


def test_an_output_that_appears_during_the_run_is_not_replaced(clip, tmp_path):
    """Two runs without -y on one name: the second to finish refuses (exit 2) and
    keeps the first one's file. The other run is a backend that writes the output
    while this run works, so the timing is exact."""
    from vidtoon.config import Job, Recipe
    from vidtoon.errors import SettingsError
    from vidtoon.pipeline import run

    c = clip(frames=6)
    out = tmp_path / "cartoon.mp4"

    class OtherRun:
        name, summary, batch_size = "other", "", 2

        def __call__(self, batch):
            if not out.exists():
                out.write_bytes(b"the other run's cartoon")
            return batch

        def reset(self):
            pass

    with pytest.raises(SettingsError, match="already exists .it appeared while this run worked"):
        run(Job(c.path, out), Recipe(), backend=OtherRun())
    assert out.read_bytes() == b"the other run's cartoon"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.mp4", "in.mp4"]
    out.unlink()
    run(Job(c.path, out, overwrite=True), Recipe(), backend=OtherRun())  # -y: replaced, as asked
    assert frame_count(out) == 6


@pytest.mark.parametrize("target", ["fifo", "/dev/null"])
def test_overwrite_onto_a_fifo_or_device_is_refused(clip, tmp_path, target):
    c = clip(frames=2)
    path = tmp_path / "out.mp4"
    if target == "fifo":
        os.mkfifo(path)
    else:
        path = Path(target)
    proc = run_cli("cartoonize", c.path, "-o", path, "-y", timeout=60)
    assert proc.returncode == ExitStatus.BAD_INPUT
    assert "is not a regular file" in assert_one_line(proc, "error:")
    assert stat.S_ISFIFO(os.lstat(path).st_mode) if target == "fifo" else stat.S_ISCHR(os.lstat(path).st_mode)


def test_output_names_of_255_bytes_work(clip, tmp_path):
    c = clip(frames=2)
    for name in ("v" * 251 + ".mp4", "é" * 125 + ".mp4"):  # 255 and 254 bytes
        proc = run_cli("cartoonize", c.path, "-o", tmp_path / name, "-q")
        assert proc.returncode == ExitStatus.SUCCESS, stderr_text(proc)
        assert frame_count(tmp_path / name) == 2
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


def test_read_only_filesystem_gives_exit_3_for_images_and_plots(clip, tmp_path):
    """A real read-only mount (a tmpfs remounted read-only, in a private user and
    mount namespace): `image` and `metrics --plot/--sheet` fail with exit 3 and one
    line naming EROFS; the cleanup's own failure never masks it."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1) to mount a read-only tmpfs")
    c = clip(frames=4)
    disk = tmp_path / "ro"
    disk.mkdir()
    script = (
        'mount -t tmpfs -o size=64k tmpfs "$1" && mount -o remount,ro "$1" || exit 99\n'
        '"$2" -m vidtoon image "$3" -o "$1/x.png" -q; echo "image $?" >&2\n'
        '"$2" -m vidtoon metrics "$3" "$3" --plot "$1/p.png" -q >/dev/null; echo "plot $?" >&2\n'
        '"$2" -m vidtoon metrics "$3" "$3" --sheet "$1/s.png" -q >/dev/null; echo "sheet $?" >&2\n'
    )
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(disk), sys.executable, str(c.path)],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode == 99 or "unshare failed" in proc.stderr or "Operation not permitted" in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {proc.stderr.strip()[-200:]}")
    lines = proc.stderr.splitlines()
    assert len(lines) == 6, proc.stderr
    pairs = zip(lines[::2], lines[1::2], strict=True)
    for (error, code), name, command in zip(pairs, ("x", "p", "s"), ("image", "plot", "sheet"), strict=True):
        assert error.startswith("error:") and f"{name}.png: cannot be written (Read-only file system)" in error
        assert code == f"{command} {ExitStatus.WRITE_FAILED}"


def test_stderr_on_a_full_disk_does_not_stop_an_encode(clip, tmp_path):
    c = clip(frames=6)
    out = tmp_path / "cartoon.mp4"
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*VIDTOON, "cartoonize", c.path, "-o", out], stderr=full, stdout=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == ExitStatus.SUCCESS and frame_count(out) == 6


def test_info_into_a_closed_pipe_ends_quietly(clip):
    """`vidtoon info IN | head -c1`, the reader gone before the first line: no
    traceback, no message, exit 141 (as 128 + SIGPIPE, like other tools)."""
    c = clip(frames=2)
    read, write = os.pipe()
    os.close(read)  # closed before vidtoon writes: every write fails, whatever the timing
    try:
        proc = subprocess.run([*VIDTOON, "info", c.path], stdout=write, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write)
    assert proc.returncode == ExitStatus.BROKEN_PIPE and proc.stderr == b""


def test_info_onto_a_full_disk_is_a_write_failure(clip):
    c = clip(frames=2)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*VIDTOON, "info", c.path], stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == ExitStatus.WRITE_FAILED
    assert "stdout: cannot be written (No space left on device)" in assert_one_line(proc, "error:")
