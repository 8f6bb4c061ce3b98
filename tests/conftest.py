import signal
import sys
from pathlib import Path

import pytest

# Started in the background (nohup, `cmd &` in a script, some CI agents), a process inherits
# SIGINT ignored, and so would every vidtoon the tests start, and the Ctrl-C tests would see
# nothing. A handler here resets to the default in the children (exec does that to handled signals).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# nohup also ignores SIGHUP, and vidtoon keeps ignoring it then (as it should), so the
# hang-up tests' vidtoon processes would never see theirs: the default, inherited through exec.
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

sys.path.insert(0, str(Path(__file__).parent / "helpers"))  # clips.py, faults.py, ...: shared by every folder

from clips import make_clip  # noqa: E402


@pytest.fixture
def clip(tmp_path):
    """A factory: clip(name, **options) writes a generated clip into tmp_path."""

    def make(name: str = "in.mp4", **options):
        return make_clip(tmp_path / name, **options)

    return make


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random InstructPix2Pix model folder (vidtoon.backends.pix2pix.testing), built once per session."""
    torch = pytest.importorskip("torch")  # without the diffusion extra, the tests that need a model skip
    pytest.importorskip("diffusers")
    from vidtoon.backends.pix2pix.testing import make_tiny_model

    # Tiny models gain nothing from threads, and OpenMP's spin-waiting makes a busy
    # shared CI machine 10-50x slower with them; subprocesses get OMP_NUM_THREADS=1.
    torch.set_num_threads(1)
    return make_tiny_model(tmp_path_factory.mktemp("tiny-ip2p"))


@pytest.fixture(autouse=True)
def _no_quiet_environment_leaks():
    """The CLI's main() quietens the libraries through environment variables
    (vidtoon/cli/quiet.py); tests that call main() in-process must not hand them
    on to later tests' subprocesses (a --traceback run would then be quiet too)."""
    import os

    from vidtoon.cli.quiet import _ENVIRONMENT

    before = {name: os.environ.get(name) for name in _ENVIRONMENT}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
