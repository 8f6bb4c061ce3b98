"""What else the writer carries or keeps: subtitle streams (io/subtitles.py), the source's
bit depth (--pix-fmt) and the audio choice (--audio copy|aac), on generated clips."""

import av
import numpy as np
import pytest
from clips import CUES, audio_packets, make_clip, subtitle_cues

from vidtoon.config import EncodeSettings, Job, Recipe
from vidtoon.errors import SettingsError
from vidtoon.io.reader import open_video
from vidtoon.io.writer import VideoWriter
from vidtoon.pipeline import run
from vidtoon.progress import NoProgress


class Notes(NoProgress):
    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)


def cartoonize(source, target, **encode):
    notes = Notes()
    result = run(Job(source, target), Recipe(backend="classic", encode=EncodeSettings(**encode)), notes)
    return result, [n for n in notes.notes if not n.startswith("backend:")]


def stream_codecs(path):
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name if s.codec_context else None) for s in c.streams]


def cues_on_the_video(path):
    """subtitle_cues, timed from the first video frame."""
    with av.open(str(path)) as c:
        start = float(next(c.decode(c.streams.video[0])).time)
    return [[(round(a - start, 3), round(b - start, 3), text) for a, b, text in cues] for cues in subtitle_cues(path)]


def subtitle_bytes(path):
    """The bytes of each cue (mp4's empty samples between cues, b"\\0\\0", left out)."""
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.pts is not None and bytes(p) != b"\0\0"]


# -- subtitles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "codec", "note"),
    [
        (".mkv", ".mkv", "subrip", None),  # copied as it is
        (".mkv", ".mp4", "mov_text", "subtitle stream 2 (subrip) converted to mov_text for mp4"),
        (".mkv", ".mov", "mov_text", "subtitle stream 2 (subrip) converted to mov_text for mov"),
        (".mkv", ".webm", "webvtt", "subtitle stream 2 (subrip) converted to webvtt for webm"),
        (".mp4", ".mp4", "mov_text", None),  # copied
        (".mp4", ".mkv", "subrip", "subtitle stream 2 (mov_text) converted to subrip for matroska"),
        (".webm", ".mkv", "webvtt", None),  # Matroska takes WebVTT as it is
        (".webm", ".mp4", "mov_text", "subtitle stream 2 (webvtt) converted to mov_text for mp4"),
    ],
)
def test_subtitle_text_and_timing_survive(clip, tmp_path, source, target, codec, note):
    c = clip("in" + source, frames=12, subtitles=CUES, subtitle_language="fra")
    out = tmp_path / ("out" + target)
    result, notes = cartoonize(c.path, out)
    assert result.frames == 12 and result.warnings == ()
    # Text, start and end, to the ms, against the video: a muxer may shift every stream alike
    # (Matroska does, to keep the AAC priming samples copied from an mp4 at non-negative times).
    assert cues_on_the_video(out) == [list(CUES)] == cues_on_the_video(c.path)
    assert [{"srt": "subrip"}.get(n, n) for t, n in stream_codecs(out) if t == "subtitle"] == [codec]
    with av.open(str(out)) as o:
        assert o.streams.subtitles[0].metadata.get("language") == "fra"
    assert [n for n in notes if "subtitle" in n] == ([note] if note else [])
    if target != ".webm":  # (where AAC is re-encoded)
        assert audio_packets(out) == audio_packets(c.path)  # the audio still goes along
    if source == target:
        assert subtitle_bytes(out) == subtitle_bytes(c.path)  # copied: the same bytes


def test_subtitles_into_avi_are_dropped_with_one_note(clip, tmp_path):
    c = clip("in.mkv", frames=6, subtitles=CUES)
    out = tmp_path / "out.avi"
    _, notes = cartoonize(c.path, out)
    assert [n for n in notes if "subtitle" in n] == ["subtitle stream 2 (subrip) left out: avi cannot hold it"]
    assert "subtitle" not in {t for t, _ in stream_codecs(out)}


