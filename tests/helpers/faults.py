"""Helpers for the reliability tests: damaged and odd inputs made from good
clips, the CLI run as a subprocess, and the checks every refusal must pass.

    bad = truncate(clip.path, tmp_path / "cut.mp4", 0.5)
    proc = run_cli("cartoonize", bad, "-o", tmp_path / "out.mp4")
    assert_refused(proc, bad, "cut short")
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from clips import _encode_audio, tone

VIDTOON = [sys.executable, "-m", "vidtoon"]

# Runs the CLI like `python -m vidtoon`, then reports the process's peak resident
# memory (VmHWM, in KiB) on the last line of stderr. VmHWM belongs to the process
# image after exec, unlike ru_maxrss, which starts from the (large) forked pytest.
PEAK_RSS_SCRIPT = """
import atexit, sys
def report():
    with open("/proc/self/status") as f:
        peak = next(line for line in f if line.startswith("VmHWM")).split()[1]
    sys.stderr.write(f"\\nVmHWM {peak}\\n")
atexit.register(report)
from vidtoon.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_cli(*args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """`python -m vidtoon ARGS`; str/bytes/Path arguments all work (bytes: non-UTF-8 names)."""
    argv = [a if isinstance(a, bytes) else str(a) for a in args]
    return subprocess.run([*VIDTOON, *argv], capture_output=True, timeout=timeout, **kwargs)


def run_cli_peak(*args, timeout: float = 600) -> tuple[subprocess.CompletedProcess, int]:
    """run_cli, plus the run's peak resident memory in MiB."""
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    *rest, last = proc.stderr.rstrip("\n").split("\n")
    assert last.startswith("VmHWM "), proc.stderr
    proc.stderr = "\n".join(rest).rstrip("\n") + ("\n" if rest and any(rest) else "")
    return proc, int(last.split()[1]) // 1024


def digest(path: Path | bytes) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def stderr_text(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr
    return err.decode("utf-8", "backslashreplace") if isinstance(err, bytes) else err


def assert_one_line(proc: subprocess.CompletedProcess, prefix: str) -> str:
    """stderr is exactly one line, starting with `prefix`, and no traceback."""
    err = stderr_text(proc)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    return lines[0]


def assert_refused(
    proc: subprocess.CompletedProcess, source: Path, message: str, out_dir: Path, before: set[str], code: int = 2
) -> str:
    """The contract for bad input: exit `code`, one error line naming the file and
    the problem, and nothing new in the output folder (no output, no .part file)."""
    assert proc.returncode == code, stderr_text(proc)
    line = assert_one_line(proc, "error:")
    assert Path(source).name in line and message in line, line
    assert set(os.listdir(out_dir)) == before, sorted(set(os.listdir(out_dir)) - before)
    return line


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


# ---- damaged and odd inputs ------------------------------------------------------------------


def faststart(source: Path, target: Path) -> Path:
    """Remux an MP4 with its index (moov) before the media data, as streaming files are."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "+faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream_index]
                out.mux(packet)
    return target


def truncate(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def top_level_boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    """An MP4's top-level boxes: type -> (offset, size)."""
    boxes, pos = {}, 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        boxes[kind] = (pos, size)
        if size < 8:
            break
        pos += size
    return boxes


def without_moov(source: Path, target: Path) -> Path:
    """An MP4 whose index was never written: everything up to the moov box."""
    data = source.read_bytes()
    offset, _ = top_level_boxes(data)[b"moov"]
    target.write_bytes(data[:offset])
    return target


def video_packets(path: Path) -> list[tuple[int, int]]:
    """(byte offset, size) of every video packet, in file order."""
    with av.open(str(path)) as c:
        return [(p.pos, p.size) for p in c.demux(video=0) if p.size]


def audio_packets_at(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as c:
        return [(p.pos, p.size) for p in c.demux(audio=0) if p.size]


def corrupt(source: Path, target: Path, spans: list[tuple[int, int]], seed: int = 0) -> Path:
    """Overwrite each (offset, size) span with random bytes."""
    rng = np.random.default_rng(seed)
    data = bytearray(source.read_bytes())
    for pos, size in spans:
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def audio_only(source: Path, target: Path) -> Path:
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(audio=0):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return target


def with_cover_art(target: Path) -> Path:
    """An MP3 whose only 'video' is its album cover (an attached picture)."""
    import cv2

    ok, png = cv2.imencode(".png", np.full((32, 32, 3), 200, np.uint8))
    assert ok
    with av.open(str(target), "w") as out:
        audio = out.add_stream("libmp3lame", rate=44100, layout="stereo")
        cover = out.add_stream("png")
        cover.width = cover.height = 32
        cover.pix_fmt = "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        packet = av.Packet(png.tobytes())
        packet.stream, packet.pts, packet.dts, packet.time_base = cover, 0, 0, Fraction(1, 90000)
        out.mux(packet)
        _encode_audio(out, audio, tone(1.0, 44100, 2))
    return target


def still_image(target: Path) -> Path:
    import cv2

    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 40, 40)
    assert cv2.imwrite(str(target), rgb)
    return target


def zero_frames(target: Path) -> Path:
    """A Matroska file with a video track that holds no frames (and half a second of audio)."""
    with av.open(str(target), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        out.mux(video.encode(None))
        _encode_audio(out, audio, tone(0.5, 48000, 2))
    return target


def flat_clip(target: Path, width: int, height: int, frames: int, fps: int = 10) -> Path:
    """A quickly encoded clip of any size (libx264 ultrafast; a gradient that changes per frame)."""
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "35"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        row = (np.arange(width, dtype=np.uint32) * 255 // max(1, width - 1)).astype(np.uint8)
        for i in range(frames):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[..., 0] = row[None, :]
            rgb[..., 1] = (np.arange(height, dtype=np.uint32) * 255 // height).astype(np.uint8)[:, None]
            rgb[..., 2] = (40 * i) % 256
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target


def rename_codec(source: Path, target: Path, old: bytes, new: bytes) -> Path:
    """A Matroska file whose codec ID is damaged (e.g. V_MPEG4/ISO/AVC -> an unknown one)."""
    data = source.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    target.write_bytes(data.replace(old, new))
    return target


# ---- permissions, also when the tests run as root ----------------------------------------------

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


def _drop_file_capabilities() -> None:
    """In the child, before exec: drop the capabilities that let root ignore file
    permissions, from the bounding set, so that exec does not give them back."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def as_ordinary_user() -> dict:
    """subprocess keyword arguments under which file permissions apply: nothing for
    an ordinary user; for root, a child without CAP_DAC_OVERRIDE/READ_SEARCH.
    Raises OSError when root cannot drop them here (no CAP_SETPCAP)."""
    if os.geteuid() != 0:
        return {}
    probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_file_capabilities, capture_output=True)
    if probe.returncode != 0:
        raise OSError(f"cannot drop root's file capabilities here: {probe.stderr[-200:]!r}")
    return {"preexec_fn": _drop_file_capabilities}


def long_clip(target: Path, seconds: float, width: int = 160, height: int = 120, fps: int = 30) -> Path:
    """A clip of any length, made quickly: 30 distinct pictures in a loop (libx264
    ultrafast) with stereo AAC interleaved second by second, as a camera writes it."""
    from clips import picture

    pictures = [picture(i, width, height) for i in range(30)]
    rate = 48000
    with av.open(str(target), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="stereo")
        resampler = av.AudioResampler(format=audio.codec_context.codec.audio_formats[0].name, layout="stereo", rate=rate)
        second = tone(1.0, rate, 2)
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(pictures[i % 30], format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
            if i % fps == 0:  # one second of sound per second of video
                chunk = av.AudioFrame.from_ndarray(second, format="fltp", layout="stereo")
                chunk.rate, chunk.pts, chunk.time_base = rate, (i // fps) * rate, Fraction(1, rate)
                for f in resampler.resample(chunk):
                    out.mux(audio.encode(f))
        out.mux(video.encode(None))
        for f in resampler.resample(None):
            out.mux(audio.encode(f))
        out.mux(audio.encode(None))
    return target
