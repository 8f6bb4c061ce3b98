"""The declared version floors are the ones CI installs (.ci/constraints-min.txt, run by
.ci/run in a venv of its own), and the loading code works across the declared range."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNTESTED_FLOOR = {"torch"}  # older CPU wheels are not on PyPI; see .ci/constraints-min.txt


def floors() -> dict[str, str]:
    """name -> lowest version allowed, for the dependencies and the diffusion extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["diffusion"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", requirement.strip())
        assert match, f"{requirement!r}: give every runtime requirement a floor (name>=X)"
        found[normalize(match[1])] = match[2]
    return found


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {normalize(name): version for name, version in (line.split("==") for line in lines if line)}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_minimum_constraints_pin_every_floor():
    minimum = pins(ROOT / ".ci" / "constraints-min.txt")
    for name, floor in floors().items():
        assert name in minimum, f"{name} has a floor ({floor}) that .ci/constraints-min.txt does not install"
        if name in UNTESTED_FLOOR:
            continue
        wanted = floor.split(".")  # "4.9" is pinned as 4.9.0.80, its first release
        assert minimum[name].split(".")[: len(wanted)] == wanted, f"{name}: floor {floor}, pinned {minimum[name]}"
    run = (ROOT / ".ci" / "run").read_text()
    assert "-c .ci/constraints-min.txt" in run and "pytest -q -p no:cacheprovider tests/backends" in run


@pytest.mark.parametrize(("version", "keyword"), [("4.40.0", "torch_dtype"), ("4.46.3", "torch_dtype"),
                                                  ("4.55.4", "torch_dtype"), ("4.56.0", "dtype"), ("5.24.0", "dtype")])
def test_the_text_encoders_dtype_keyword_follows_transformers(monkeypatch, version, keyword):
    """transformers before 4.56 has only torch_dtype: dtype= reached CLIPTextModel's
    constructor there ('Object of type dtype is not JSON serializable', or an unexpected keyword)."""
    transformers = pytest.importorskip("transformers")
    from vidtoon.backends.pix2pix import models

    monkeypatch.setattr(transformers, "__version__", version)
    assert models._dtype_keyword() == keyword
