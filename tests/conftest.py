import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/clips.py

from clips import make_clip  # noqa: E402


@pytest.fixture
def clip(tmp_path):
    """A factory: clip(name, **options) writes a generated clip into tmp_path."""

    def make(name: str = "in.mp4", **options):
        return make_clip(tmp_path / name, **options)

    return make
