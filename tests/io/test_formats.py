"""io/formats.py's tables against this build's encoders: every preset vidtoon
lets through opens, the values just outside are refused by the encoder too, and
the size limits are where the encoders put them. The writer opens its encoder
before any frame, so whatever else an encoder refuses is exit 2 as well."""

from dataclasses import replace
from fractions import Fraction

import av
import pytest
from clips import make_clip

from vidtoon.config import EncodeSettings
from vidtoon.errors import SettingsError
from vidtoon.io import formats
from vidtoon.io.reader import open_video
from vidtoon.io.writer import VideoWriter


def opens(codec: str, width: int = 64, height: int = 64, **options: str) -> bool:
    ctx = av.codec.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = width, height, "yuv420p", Fraction(1, 25)
    ctx.options = {**options, **({"x265-params": "log-level=none"} if codec == "libx265" else {})}
    try:
        ctx.open()
    except av.FFmpegError:
        return False
    return True


@pytest.mark.parametrize("name", ["libx264", "libsvtav1", "libvpx-vp9", "libx265"])
def test_the_presets_vidtoon_takes_are_the_encoders_own(name):
    codec = formats.CODECS[name]
    ends = (codec.presets[0], codec.presets[-1])
    assert all(opens(name, **{codec.preset_option: p}) for p in ends)
    assert codec.default_preset in codec.presets
    if codec.presets[0].lstrip("-").isdigit():  # numbers: one past either end is refused
        low, high = int(codec.presets[0]) - 1, int(codec.presets[-1]) + 1
        assert not any(opens(name, **{codec.preset_option: str(v)}) for v in (low, high))


@pytest.mark.parametrize("name", ["libx264", "libsvtav1", "mpeg4"])
def test_max_side_is_the_encoders_limit(name):
    side = formats.CODECS[name].max_side
    small = 26  # over SVT-AV1's minimum
    assert opens(name, side - side % 2, small) and not opens(name, side + 2, small)


def test_an_encoder_refusal_past_the_tables_is_still_exit_2_before_any_frame(tmp_path, monkeypatch):
    """Without its max_side, mpeg4 at 10000 px is refused when the writer opens
    the encoder in its constructor: SettingsError, nothing left, no frame written."""
    monkeypatch.setitem(formats.CODECS, "mpeg4", replace(formats.CODECS["mpeg4"], max_side=None))
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    with open_video(clip.path) as video:
        info = replace(video.info, width=10000, height=10, audio_streams=0)
    with pytest.raises(SettingsError, match=r"mpeg4 refuses 10000x10 yuv420p frames with its defaults \(Invalid argument\)"):
        VideoWriter(tmp_path / "out.avi", info, EncodeSettings(codec="mpeg4"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
