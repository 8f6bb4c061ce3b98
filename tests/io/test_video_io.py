"""Reader and writer round trips: frames, timestamps, audio bytes, rotation, sizes, containers."""

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import audio_packets, picture, read_video

from vidtoon.config import EncodeSettings
from vidtoon.errors import InputError, OutputError, SettingsError
from vidtoon.io.reader import open_video
from vidtoon.io.writer import VideoWriter


def roundtrip(source, target, encode=EncodeSettings(), transform=None):
    with open_video(source) as video, VideoWriter(target, video.info, encode) as writer:
        for frame in video.frames():
            writer.write(frame if transform is None else frame.with_rgb(transform(frame.rgb)))
    return writer


def seconds(pts, time_base):
    return [float(p * Fraction(time_base)) for p in pts]


def test_reader_yields_every_frame_with_source_timestamps(clip):
    c = clip(frames=10)
    with open_video(c.path) as video:
        frames = list(video.frames())
    assert [f.index for f in frames] == list(range(10))
    # mp4 stores its own time base; the instants are what must match.
    assert [f.time for f in frames] == pytest.approx(seconds(c.pts, c.time_base), abs=1e-4)
    assert frames[3].rgb.dtype == np.uint8 and frames[3].rgb.shape == (48, 64, 3)
    # Lossy, but the marker square says which frame this is.
    assert np.abs(frames[3].rgb.astype(int) - picture(3, 64, 48)).mean() < 6
    assert video.info.frame_count == 10 and video.info.audio_streams == 1


def open_files() -> set[str]:
    fd_dir = Path("/proc/self/fd")
    return {os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir) if (fd_dir / fd).exists()}


def test_reader_is_a_generator_that_frees_on_early_exit(clip):
    c = clip(frames=30)
    before = open_files()
    with open_video(c.path) as video:
        frames = video.frames()
        first = next(frames)
        assert str(c.path) in open_files()
        frames.close()  # the consumer stops early
    assert first.index == 0
    assert open_files() == before  # nothing left open
    with pytest.raises(RuntimeError):
        next(video.frames())  # one pass per reader


def test_writer_closes_everything_on_success_and_on_abort(clip, tmp_path):
    c = clip(frames=6)
    before = open_files()
    roundtrip(c.path, tmp_path / "ok.mp4")
    with pytest.raises(KeyboardInterrupt), open_video(c.path) as video, VideoWriter(tmp_path / "no.mp4", video.info) as w:
        w.write(next(video.frames()))
        raise KeyboardInterrupt
    assert open_files() == before


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".avi"])
def test_roundtrip_keeps_frames_timestamps_and_audio_bytes(clip, tmp_path, suffix):
    c = clip("in" + suffix, frames=15)
    out = tmp_path / ("out" + suffix)
    roundtrip(c.path, out)
    in_pts, in_tb, _, _ = read_video(c.path)
    out_pts, out_tb, frames, _ = read_video(out)
    assert len(frames) == len(in_pts) == 15
    if suffix == ".avi":
        # AVI stores no timestamps, only a frame rate and chunk order: check the rate.
        assert np.diff(out_pts).tolist() == [1] * 14 and out_tb == Fraction(1, 12)
    else:
        assert seconds(out_pts, out_tb) == pytest.approx(seconds(in_pts, in_tb), abs=1e-3)
    assert audio_packets(out) == audio_packets(c.path)  # copied byte for byte


def test_variable_frame_rate_survives(clip, tmp_path):
    c = clip("vfr.mkv", frames=14, vfr=True)
    out = tmp_path / "vfr.mp4"
    roundtrip(c.path, out)
    out_pts, out_tb, frames, _ = read_video(out)
    expected = seconds(c.pts, c.time_base)
    assert len(frames) == 14
    assert seconds(out_pts, out_tb) == pytest.approx(expected, abs=1e-3)
    gaps = np.diff(seconds(out_pts, out_tb))
    assert gaps.max() > 2.5 * gaps.min()  # still uneven: not resampled to CFR