def test_several_subtitle_streams_and_a_late_cue(clip, tmp_path):
    """Two SRT streams, one of them with a cue after the last video frame: all kept, in order."""
    c = clip("in.mkv", frames=6, subtitles=CUES)  # 0.5 s of video
    late = [(0.2, 0.3, "first"), (2.0, 2.5, "after the video")]
    second = make_clip(tmp_path / "second.mkv", frames=6, subtitles=late, audio=())
    both = tmp_path / "both.mkv"
    with av.open(str(c.path)) as a, av.open(str(second.path)) as b, av.open(str(both), "w") as out:
        targets = {s.index: out.add_stream_from_template(s) for s in a.streams}
        extra = out.add_stream_from_template(b.streams.subtitles[0])
        for packet in a.demux():
            if packet.size:  # (Matroska video packets may have no dts; the empty ones end a stream)
                packet.stream = targets[packet.stream_index]
                out.mux(packet)
        for packet in b.demux(b.streams.subtitles[0]):
            if packet.size:
                packet.stream = extra
                out.mux(packet)
    target = tmp_path / "out.mp4"
    cartoonize(both, target)
    assert cues_on_the_video(target) == [list(CUES), late]


# -- bit depth --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_bit(tmp_path_factory):
    """A 10-bit HEVC clip, as phones record (64x64: x265's smallest)."""
    path = tmp_path_factory.mktemp("ten") / "phone.mp4"
    return make_clip(path, width=64, height=64, frames=6, codec="libx265", pix_fmt="yuv420p10le")


def decoded_format(path):
    with av.open(str(path)) as c:
        frame = next(c.decode(c.streams.video[0]))
        return c.streams.video[0].codec_context.name, frame.format.name


@pytest.mark.parametrize(
    ("codec", "expected"),
    [("libx265", ("hevc", "yuv420p10le")), ("libsvtav1", ("libdav1d", "yuv420p10le"))],
)
def test_ten_bit_source_stays_ten_bit_where_the_codec_keeps_it(ten_bit, tmp_path, codec, expected):
    with open_video(ten_bit.path) as video:
        assert (video.info.pix_fmt, video.info.bit_depth) == ("yuv420p10le", 10)
    out = tmp_path / "out.mkv"
    _, notes = cartoonize(ten_bit.path, out, codec=codec)
    assert decoded_format(out) == expected
    assert not [n for n in notes if "depth" in n]
    # 10-bit codes, not 8-bit ones shifted: the low two bits carry values
    with av.open(str(out)) as c:
        planes = next(c.decode(c.streams.video[0])).to_ndarray()
    assert planes.dtype == np.uint16 and planes.max() > 255 and (planes % 4).any()


def test_ten_bit_into_h264_is_reduced_with_one_note(ten_bit, tmp_path):
    out = tmp_path / "out.mp4"
    _, notes = cartoonize(ten_bit.path, out)
    assert decoded_format(out) == ("h264", "yuv420p")
    (note,) = [n for n in notes if "depth" in n]
    assert note.startswith("colour depth reduced: the source is 10-bit (yuv420p10le), libx264 writes 8-bit")
    assert "--codec libx265" in note


def test_pix_fmt_asks_for_a_format(ten_bit, tmp_path):
    out = tmp_path / "out.mp4"
    _, notes = cartoonize(ten_bit.path, out, pix_fmt="yuv420p10le")  # x264 High 10, asked for
    assert decoded_format(out) == ("h264", "yuv420p10le") and not [n for n in notes if "depth" in n]
    full = tmp_path / "full.mkv"
    cartoonize(ten_bit.path, full, codec="libx265", pix_fmt="yuv444p12le")
    assert decoded_format(full) == ("hevc", "yuv444p12le")
    eight = tmp_path / "eight.mkv"
    _, notes = cartoonize(ten_bit.path, eight, codec="libx265", pix_fmt="yuv420p")
    assert decoded_format(eight) == ("hevc", "yuv420p") and not [n for n in notes if "depth" in n]  # as asked


