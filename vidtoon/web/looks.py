"""The page's controls and what they make: the option fields of each backend (the
same option() fields the CLI builds its options from), a Recipe from the values
the page sends, and cartoons of single pictures: the preview of one video frame
(the `vidtoon image` path) and webcam frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import backends
from ..cartoonizer import Cartoonizer
from ..config import FILE, LIVE, Flag, Recipe, cli_fields
from ..errors import InputError, SettingsError
from ..live.looks import live_recipe
from .frames import Scrubber
from .gpu import Gpu

PREVIEW_SIDE = 640  # px: the long side of the frame slider's before/after pictures
RECIPE_FIELDS = ("stabilize", "compare")  # the Recipe's own options the page offers
SCOPE_WORDS = {FILE: "a video file", LIVE: "the webcam"}
JPEG_QUALITY = 85


def controls() -> dict[str, Any]:
    """Each backend (available here or not, and why) with its options, and the recipe's own."""
    listed = []
    for spec in backends.specs():
        ok, why = spec.available(spec.settings())
        listed.append({"name": spec.name, "help": spec.help, "available": ok, "why": why,
                       "fields": _fields(spec.settings)})
    recipe = [f for f in _fields(Recipe) if f["name"] in RECIPE_FIELDS]
    return {"backends": listed, "recipe": recipe}


def _options(settings_class: type, scope: str = FILE) -> list[tuple[dataclasses.Field, Flag]]:
    """The option fields of a settings class that apply to `scope` (config.FILE: cartoonize's)."""
    return [(f, flag) for f, flag in cli_fields(settings_class) if scope in flag.scopes]


def _fields(settings_class: type) -> list[dict[str, Any]]:
    out = []
    for f, flag in _options(settings_class):
        kind = flag.argparse.get("type", type(f.default) if f.default is not None else str)
        choices = flag.argparse.get("choices")
        out.append({"name": f.name, "flag": flag.flag, "help": flag.help, "default": f.default,
                    "choices": list(choices) if choices else None, "scopes": sorted(flag.scopes),
                    "type": "bool" if isinstance(f.default, bool) else {int: "int", float: "float"}.get(kind, "str")})
    return out


def recipe_from(values: dict[str, Any], scope: str = FILE) -> Recipe:
    """A Recipe from the page's values: {"backend": name, option name: value, ...}, for
    `scope` (FILE: the video job; LIVE: the webcam, which refuses --compare as the CLI does).
    Values left empty (None, "") keep their defaults. Text goes through the option's own
    argparse type where it has one (--size 512x384). Bad values: the CLI's SettingsError."""
    if not isinstance(values, dict):
        raise SettingsError("the options must be a JSON object")
    name = values.get("backend", "classic")
    if name not in backends.REGISTRY:
        raise SettingsError(f"unknown backend {name!r}; choose one of {', '.join(backends.REGISTRY)}")
    flags = dict((f.name, (f, flag)) for f, flag in cli_fields(backends.spec(name).settings))
    flags.update((f.name, (f, flag)) for f, flag in cli_fields(Recipe) if f.name in RECIPE_FIELDS)
    options: dict[str, Any] = {}
    for key, value in values.items():
        if key == "backend" or value is None or value == "":
            continue
        if key not in flags:
            raise SettingsError(f"unknown option {key!r} for the {name} backend")
        if scope not in flags[key][1].scopes:
            raise SettingsError(f"{flags[key][1].flag} does not apply to {SCOPE_WORDS[scope]}")
        f, flag = flags[key]
        convert = flag.argparse.get("type")
        if isinstance(value, float) and value.is_integer() and (convert is int or type(f.default) is int):
            value = int(value)  # JSON has one number type
        elif isinstance(value, str) and callable(convert) and convert not in (int, float, str):
            try:
                value = convert(value)
            except argparse.ArgumentTypeError as e:
                raise SettingsError(str(e)) from None
        options[key] = value
    return Recipe.from_options(backend=name, **options)


def shrink(rgb: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise SettingsError("the picture could not be encoded as JPEG")
    return data.tobytes()


def unjpeg(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise InputError("the camera frame is not a readable JPEG or PNG picture")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class Pictures:
    """Cartoons of single pictures. Preview frames (frames.py) and built cartoonizers
    are kept (a few), so moving a control re-runs only the backend on one small frame."""

    def __init__(self, gpu: Gpu, backend: object = None) -> None:
        self.frames = Scrubber(shrink)
        self._gpu = gpu
        self._cartoonizers: OrderedDict[tuple[str, bool], Cartoonizer] = OrderedDict()
        self._backend = backend  # tests: a backend object instead of the recipe's
        self._lock = threading.Lock()  # one backend call at a time (the models are not thread-safe)

    def preview(self, source: Path, frame: int, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
        """Frame `frame` of the video at `source`, at preview size, and its cartoon."""
        with self._lock, self._gpu.frame(recipe):
            before = self.frames.frame(source, frame)
            one = dataclasses.replace(recipe, stabilize=False)  # one frame: no motion to follow
            return before, self._cartoonizer(one, live=False).picture(before)

    def live(self, rgb: np.ndarray, recipe: Recipe) -> np.ndarray:
        """A webcam frame's cartoon; the same cartoonizer carries from frame to frame (--stabilize)."""
        with self._lock, self._gpu.frame(recipe):
            return self._cartoonizer(recipe, live=True)(rgb[None])[0]

    def _cartoonizer(self, recipe: Recipe, live: bool) -> Cartoonizer:
        key = (repr(recipe), live)
        if key not in self._cartoonizers:
            used = live_recipe(recipe)[0] if live else recipe
            cartoonizer, _ = Cartoonizer.build(used, self._backend)
            cartoonizer.reset()
            self._cartoonizers[key] = cartoonizer
            self._keep(self._cartoonizers, 4)
        self._cartoonizers.move_to_end(key)
        return self._cartoonizers[key]

    @staticmethod
    def _keep(cache: OrderedDict, most: int) -> None:
        while len(cache) > most:
            cache.popitem(last=False)