def test_duration_matches_within_one_frame(clip, tmp_path):
    import av

    c = clip(frames=24, fps=12)
    out = tmp_path / "out.mp4"
    roundtrip(c.path, out)
    with av.open(str(c.path)) as a, av.open(str(out)) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        da, db = float(va.duration * va.time_base), float(vb.duration * vb.time_base)
    assert abs(da - db) <= 1 / 12 + 1e-6


def test_every_audio_stream_is_kept(clip, tmp_path):
    c = clip(audio=("aac", "libopus"), name="two.mkv")
    out = tmp_path / "two.mkv"
    roundtrip(c.path, out)
    packets = audio_packets(out)
    assert len(packets) == 2 and all(packets)
    assert packets == audio_packets(c.path)


def test_no_audio_gives_no_audio_stream(clip, tmp_path):
    import av

    c = clip(audio=())
    out = tmp_path / "silent.mp4"
    roundtrip(c.path, out)
    with av.open(str(out)) as container:
        assert not container.streams.audio
        assert container.streams.video[0].frames == 12


@pytest.mark.parametrize(
    ("source", "target", "codec"),
    [("in.mp4", "out.webm", "opus"), ("in.mkv", "out.mp4", "aac")],
)
def test_audio_reencoded_when_container_refuses_it(clip, tmp_path, source, target, codec):
    import av

    audio = ("aac",) if source.endswith("mp4") else ("pcm_s16le",)
    c = clip(source, audio=audio, frames=12)
    writer = roundtrip(c.path, tmp_path / target)
    assert writer.notes and "re-encoding" in writer.notes[0]
    with av.open(str(tmp_path / target)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == codec
        decoded = sum(f.samples for f in container.decode(stream))
    assert decoded == pytest.approx(48000 * 1.0, rel=0.05)  # the whole second of audio


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_is_applied_so_output_displays_upright(clip, tmp_path, rotation):
    c = clip("phone.mp4", width=64, height=32, rotation=rotation)
    with open_video(c.path) as video:
        assert video.info.rotation == rotation % 360
        first = next(video.frames()).rgb
    expected = np.rot90(picture(0, 64, 32), rotation // 90)
    assert first.shape == expected.shape
    assert np.abs(first.astype(int) - expected).mean() < 6
    out = tmp_path / "upright.mp4"
    roundtrip(c.path, out)
    _, _, frames, out_rotation = read_video(out)
    assert out_rotation == 0 and frames[0].shape == expected.shape
    assert np.abs(frames[0].astype(int) - expected).mean() < 8


@pytest.mark.parametrize("codec", ["libx264", "libx265", "mpeg4"])
def test_odd_sizes_are_padded_for_420_encoders(clip, tmp_path, codec):
    c = clip("odd.mkv", width=65, height=67, frames=4)
    writer = roundtrip(c.path, tmp_path / "odd.mkv", EncodeSettings(codec=codec))
    _, _, frames, _ = read_video(tmp_path / "odd.mkv")
    expected = (66, 68) if codec != "mpeg4" else (65, 67)
    assert writer.size == expected
    assert frames[0].shape == (expected[1], expected[0], 3) and len(frames) == 4


@pytest.mark.parametrize(("target", "codec"), [("o.mp4", "libsvtav1"), ("o.webm", "libvpx-vp9"), ("o.webm", "libsvtav1")])
def test_other_encoders(clip, tmp_path, target, codec):
    c = clip(frames=6)
    roundtrip(c.path, tmp_path / target, EncodeSettings(codec=codec))
    _, _, frames, _ = read_video(tmp_path / target)
    assert len(frames) == 6


def test_processed_pixels_are_what_gets_encoded(clip, tmp_path):
    c = clip(frames=5)
    out = tmp_path / "inv.mp4"
    roundtrip(c.path, out, EncodeSettings(crf=0), transform=lambda rgb: 255 - rgb)
    _, _, frames, _ = read_video(out)
    assert np.abs(frames[2].astype(int) - (255 - picture(2, 64, 48))).mean() < 8


def test_failure_inside_the_with_block_leaves_no_file(clip, tmp_path):
    c = clip(frames=8)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), open_video(c.path) as video:
        with VideoWriter(out, video.info) as writer:
            for frame in video.frames():
                writer.write(frame)
                if frame.index == 4:
                    raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == [c.path]


def test_writer_refuses_bad_codec_pairs(clip, tmp_path):
    c = clip(frames=2)
    with open_video(c.path) as video:
        with pytest.raises(SettingsError, match="libx265 needs frames at least 64x64"):
            VideoWriter(tmp_path / "o.mp4", video.info, EncodeSettings(codec="libx265"))
        with pytest.raises(SettingsError, match="libx264 cannot be written into .webm"):
            VideoWriter(tmp_path / "o.webm", video.info, EncodeSettings(codec="libx264"))
        with pytest.raises(SettingsError, match="--crf for libx264 must be between 0 and 51"):
            VideoWriter(tmp_path / "o.mp4", video.info, EncodeSettings(crf=99))
        with pytest.raises(SettingsError, match="unknown output type"):
            VideoWriter(tmp_path / "o.xyz", video.info)
        with pytest.raises(OutputError):
            VideoWriter(tmp_path / "missing-dir" / "o.mp4", video.info)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty"), (b"\x00garbage" * 100, "not a readable video")],
)
def test_reader_rejects_non_videos(tmp_path, content, message):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=message):
        open_video(bad)