def test_twelve_bit_planes_are_written(ten_bit, tmp_path):
    out = tmp_path / "out.mkv"
    cartoonize(ten_bit.path, out, codec="libx265", pix_fmt="yuv420p12le")
    assert decoded_format(out) == ("hevc", "yuv420p12le")
    eight = tmp_path / "eight.mkv"
    cartoonize(ten_bit.path, eight, codec="libx265", pix_fmt="yuv420p")
    with av.open(str(out)) as c, av.open(str(eight)) as e:
        ours = next(c.decode(c.streams.video[0])).to_ndarray(format="rgb24").astype(int)
        theirs = next(e.decode(e.streams.video[0])).to_ndarray(format="rgb24").astype(int)
    assert np.abs(ours - theirs).mean() < 3  # the same cartoon (planes in place), the encoder's loss apart
    assert ours.std() > 20  # a picture, not a blank


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (dict(pix_fmt="yuv420p10le", codec="mpeg4"), "--pix-fmt 'yuv420p10le': mpeg4 takes yuv420p"),
        (dict(pix_fmt="rainbow"), "--pix-fmt 'rainbow': libx264 takes yuv420p"),
        (dict(audio="mp3"), "--audio must be copy or aac"),
    ],
)
def test_bad_encode_settings_name_the_value(clip, tmp_path, encode, message):
    with open_video(clip(frames=2).path) as video, pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        VideoWriter(tmp_path / "o.mp4", video.info, EncodeSettings(**encode))
    assert list(tmp_path.glob("o.mp4*")) == [] and list(tmp_path.glob(".o.mp4*")) == []


# -- audio --------------------------------------------------------------------------------------


def test_opus_copied_into_mp4_says_apple_players_may_not_play_it(clip, tmp_path):
    c = clip("in.mkv", frames=6, audio=("libopus",))
    out = tmp_path / "out.mp4"
    _, notes = cartoonize(c.path, out)
    assert audio_packets(out) == audio_packets(c.path)  # copied, byte for byte
    (note,) = [n for n in notes if "audio" in n]
    assert "opus" in note and "QuickTime" in note and "--audio aac" in note
    aac = tmp_path / "aac.mp4"
    _, notes = cartoonize(c.path, aac, audio="aac")
    assert ("audio", "aac") in stream_codecs(aac)
    assert notes == ["audio stream 1 (opus): re-encoding it to aac, as asked (--audio aac)"]


def test_audio_aac_copies_aac_and_refuses_webm(clip, tmp_path):
    c = clip("in.mp4", frames=6, audio=("aac", "libmp3lame"))
    out = tmp_path / "out.mkv"
    _, notes = cartoonize(c.path, out, audio="aac")
    assert [n for _, n in stream_codecs(out) if n in ("aac", "mp3")] == ["aac", "aac"]
    assert audio_packets(out)[0] == audio_packets(c.path)[0]  # AAC stays as it was
    assert notes == ["audio stream 2 (mp3): re-encoding it to aac, as asked (--audio aac)"]
    with pytest.raises(SettingsError, match="cannot hold AAC"):
        cartoonize(c.path, tmp_path / "out.webm", audio="aac")


def test_cli_takes_the_new_encoder_options(clip, tmp_path):
    from vidtoon.cli import build_parser, recipe_from_args

    args = build_parser().parse_args(["cartoonize", "in.mp4", "-o", "o.mp4", "--pix-fmt", "yuv420p10le", "--audio", "aac",
                                      "--anim-size", "320", "--anim-fps", "10"])
    encode = recipe_from_args(args).encode
    assert (encode.pix_fmt, encode.audio, encode.anim_size, encode.anim_fps) == ("yuv420p10le", "aac", 320, 10.0)
    assert recipe_from_args(build_parser().parse_args(["cartoonize", "in.mp4", "-o", "o.mp4"])).encode == EncodeSettings()
