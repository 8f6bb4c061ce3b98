"""The command line end to end: real clips in, real files out, exit codes, no leftovers."""

import signal
import subprocess
import sys
import time

import av
import pytest
from clips import audio_packets, noise, read_video

from vidtoon import __version__
from vidtoon.cli import ExitStatus, main
from vidtoon.config import EncodeSettings
from vidtoon.io.reader import open_video

VIDTOON = [sys.executable, "-m", "vidtoon"]


def run_cli(*args, **kwargs):
    return subprocess.run([*VIDTOON, *map(str, args)], capture_output=True, text=True, timeout=120, **kwargs)


def test_cartoonize_keeps_count_timestamps_and_audio(clip, tmp_path):
    c = clip(frames=20)
    out = tmp_path / "out.mp4"
    before = c.path.read_bytes()
    proc = run_cli("cartoonize", c.path, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "backend: classic" in proc.stderr and "wrote" in proc.stderr
    in_pts, in_tb, in_frames, _ = read_video(c.path)
    out_pts, out_tb, out_frames, _ = read_video(out)
    assert len(out_frames) == len(in_frames) == 20
    assert [float(p * out_tb) for p in out_pts] == pytest.approx([float(p * in_tb) for p in in_pts], abs=1e-3)
    assert audio_packets(out) == audio_packets(c.path)
    assert c.path.read_bytes() == before  # the input is never written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_python_api_mirrors_the_cli(clip, tmp_path):
    import vidtoon

    c = clip(frames=6)
    result = vidtoon.cartoonize(c.path, tmp_path / "api.mkv", levels=4, edges=0.5, crf=30)
    assert result.frames == 6 and result.backend == "classic"
    assert len(read_video(tmp_path / "api.mkv")[2]) == 6
    frames = [f for f in read_video(c.path)[2]]
    cartoons = list(vidtoon.cartoonize_frames(iter(frames), batch_size=4, levels=4))
    assert len(cartoons) == 6 and cartoons[0].shape == frames[0].shape


def test_python_api_rejects_unknown_options(clip, tmp_path):
    import vidtoon
    from vidtoon.errors import SettingsError

    with pytest.raises(SettingsError, match="colour"):
        vidtoon.cartoonize(clip().path, tmp_path / "o.mp4", colour="red")


def test_version_and_help():
    assert run_cli("--version").stdout.strip() == f"vidtoon {__version__}"
    for command in ([], ["cartoonize"], ["info"]):
        proc = run_cli(*command, "--help")
        assert proc.returncode == 0 and "usage: vidtoon" in proc.stdout


def test_info(clip):
    proc = run_cli("info", clip(frames=5).path)
    assert proc.returncode == 0 and "64x48 h264" in proc.stdout and "5 frames" in proc.stdout


@pytest.mark.parametrize(
    ("make_args", "code", "message"),
    [
        (lambda c, t: [t / "missing.mp4", "-o", t / "o.mp4"], ExitStatus.BAD_INPUT, "no such file"),
        (lambda c, t: [c, "-o", c], ExitStatus.BAD_INPUT, "is the input file"),
        (lambda c, t: [c, "-o", c, "-y"], ExitStatus.BAD_INPUT, "is the input file"),
        (lambda c, t: [c, "-o", t / "o.txt"], ExitStatus.BAD_INPUT, "unknown output type"),
        (lambda c, t: [c, "-o", t / "o.webm", "--codec", "libx264"], ExitStatus.BAD_INPUT, "cannot be written into .webm"),
        (lambda c, t: [c, "-o", t / "o.mp4", "--levels", "1"], ExitStatus.BAD_INPUT, "--levels must be between"),
        (lambda c, t: [c, "-o", t / "nodir" / "o.mp4"], ExitStatus.BAD_INPUT, "no such directory"),
        (lambda c, t: [c, "-o", t / "o.mp4", "--backend", "pix2pix"], ExitStatus.BACKEND_UNAVAILABLE, "pix2pix"),
    ],
)
def test_errors_are_one_line_with_distinct_codes(clip, tmp_path, make_args, code, message):
    c = clip(frames=4).path
    before = set(tmp_path.iterdir())
    proc = run_cli("cartoonize", *make_args(c, tmp_path))
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1
    assert set(tmp_path.iterdir()) == before  # nothing left behind


def test_bad_input_file(tmp_path):
    bad = tmp_path / "random.mp4"
    bad.write_bytes(noise(4096))
    proc = run_cli("cartoonize", bad, "-o", tmp_path / "o.mp4")
    assert proc.returncode == ExitStatus.BAD_INPUT
    assert proc.stderr.strip().startswith("error:") and "random.mp4" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_existing_output_needs_overwrite(clip, tmp_path):
    c = clip(frames=4)
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    proc = run_cli("cartoonize", c.path, "-o", out)
    assert proc.returncode == ExitStatus.BAD_INPUT and "--overwrite" in proc.stderr
    assert out.read_bytes() == b"keep me"
    assert run_cli("cartoonize", c.path, "-o", out, "--overwrite", "-q").returncode == 0
    assert len(read_video(out)[2]) == 4


def test_quiet_prints_nothing(clip, tmp_path):
    proc = run_cli("cartoonize", clip(frames=4).path, "-o", tmp_path / "o.mp4", "--quiet")
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == ""


def test_traceback_flag_shows_the_real_error(tmp_path):
    proc = run_cli("--traceback", "cartoonize", tmp_path / "missing.mp4", "-o", tmp_path / "o.mp4")
    assert proc.returncode == ExitStatus.ERROR and "Traceback" in proc.stderr and "InputError" in proc.stderr


def test_unexpected_errors_exit_1(monkeypatch, clip, tmp_path, capsys):
    import vidtoon.pipeline

    def boom(*args, **kwargs):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(vidtoon.pipeline, "run", boom)
    code = main(["cartoonize", str(clip().path), "-o", str(tmp_path / "o.mp4")])
    assert code == ExitStatus.ERROR and "rerun with --traceback" in capsys.readouterr().err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, ExitStatus.INTERRUPTED), (signal.SIGTERM, ExitStatus.TERMINATED)])
