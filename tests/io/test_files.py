"""io/files.py, the one file-safety module every writer uses: temporary name
beside the target, rename only when complete, cleanup that never hides the
real error, output-path checks, WxH parsing."""

from pathlib import Path

import numpy as np
import pytest

from vidtoon.errors import OutputError, SettingsError
from vidtoon.io import files
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