def test_reader_rejects_missing_and_directories(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_video(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="is a directory"):
        open_video(tmp_path)


@pytest.mark.parametrize(("space", "color_range"), [(1, 1), (1, 2), (5, 1)])  # bt709/bt470bg, limited/full
def test_colour_matrix_and_range_round_trip(tmp_path, space, color_range):
    """A flat-colour clip tagged BT.709 (or BT.601) keeps its tags and its colours."""
    import av

    colours = np.array([[200, 30, 40], [20, 180, 60], [30, 60, 220], [128, 128, 128]], np.uint8)
    source = tmp_path / "tagged.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=4, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = space, color_range, space, space
        for i, colour in enumerate(colours):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), colour, np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=space, dst_color_range=color_range)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with open_video(source) as video:
        decoded = [f.rgb[32, 32] for f in video.frames()]
    assert np.abs(np.array(decoded, int) - colours).max() <= 3  # the right matrix was used
    target = tmp_path / "out.mp4"
    roundtrip(source, target, EncodeSettings(crf=0))
    with av.open(str(target)) as container:
        ctx = container.streams.video[0].codec_context
        assert (int(ctx.colorspace), int(ctx.color_range)) == (space, color_range)
    with open_video(target) as video:
        again = [f.rgb[32, 32] for f in video.frames()]
    assert np.abs(np.array(again, int) - colours).max() <= 6  # swscale rounds chroma by 1-2 per pass


def test_mid_stream_size_change_is_scaled_to_the_first_size(tmp_path):
    """MJPEG packets of two sizes in one stream: every frame comes out at the first size."""
    import av

    path = tmp_path / "resize.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        encoders = {}
        for i in range(6):
            size = (64, 48) if i < 3 else (32, 24)
            if size not in encoders:
                ctx = av.CodecContext.create("mjpeg", "w")
                ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = *size, "yuvj420p", Fraction(1, 10)
                encoders[size] = ctx
            picture_ = np.full((size[1], size[0], 3), 40 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture_, format="rgb24").reformat(format="yuvj420p")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in encoders[size].encode(frame):
                packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 10)
                out.mux(packet)
    with open_video(path) as video:
        frames = list(video.frames())
    assert [f.rgb.shape for f in frames] == [(48, 64, 3)] * 6
    assert abs(int(frames[5].rgb.mean()) - 200) <= 3  # the small frame, scaled up, not garbage
    roundtrip(path, tmp_path / "out.mp4")
    assert len(read_video(tmp_path / "out.mp4")[2]) == 6