def test_interrupt_leaves_no_partial_output(clip, tmp_path, sig, code):
    c = clip(width=640, height=360, frames=600, fps=30)  # long enough to be mid-encode
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen([*VIDTOON, "cartoonize", str(c.path), "-o", str(out), "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "never started writing"
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_container_follows_suffix(clip, tmp_path):
    c = clip(frames=4)
    for suffix, fmt in [(".mkv", "matroska"), (".webm", "webm"), (".mov", "mov"), (".avi", "avi")]:
        out = tmp_path / ("o" + suffix)
        assert run_cli("cartoonize", c.path, "-o", out, "-q").returncode == 0
        with av.open(str(out)) as container:
            assert fmt in container.format.name
            assert container.streams.audio  # re-encoded where needed, never dropped


def test_compare_writes_original_and_cartoon_side_by_side(clip, tmp_path):
    c = clip(width=64, height=48, frames=5)
    out = tmp_path / "compare.mp4"
    assert run_cli("cartoonize", c.path, "-o", out, "--compare", "-q", "--crf", "0").returncode == 0
    _, _, frames, _ = read_video(out)
    assert len(frames) == 5 and frames[0].shape == (48, 128, 3)
    import numpy as np

    from vidtoon.backends.classic.filter import ClassicBackend

    with open_video(c.path) as video:
        sources = np.stack([f.rgb for f in video.frames()])
    source, cartoon = sources[2], ClassicBackend()(sources)[2]  # the clip's cartoon of that same frame
    left, right = frames[2][:, :64].astype(int), frames[2][:, 64:].astype(int)
    assert abs(left - source).mean() < 2  # the original, untouched
    assert abs(right - cartoon).mean() < 3  # crf 0, but 4:2:0: chroma is halved at the flat colours' borders
    assert abs(right - source).mean() > 5


def test_write_failure_exits_3_and_leaves_nothing(clip, tmp_path):
    """A file-size limit stands in for a full disk: writes fail with EFBIG mid-encode."""
    import resource

    c = clip(width=320, height=240, frames=60)
    out = tmp_path / "o.mp4"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = subprocess.run(
        [*VIDTOON, "cartoonize", str(c.path), "-o", str(out), "-q"],
        capture_output=True, text=True, timeout=120, preexec_fn=limit,
    )
    assert proc.returncode == ExitStatus.WRITE_FAILED, proc.stderr
    assert proc.stderr.startswith("error:") and "o.mp4" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_pipeline_runs_any_backend_of_the_call_shape(clip, tmp_path):
    from vidtoon.config import Job, Recipe
    from vidtoon.pipeline import run

    class Invert:
        name = "invert"
        summary = ""
        batch_size = 8

        def __call__(self, batch):
            return 255 - batch

        def reset(self):
            pass

    c = clip(frames=5)
    result = run(Job(c.path, tmp_path / "inv.mp4"), Recipe(encode=EncodeSettings(crf=0)), backend=Invert())
    assert result.backend == "invert" and result.frames == 5
    with open_video(c.path) as video:
        source = [f.rgb for f in video.frames()]
    out = read_video(tmp_path / "inv.mp4")[2]
    assert abs(out[3].astype(int) - (255 - source[3].astype(int))).mean() < 2


class Counting:
    """The classic backend, counting its calls and where prepare() ran; as_rgb=True hides
    its planes(), ahead=False its prepare()."""

    def __init__(self, as_rgb: bool = False, ahead: bool = True) -> None:
        from vidtoon.backends.classic.filter import ClassicBackend

        self.inner, self.calls = ClassicBackend(), {"rgb": 0, "planes": 0, "prepare": 0, "given": 0}
        self.threads: set[str] = set()  # where prepare() ran
        self.name, self.summary, self.batch_size = "classic", "", 4
        if not as_rgb:
            self.planes = self._planes
        if ahead:
            self.prepare = self._prepare

    def __call__(self, batch, prepared=None):
        self.calls["rgb"] += 1
        self.calls["given"] += prepared is not None
        return self.inner(batch, prepared)

    def _planes(self, batch, matrix, prepared=None):
        self.calls["planes"] += 1
        self.calls["given"] += prepared is not None
        return self.inner.planes(batch, matrix, prepared)

    def _prepare(self, batch):
        import threading

        self.calls["prepare"] += 1
        self.threads.add(threading.current_thread().name)
        return self.inner.prepare(batch)

    def reset(self):
        self.inner.reset()


def test_classic_cartoons_reach_the_encoder_as_planes(clip, tmp_path):
    """Where nothing after the backend needs RGB, its planes are encoded (no full-size RGB):
    the same video, frames and timestamps as through RGB, within the chroma's rounding."""
    from vidtoon.config import Job, Recipe
    from vidtoon.pipeline import run

    c = clip(frames=9, width=128, height=96)
    recipe = Recipe(encode=EncodeSettings(crf=0))
    direct, rgb = Counting(), Counting(as_rgb=True)
    run(Job(c.path, tmp_path / "planes.mp4"), recipe, backend=direct)
    run(Job(c.path, tmp_path / "rgb.mp4"), recipe, backend=rgb)
    assert direct.calls == {"rgb": 0, "planes": 3, "prepare": 3, "given": 3}
    assert rgb.calls == {"rgb": 3, "planes": 0, "prepare": 3, "given": 3}
    pts, time_base, ours, _ = read_video(tmp_path / "planes.mp4")
    theirs = read_video(tmp_path / "rgb.mp4")
    assert (pts, time_base, len(ours)) == (theirs[0], theirs[1], 9)
    assert [p * time_base for p in pts] == [p * c.time_base for p in c.pts]
    for a, b in zip(ours, theirs[2], strict=True):
        assert abs(a.astype(int) - b).mean() < 1.0
    # --stabilize and --compare need the RGB; so does an odd size, which the writer pads.
    for recipe, source in ((Recipe(stabilize=True), c), (Recipe(compare=True), c), (Recipe(), clip("odd.mp4", width=65, height=47, frames=5))):
        backend = Counting()
        run(Job(source.path, tmp_path / "o.mp4", overwrite=True), recipe, backend=backend)
        assert backend.calls["planes"] == 0 and backend.calls["rgb"] > 0


def test_the_decode_thread_prepares_the_backends_stateless_work(clip, tmp_path):
    """The classic backend's prepare() runs on the decode thread, ahead of the backend, and
    the video is the very one of doing it all on the backend's thread; an error there
    stops the run as a decoder's would, and leaves no output."""
    import numpy as np

    from vidtoon.config import Job, Recipe
    from vidtoon.pipeline import run

    c = clip(frames=10, width=128, height=96)
    ahead, inline = Counting(), Counting(ahead=False)
    run(Job(c.path, tmp_path / "ahead.mp4"), Recipe(), backend=ahead)
    run(Job(c.path, tmp_path / "inline.mp4"), Recipe(), backend=inline)
    assert ahead.threads == {"vidtoon-decode"} and ahead.calls["prepare"] == ahead.calls["given"] == 3
    assert inline.calls["prepare"] == inline.calls["given"] == 0 and inline.calls["planes"] == 3
    ours, theirs = read_video(tmp_path / "ahead.mp4"), read_video(tmp_path / "inline.mp4")
    assert ours[:2] == theirs[:2] and len(ours[2]) == 10
    assert all(np.array_equal(a, b) for a, b in zip(ours[2], theirs[2], strict=True))

    def fail(batch):
        raise RuntimeError("prepare failed")

    failing = Counting()
    failing.prepare = fail
    before = sorted(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="prepare failed"):
        run(Job(c.path, tmp_path / "failed.mp4"), Recipe(), backend=failing)
    assert sorted(tmp_path.iterdir()) == before  # no output, not even a temporary one


def test_a_writer_refuses_planes_it_cannot_take(clip, tmp_path):
    import numpy as np

    from vidtoon.io.writer import VideoWriter

    c = clip(frames=2, width=64, height=48)
    with open_video(c.path) as video:
        frame = next(video.frames())
        with VideoWriter(tmp_path / "o.gif", video.info) as gif, VideoWriter(tmp_path / "o.mp4", video.info) as mp4:
            assert gif.i420_matrix is None and mp4.i420_matrix is not None
            with pytest.raises(ValueError, match="planes"):
                gif.write(frame, np.zeros((72, 64), np.uint8))
            with pytest.raises(ValueError, match="planes"):
                mp4.write(frame, np.zeros((48, 64), np.uint8))
            gif.write(frame)
            mp4.write(frame, np.full((72, 64), 128, np.uint8))


@pytest.mark.parametrize("option", [["--cross-frame"], ["--reuse-latents", "0.5"], ["--reuse-batch", "2"], ["--keyframe-every", "2"],
                                    ["--batch-size", "2"], ["--stabilize"], ["--codec", "libx264"], ["--crf", "20"],
                                    ["--preset", "fast"], ["--steady", "0.5"]])
def test_image_refuses_what_cannot_apply_to_one_picture(tmp_path, capsys, option):
    """Regression: these were accepted and silently did nothing."""
    with pytest.raises(SystemExit) as exit:
        main(["image", "in.png", "-o", str(tmp_path / "p.png"), *option])
    err = capsys.readouterr().err
    assert exit.value.code == ExitStatus.BAD_INPUT and f"{option[0]} does not apply to one picture" in err
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("option", [["--compare"], ["--batch-size", "2"]])
def test_webcam_refuses_what_cannot_apply_live(capsys, option):
    with pytest.raises(SystemExit) as exit:
        main(["webcam", *option])
    assert exit.value.code == ExitStatus.BAD_INPUT and f"{option[0]} does not apply to the webcam" in capsys.readouterr().err
