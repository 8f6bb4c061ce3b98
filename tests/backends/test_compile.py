"""--compile: the loop calls the torch.compile'd UNet, and cross-frame attention does not make
it recompile per timestep or per batch. Inductor's real compile of even the tiny UNet takes
about 70 s on this CPU (8 s from a warm cache), too slow for a test, so these trace with
TorchDynamo and run the captured graphs eagerly through a counting backend: the same graph
capture, guards and recompiles as on a GPU, without generating kernels."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import panning

from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.backends.pix2pix.backend import Pix2PixBackend, compile_unet, inductor_cache
from vidtoon.backends.pix2pix.models import load_components, locate

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

BATCH = np.stack([panning()(i, 64, 48) for i in range(4)])


class Graphs:
    """A torch.compile backend that counts the graphs TorchDynamo hands it and runs them as they are."""

    def __init__(self):
        self.count = 0

    def __call__(self, graph, example_inputs):
        self.count += 1
        return graph.forward


@pytest.fixture
def parts(tiny_model):  # its own: compiling wraps the UNet
    return load_components(locate(str(tiny_model)), torch.device("cpu"), torch.float32)


@pytest.fixture
def graphs(monkeypatch, tmp_path):
    torch._dynamo.reset()
    counter = Graphs()
    monkeypatch.setattr(Pix2PixBackend, "compile_backend", counter)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "kernels"))
    yield counter
    torch._dynamo.reset()


@pytest.mark.parametrize("cross_frame", [False, True])
def test_the_loop_runs_the_compiled_unet_and_it_compiles_once(parts, graphs, tmp_path, cross_frame):
    settings = Pix2PixSettings(steps=3, cross_frame=cross_frame)
    eager = Pix2PixBackend(parts, settings, batch_size=2)(BATCH)
    backend = Pix2PixBackend(parts, Pix2PixSettings(steps=3, cross_frame=cross_frame, compile=True), batch_size=2)
    assert isinstance(backend.unet, torch._dynamo.eval_frame.OptimizedModule) and backend.unet._orig_mod is parts.unet
    assert "UNet compiled: the first batch (and each new frame size) waits for the compile" in backend.summary
    assert str(tmp_path / "kernels") in backend.summary
    first = backend(BATCH[:2])
    after_first = graphs.count
    assert after_first >= 1  # the compiled UNet ran
    second = backend(BATCH[2:])  # the same shapes, three more timesteps, another batch
    assert graphs.count == after_first  # no recompile: not per timestep, not per batch
    if not cross_frame:
        assert after_first == 1  # the whole UNet in one graph
    assert np.array_equal(np.concatenate([first, second]), eager)


def test_the_kernel_cache_is_under_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "placeholder")  # so that the test's change is undone
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert inductor_cache() == tmp_path / "vidtoon" / "inductor"
    import os

    compile_unet(torch.nn.Linear(2, 2), backend=Graphs())
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "vidtoon" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    compile_unet(torch.nn.Linear(2, 2), backend=Graphs())
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")  # one already set is kept
