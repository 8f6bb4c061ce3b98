"""The frame slider's frames are the library's (those `vidtoon image --frame N` decodes),
in whatever order the slider asks for them."""

import numpy as np
import pytest

from vidtoon.errors import SettingsError
from vidtoon.io.images import read_picture
from vidtoon.web import frames
from vidtoon.web.frames import Scrubber
from vidtoon.web.looks import shrink


def test_frames_forward_back_and_far_back_are_the_image_paths_frames(clip, monkeypatch):
    monkeypatch.setattr(frames, "BEHIND", 2)
    monkeypatch.setattr(frames, "KEPT_FRAMES", 4)
    source = clip(width=96, height=64, frames=20).path
    scrubber = Scrubber(lambda rgb: shrink(rgb, 48))
    for index in (5, 6, 4, 12, 11, 1, 19, 0, 19):
        assert np.array_equal(scrubber.frame(source, index), shrink(read_picture(source, index), 48)), index
    with pytest.raises(SettingsError, match=r"has 20 frames; --frame must be below that, got 20"):
        scrubber.frame(source, 20)
    with pytest.raises(SettingsError, match=r"--frame must be 0 or more"):
        scrubber.frame(source, -1)
    assert scrubber.frame(source, 3).shape == (32, 48, 3)
    scrubber.close()
