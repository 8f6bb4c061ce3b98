"""The README's two promises: the sample command works, and CI runs the README's test command."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from clips import audio_packets, read_video

ROOT = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_ci_runs_the_readme_test_command():
    sample, tests = quick_start_commands()
    assert "pytest" in tests and tests.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    ci_lines = ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert tests in ci_lines


def test_readme_sample_command_works(tmp_path):
    sample, _ = quick_start_commands()
    assert sample.startswith("python3 -m venv .venv && . .venv/bin/activate && ")  # a stock python needs a venv
    command = shlex.split(sample.split("&&")[-1])
    assert command[:2] == ["vidtoon", "cartoonize"]
    source = ROOT / command[2]
    out = tmp_path / Path(command[command.index("-o") + 1]).name
    proc = subprocess.run(
        [sys.executable, "-m", "vidtoon", "cartoonize", str(source), "-o", str(out), "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    pts, _, frames, _ = read_video(out)
    assert len(frames) == len(read_video(source)[2]) == 120
    assert audio_packets(out) == audio_packets(source)


def test_every_test_the_fault_tables_name_exists():
    """docs/errors.md names the test that holds each promise: each must be there, so a rename cannot orphan a row."""
    text = ROOT.joinpath("docs", "errors.md").read_text()
    named = re.findall(r"(tests/[\w/]+\.py)::(\w+)", text)
    assert len(named) >= 10
    for path, name in named:
        source = ROOT.joinpath(path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name}"
