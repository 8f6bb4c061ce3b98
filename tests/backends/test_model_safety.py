"""Model safety (issue #8): only safetensors or torch's weights-only unpickler; no code
from a model folder ever runs; remote code is never trusted."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the diffusion extra: pip install -e '.[diffusion]'
pytest.importorskip("diffusers")

from clips import picture
from safetensors.torch import load_file

from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.backends.pix2pix.backend import Pix2PixBackend
from vidtoon.backends.pix2pix.models import check_pickles, load_components, locate
from vidtoon.cli import ExitStatus, main
from vidtoon.errors import BackendUnavailable

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


class RunsCode:
    """Unpickling this calls open(marker, "w"): the marker file appears if any code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def model(tmp_path, tiny_model):
    """A private copy of the tiny model folder, to tamper with."""
    return Path(shutil.copytree(tiny_model, tmp_path / "model"))


def unet_to_pickle(folder: Path, extra: dict | None = None) -> Path:
    """Replace the UNet's safetensors with a torch.save pickle of the same tensors (+ extra)."""
    safe = folder / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(safe)
    safe.unlink()
    path = folder / "unet" / "diffusion_pytorch_model.bin"
    torch.save({**state, **(extra or {})}, path)
    return path


def cartoon(folder: Path) -> np.ndarray:
    parts = load_components(locate(str(folder)), torch.device("cpu"), torch.float32)
    frames = np.stack([picture(i, 64, 48) for i in range(2)])
    return Pix2PixBackend(parts, Pix2PixSettings(steps=2))(frames)


def test_weights_only_pickles_load_and_match_safetensors(model, tiny_model):
    unet_to_pickle(model)
    assert not list((model / "unet").glob("*.safetensors"))
    np.testing.assert_array_equal(cartoon(model), cartoon(tiny_model))


def test_a_pickle_that_runs_code_is_refused_and_never_run(model, tmp_path, clip, capsys):
    marker = tmp_path / "code-ran"
    bad = unet_to_pickle(model, {"payload": RunsCode(marker)})
    # The file really is dangerous: the unrestricted unpickler runs it.
    torch.load(bad, weights_only=False)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(BackendUnavailable, match=r"refusing .*diffusion_pytorch_model\.bin: torch's weights-only "
                                                 r"loader rejects it \(Unsupported global: GLOBAL \S*open was not an "
                                                 r"allowed global by default\).*can run code.*use a safetensors copy"):
        load_components(model, torch.device("cpu"), torch.float32)
    code = main(["image", str(clip(frames=1).path), "-o", str(tmp_path / "o.png"), "--backend", "pix2pix",
                 "--model", str(model)])
    err = capsys.readouterr().err
    assert code == ExitStatus.BACKEND_UNAVAILABLE and "refusing" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "o.png").exists()


def test_every_pickle_in_the_folder_is_checked(model, tmp_path):
    """Even one the loader would not read (safetensors win): the folder is refused as a whole."""
    marker = tmp_path / "code-ran"
    torch.save({"x": RunsCode(marker)}, model / "vae" / "diffusion_pytorch_model.bin")
    with pytest.raises(BackendUnavailable, match="refusing"):
        check_pickles(model)
    assert not marker.exists()


def test_a_symlinked_part_folder_is_followed_and_its_pickle_refused(model, tmp_path, clip, capsys):
    """HF cache snapshots are links. A unet/ that is a link to a folder holding a code-running
    pickle is refused by vidtoon's own check (which once walked with rglob, not following
    linked folders), before diffusers sees it; the pickle never runs. A link loop ends."""
    marker = tmp_path / "code-ran"
    elsewhere = Path(shutil.move(model / "unet", tmp_path / "elsewhere"))
    (model / "unet").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(model, target_is_directory=True)
    unet_to_pickle(model, {"payload": RunsCode(marker)})  # written through the link
    assert (elsewhere / "diffusion_pytorch_model.bin").is_file()
    with pytest.raises(BackendUnavailable, match=r"refusing .*unet/diffusion_pytorch_model\.bin: torch's weights-only"):
        check_pickles(model)
    code = main(["image", str(clip(frames=1).path), "-o", str(tmp_path / "o.png"), "--backend", "pix2pix",
                 "--model", str(model)])
    err = capsys.readouterr().err
    assert code == ExitStatus.BACKEND_UNAVAILABLE and err.startswith("error: refusing") and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "o.png").exists()


def test_corrupt_pickles_are_clear_errors(model):
    path = model / "text_encoder" / "pytorch_model.bin"
    path.write_bytes(b"\x80\x02not a pickle at all")  # not weights: refused like any other
    with pytest.raises(BackendUnavailable, match=r"refusing .*pytorch_model\.bin: torch's weights-only loader "
                                                 r"rejects it \(Unsupported operand"):
        check_pickles(model)
    torch.save({"w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:600])  # a cut-off download
    with pytest.raises(BackendUnavailable, match=r"cannot read .*pytorch_model\.bin"):
        check_pickles(model)


def test_code_named_by_the_folder_is_never_imported(model, tmp_path):
    """model_index.json and the configs name classes; vidtoon loads its own known classes
    instead, so a module shipped in the folder never runs."""
    marker = tmp_path / "code-ran"
    for where in (model, model / "unet"):
        (where / "evil_unet.py").write_text(f"open({str(marker)!r}, 'w')\nclass EvilUNet: pass\n")
    index = json.loads((model / "model_index.json").read_text())
    index["unet"] = ["evil_unet", "EvilUNet"]
    (model / "model_index.json").write_text(json.dumps(index))
    config = json.loads((model / "unet" / "config.json").read_text())
    config["_class_name"] = "EvilUNet"
    (model / "unet" / "config.json").write_text(json.dumps(config))
    assert cartoon(model).shape == (2, 48, 64, 3)
    assert not marker.exists()


def test_the_scheduler_must_be_a_diffusers_scheduler(model):
    config_path = model / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config["_class_name"] = "os.system"
    config_path.write_text(json.dumps(config))
    with pytest.raises(BackendUnavailable, match="'os.system' is not a diffusers scheduler"):
        load_components(model, torch.device("cpu"), torch.float32)


def test_a_plain_stable_diffusion_unet_is_refused(model):
    config_path = model / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config["in_channels"] = 4
    config_path.write_text(json.dumps(config))
    state = load_file(model / "unet" / "diffusion_pytorch_model.safetensors")
    state["conv_in.weight"] = state["conv_in.weight"][:, :4].contiguous()
    from safetensors.torch import save_file

    save_file(state, model / "unet" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(BackendUnavailable, match="not an InstructPix2Pix model"):
        load_components(model, torch.device("cpu"), torch.float32)


def test_remote_code_is_never_trusted():
    """No vidtoon module passes trust_remote_code (it defaults to False everywhere)."""
    source = Path(__file__).resolve().parents[2] / "vidtoon"
    hits = [p.name for p in source.rglob("*.py") if re.search(r"trust_remote_code\s*=", p.read_text())]
    assert hits == []
