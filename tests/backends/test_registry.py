"""The backend registry: every backend is described by one spec, and everything
else (CLI options, recipes, auto, the Python API) is built from the specs, so a
new backend is its own module plus one name in REGISTRY."""

import dataclasses
import sys
import types

import numpy as np
import pytest
from clips import read_video

from vidtoon import backends
from vidtoon.backends import BackendSpec
from vidtoon.backends.classic import ClassicSettings
from vidtoon.cli import ExitStatus, build_parser, main, recipe_from_args
from vidtoon.config import Recipe, cli_fields, option
from vidtoon.errors import SettingsError


def test_every_registered_backend_has_a_spec_of_its_own_name():
    for name in backends.REGISTRY:
        spec = backends.spec(name)
        assert spec.name == name and dataclasses.is_dataclass(spec.settings)
        assert spec.settings.__dataclass_params__.frozen
        spec.settings()  # its defaults are valid
    assert backends.REGISTRY[-1] == "classic" and backends.spec("classic").available(ClassicSettings())[0]


def test_option_flags_are_unique_across_every_settings_class():
    flags = [flag.flag for cls in (Recipe, *(s.settings for s in backends.specs())) for _, flag in cli_fields(cls)]
    assert len(flags) == len(set(flags))


def test_a_recipe_holds_every_backends_settings_and_checks_them():
    recipe = Recipe()
    assert set(recipe.settings) == set(backends.REGISTRY)
    assert recipe.settings["classic"] == ClassicSettings()
    with pytest.raises(SettingsError, match="unknown backend 'nope'"):
        Recipe(backend="nope")
    with pytest.raises(SettingsError, match="settings for classic must be a ClassicSettings"):
        Recipe(settings={"classic": object()})
    with pytest.raises(ValueError, match="still 'auto'"):
        _ = Recipe().active


def test_python_api_options_go_to_the_backend_that_declares_them():
    recipe = Recipe.from_options(backend="pix2pix", levels=3, steps=5, stabilize=True, codec="libx265")
    assert recipe.settings["classic"].levels == 3 and recipe.settings["pix2pix"].steps == 5
    assert recipe.stabilize and recipe.encode.codec == "libx265"
    with pytest.raises(SettingsError, match="unknown option: colour"):
        Recipe.from_options(colour="red")


# ---- a third backend, added from outside: only its module and a registry entry ----------


@dataclasses.dataclass(frozen=True)
class InvertSettings:
    strength: int = option(255, "--invert-strength", "what the frames are subtracted from")


class Invert:
    name = "invert"
    summary = "subtracting from 255"
    batch_size = 4

    def __init__(self, settings: InvertSettings) -> None:
        self.strength = settings.strength

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return (self.strength - batch.astype(np.int16)).clip(0, 255).astype(np.uint8)

    def reset(self) -> None:
        pass


@pytest.fixture
def third_backend(monkeypatch):
    module = types.ModuleType("vidtoon.backends.invert")
    module.SPEC = BackendSpec(
        name="invert", help="inverts the frames", settings=InvertSettings,
        load=lambda settings, batch_size: Invert(settings), available=lambda settings: (False, "it is only a test"),
    )
    monkeypatch.setitem(sys.modules, "vidtoon.backends.invert", module)
    monkeypatch.setattr(backends, "REGISTRY", ("pix2pix", "invert", "classic"))


def test_a_third_backend_needs_only_its_spec_and_a_registry_entry(third_backend, clip, tmp_path, capsys):
    args = build_parser().parse_args(["cartoonize", "in.mp4", "-o", "o.mp4", "--backend", "invert", "--invert-strength", "200"])
    recipe = recipe_from_args(args)
    assert recipe.backend == "invert" and recipe.active == InvertSettings(200)
    assert "invert cannot run here, it is only a test" in backends.choose(Recipe())[1]  # auto tried it, in order
    c = clip(frames=3)
    out = tmp_path / "o.mp4"
    assert main(["cartoonize", str(c.path), "-o", str(out), "--backend", "invert", "--crf", "0"]) == ExitStatus.SUCCESS
    assert "backend: invert (as asked; subtracting from 255)" in capsys.readouterr().err
    source, cartoon = read_video(c.path)[2], read_video(out)[2]
    assert np.abs(cartoon[1].astype(int) - (255 - source[1].astype(int))).mean() < 2
