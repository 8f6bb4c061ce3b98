"""Where vidtoon offers what nobody has run, it says so: MPS in --torch-device's help and in
docs/pix2pix.md, and docs/pix2pix.md's account of what was verified with real weights and a GPU."""

from pathlib import Path

import pytest

from vidtoon.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("command", ["cartoonize", "image", "webcam"])
def test_the_torch_device_help_says_mps_is_untested(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "mps (Apple GPUs) is offered but untested" in " ".join(capsys.readouterr().out.split())


def test_the_pix2pix_page_says_what_was_and_was_not_verified():
    page = " ".join((DOCS / "pix2pix.md").read_text().split())
    assert "**MPS (Apple GPUs) is offered but untested**" in page
    section = page[page.index("## What was verified, and what was not"):]
    for said in ("**the real weights**: none can be downloaded here", "**any GPU**: nothing has run on a GPU",
                 "**MPS** (Apple GPUs): offered by `--torch-device mps` and `auto`, untested", "test_replica.py"):
        assert said in section, said
    assert "python3 benchmarks/gpu_wheelhouse.py run" in " ".join((DOCS / "benchmarks.md").read_text().split())
