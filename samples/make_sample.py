"""Generate vidtoon's bundled sample clip, ``samples/astronaut.mp4``.

What it makes
-------------
A 4-second (120 frames), 1280x720, constant 30 fps H.264 (libx264, yuv420p,
BT.709 limited range) MP4 with ``+faststart``, plus a stereo 48 kHz AAC audio
track covering the full duration.  The file is kept under 2 MB.

* Picture: the public-domain NASA portrait of astronaut Eileen Collins that
  ships inside scikit-image (``skimage.data.astronaut()``, no download
  needed).  It is upscaled once with Lanczos (``cv2.INTER_LANCZOS4``) onto a
  canvas larger than the frame, then a virtual camera slowly pans and zooms
  over it; every frame is resampled from that canvas with ``cv2.warpAffine``
  (``INTER_CUBIC``, sub-pixel precision), so the whole frame is always covered
  and the motion is perfectly smooth -- no cuts.
* Independent object: a shaded, spinning beach ball (rendered analytically in
  numpy with 4x4 supersampled anti-aliasing) flies along a smooth arc in
  screen space with a soft drop shadow.  The clip therefore has both global
  (camera) motion and a separately moving object, which is what
  temporal-consistency metrics need.
* Audio: synthesised here in numpy -- a short pentatonic melody of plucked
  tones over a soft pad chord and a faint filtered-noise bed (fixed seed).
  Nothing is sampled from a recording, so there is no licensing question.

How to run
----------
From the repository root, with the project's virtualenv active::

    python samples/make_sample.py            # writes samples/astronaut.mp4
    python samples/make_sample.py -o out.mp4 # somewhere else

It needs only numpy, scipy, opencv-python, scikit-image and PyAV.  Everything is
deterministic (fixed seeds, no wall-clock input); only the H.264/AAC encoders
could in principle introduce byte-level differences between runs.  At the end
the script re-opens the file with PyAV and prints frame count, timestamps,
duration, the audio stream and the file size.
"""

from __future__ import annotations

import argparse
import itertools
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation
from scipy.signal import lfilter
from skimage import data as skdata

# --------------------------------------------------------------------------
# Clip parameters
# --------------------------------------------------------------------------
WIDTH, HEIGHT = 1280, 720
FPS = 30
N_FRAMES = 120  # 4.0 s
CRF = 16
X264_PRESET = "medium"
SAMPLE_RATE = 48_000
AUDIO_BITRATE = 128_000
AUDIO_FRAME = 1024  # AAC frame size
SEED = 20240601

CANVAS_SCALE = 2.7  # 512 px source -> 1382 px canvas (Lanczos)

# RGB -> YUV 4:2:0 conversion: bicubic chroma downsampling, exact rounding
RGB_TO_YUV_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.BITEXACT

DEFAULT_OUT = Path(__file__).resolve().parent / "astronaut.mp4"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def smoothstep(x: float) -> float:
    """C2-continuous ease-in/ease-out on [0, 1] (quintic smootherstep)."""
    x = min(max(x, 0.0), 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def lerp(a, b, s):
    return a + (b - a) * s


def make_canvas() -> np.ndarray:
    """The astronaut photo, upscaled with Lanczos, as float32 RGB in [0, 1]."""
    src = skdata.astronaut()  # (512, 512, 3) uint8, RGB, ships in the wheel
    h, w = src.shape[:2]
    size = (int(round(w * CANVAS_SCALE)), int(round(h * CANVAS_SCALE)))
    big = cv2.resize(src, size, interpolation=cv2.INTER_LANCZOS4)
    return big.astype(np.float32) / 255.0


def camera(t: float, canvas_shape) -> tuple[float, float, float]:
    """Camera centre (cx, cy) in canvas pixels and zoom for t in [0, 1].

    Starts on the face, flag and shuttle model, then drifts down and to the
    right (towards the name tag) while slowly zooming in; the face stays in
    view throughout.
    """
    ch, cw = canvas_shape[:2]
    s = smoothstep(t)
    zoom = lerp(1.0, 1.09, s)
    cx = lerp(0.470, 0.560, s) * cw
    cy = lerp(0.270, 0.410, s) * ch
    # keep the whole output frame inside the canvas (never show a border)
    hw, hh = WIDTH / 2 / zoom, HEIGHT / 2 / zoom
    margin = 2.0  # bicubic support
    cx = min(max(cx, hw + margin), cw - hw - margin)
    cy = min(max(cy, hh + margin), ch - hh - margin)
    return cx, cy, zoom


def render_background(canvas: np.ndarray, t: float) -> np.ndarray:
    cx, cy, zoom = camera(t, canvas.shape)
    # output pixel centre (x + 0.5) maps to canvas cx + (x + 0.5 - W/2) / zoom
    inv = 1.0 / zoom
    tx = cx - (WIDTH / 2) * inv + 0.5 * inv - 0.5
    ty = cy - (HEIGHT / 2) * inv + 0.5 * inv - 0.5
    m = np.array([[inv, 0.0, tx], [0.0, inv, ty]], dtype=np.float64)
    return cv2.warpAffine(
        canvas,
        m,
        (WIDTH, HEIGHT),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT101,
    )


# --------------------------------------------------------------------------
# The moving object: a spinning, shaded beach ball with a soft shadow
# --------------------------------------------------------------------------
BALL_COLOURS = np.array(
    [
        [0.86, 0.12, 0.10],  # red
        [0.97, 0.96, 0.93],  # white
        [0.10, 0.35, 0.80],  # blue
        [0.98, 0.80, 0.10],  # yellow
        [0.97, 0.96, 0.93],  # white
        [0.12, 0.62, 0.25],  # green
    ],
    dtype=np.float32,
)
LIGHT = np.array([-0.45, -0.60, 0.66])
LIGHT /= np.linalg.norm(LIGHT)
SS = 4  # supersampling factor per axis


def ball_path(t: float) -> tuple[float, float, float, float]:
    """Screen position (x, y), radius and spin angle for t in [0, 1]."""
    s = lerp(t, smoothstep(t), 0.35)  # mostly uniform speed, soft ends
    x = lerp(170.0, 1110.0, s)
    # a swoop: down from over the flag, low across the suit, up to the shuttle
    y = 230.0 + 300.0 * np.sin(np.pi * s) - 25.0 * np.sin(3.0 * np.pi * s)
    r = 58.0 + 8.0 * np.sin(np.pi * s)  # comes slightly "closer" mid-flight
    spin = 2.6 * np.pi * s
    return float(x), float(y), float(r), float(spin)


def _rot(spin: float) -> np.ndarray:
    """Body-to-view rotation of the ball: spin about a tilted axis.

    Used as ``v_view @ R`` (row vectors), i.e. ``R.T @ v``: view -> body.
    """
    a = spin
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    tilt = 0.9
    rx = np.array(
        [[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]]
    )
    return rx @ rz


def render_ball(x: float, y: float, r: float, spin: float):
    """Return (x0, y0, rgb, alpha) for a patch covering the ball."""
    x0 = int(np.floor(x - r)) - 2
    y0 = int(np.floor(y - r)) - 2
    size = int(np.ceil(2 * r)) + 5
    # supersampled pixel-centre coordinates, relative to the (sub-pixel) centre
    offs = (np.arange(SS) + 0.5) / SS
    gx = (x0 + (np.arange(size)[:, None] + offs[None, :]).ravel() - x) / r
    gy = (y0 + (np.arange(size)[:, None] + offs[None, :]).ravel() - y) / r
    nx, ny = np.meshgrid(gx, gy)
    rr = nx * nx + ny * ny
    inside = rr < 1.0
    nz = np.sqrt(np.clip(1.0 - rr, 0.0, 1.0))
    n_view = np.stack([nx, ny, nz], axis=-1)  # y points down (image coords)

    body = n_view @ _rot(spin)  # row vectors: v @ R == R^T v (view -> body)
    lon = np.arctan2(body[..., 1], body[..., 0])
    seg = np.floor((lon + np.pi) / (2 * np.pi) * 6).astype(int) % 6
    col = BALL_COLOURS[seg]
    cap = np.abs(body[..., 2]) > 0.93  # white pole caps
    col = np.where(cap[..., None], np.float32(0.97), col)

    lam = np.clip(n_view @ LIGHT, 0.0, 1.0)
    refl = 2.0 * lam[..., None] * n_view - LIGHT
    spec = np.clip(refl[..., 2], 0.0, 1.0) ** 40
    rim = (1.0 - nz) ** 3  # subtle darkening towards the limb
    shade = 0.30 + 0.75 * lam - 0.15 * rim
    rgb = col * shade[..., None] + 0.55 * spec[..., None]
    rgb = np.clip(rgb, 0.0, 1.0) * inside[..., None]
    a = inside.astype(np.float32)

    # box-filter down to pixel resolution (anti-aliasing)
    rgb = rgb.reshape(size, SS, size, SS, 3).mean(axis=(1, 3))
    a = a.reshape(size, SS, size, SS).mean(axis=(1, 3))
    # premultiplied colour -> straight colour
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = np.where(a[..., None] > 0, rgb / np.maximum(a[..., None], 1e-6), 0.0)
    return x0, y0, rgb.astype(np.float32), a.astype(np.float32)


def composite(frame: np.ndarray, t: float) -> None:
    """Draw shadow + ball onto `frame` (float32 RGB, modified in place)."""
    x, y, r, spin = ball_path(t)

    # soft drop shadow: a blurred ellipse offset down-right
    sx, sy = x + 0.55 * r, y + 0.85 * r
    pad = int(3 * r)
    X0, Y0 = int(sx) - pad, int(sy) - pad
    X1, Y1 = X0 + 2 * pad, Y0 + 2 * pad
    cx0, cy0 = max(X0, 0), max(Y0, 0)
    cx1, cy1 = min(X1, WIDTH), min(Y1, HEIGHT)
    if cx1 > cx0 and cy1 > cy0:
        yy, xx = np.mgrid[cy0:cy1, cx0:cx1].astype(np.float32) + 0.5
        d = ((xx - sx) / (1.0 * r)) ** 2 + ((yy - sy) / (0.8 * r)) ** 2
        sh = np.clip(2.0 * (1.0 - d), 0.0, 1.0).astype(np.float32)
        sh = cv2.GaussianBlur(sh, (0, 0), sigmaX=0.28 * r)
        frame[cy0:cy1, cx0:cx1] *= (1.0 - 0.5 * sh)[..., None]

    # the ball itself
    bx0, by0, rgb, a = render_ball(x, y, r, spin)
    h, w = a.shape
    fx0, fy0 = max(bx0, 0), max(by0, 0)
    fx1, fy1 = min(bx0 + w, WIDTH), min(by0 + h, HEIGHT)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    pr = rgb[fy0 - by0 : fy1 - by0, fx0 - bx0 : fx1 - bx0]
    pa = a[fy0 - by0 : fy1 - by0, fx0 - bx0 : fx1 - bx0, None]
    region = frame[fy0:fy1, fx0:fx1]
    region[:] = region * (1.0 - pa) + pr * pa


# --------------------------------------------------------------------------
# Audio: plucked pentatonic melody + soft pad + faint noise bed
# --------------------------------------------------------------------------
def synth_audio(duration: float) -> np.ndarray:
    """Return float32 array of shape (2, n_samples) in [-1, 1]."""
    n = int(round(duration * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros((2, n), dtype=np.float64)

    def midi_hz(m):
        return 440.0 * 2.0 ** ((m - 69) / 12.0)

    # 96 BPM, eighth notes (0.3125 s); C-major pentatonic melody
    beat = 60.0 / 96.0 / 2.0
    melody = [72, 76, 79, 81, 79, 76, 74, 76, 72, 69, 72, 74, 76]
    for i, m in enumerate(melody):
        start = i * beat
        if start >= duration - 0.25:
            break
        f0 = midi_hz(m)
        k0 = int(round(start * SAMPLE_RATE))
        seg = t[k0:] - start
        env = (1.0 - np.exp(-seg / 0.004)) * np.exp(-seg / 0.45)
        tone = np.zeros_like(seg)
        for h, amp in enumerate([1.0, 0.45, 0.22, 0.10, 0.05], start=1):
            # higher partials decay faster, like a plucked string
            tone += amp * np.sin(2 * np.pi * f0 * h * seg) * np.exp(-seg * 1.6 * (h - 1))
        pan = 0.5 + 0.3 * np.sin(i * 1.3)  # gentle stereo spread
        out[0, k0:] += 0.22 * np.cos(pan * np.pi / 2) * env * tone
        out[1, k0:] += 0.22 * np.sin(pan * np.pi / 2) * env * tone

    # soft pad: C major add9 chord with slow swell, slightly detuned per channel
    swell = np.minimum(t / 1.2, 1.0)
    release = 0.5 * (1 + np.cos(np.pi * np.clip((t - 2.6) / 1.4, 0, 1)))
    pad_env = swell * release
    for m in (48, 55, 60, 62, 64):
        f = midi_hz(m)
        out[0] += 0.035 * pad_env * np.sin(2 * np.pi * f * 0.999 * t)
        out[1] += 0.035 * pad_env * np.sin(2 * np.pi * f * 1.001 * t + 0.7)

    # faint noise bed: seeded white noise, low-passed (one-pole) -- "room tone"
    rng = np.random.default_rng(SEED)
    noise = rng.standard_normal((2, n))
    noise = lfilter([0.02], [1.0, -0.98], noise, axis=1)  # one-pole low-pass
    out += 0.006 * noise / noise.std()

    # fades to avoid clicks at the ends
    fade_in = np.minimum(t / 0.02, 1.0)
    fade_out = np.clip((duration - t) / 0.35, 0.0, 1.0)
    out *= fade_in * fade_out
    peak = np.max(np.abs(out))
    out *= 0.5 / peak  # about -6 dBFS peak
    return out.astype(np.float32)


# --------------------------------------------------------------------------
# Encode
# --------------------------------------------------------------------------
def write_clip(path: Path) -> None:
    canvas = make_canvas()
    duration = N_FRAMES / FPS
    audio = synth_audio(duration)

    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        vs = container.add_stream("libx264", rate=FPS)
        vs.width, vs.height = WIDTH, HEIGHT
        vs.pix_fmt = "yuv420p"
        vs.time_base = Fraction(1, FPS)
        vs.codec_context.time_base = Fraction(1, FPS)
        vs.options = {"crf": str(CRF), "preset": X264_PRESET}
        # BT.709, limited ("tv") range -- tag what we actually convert to
        vs.codec_context.colorspace = 1
        vs.codec_context.color_primaries = 1
        vs.codec_context.color_trc = 1
        vs.codec_context.color_range = 1

        aus = container.add_stream("aac", rate=SAMPLE_RATE)
        aus.layout = "stereo"
        aus.bit_rate = AUDIO_BITRATE
        aus.time_base = Fraction(1, SAMPLE_RATE)

        # interleave audio and video roughly in time order
        a_pos = 0
        n_audio = audio.shape[1]
        for i in range(N_FRAMES):
            t = i / (N_FRAMES - 1)
            frame = render_background(canvas, t)
            composite(frame, t)
            rgb8 = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(rgb8, format="rgb24")
            vf = vf.reformat(
                format="yuv420p",
                dst_colorspace="itu709",
                dst_color_range="MPEG",
                interpolation=RGB_TO_YUV_FLAGS,
            )
            vf.pts = i
            vf.time_base = Fraction(1, FPS)
            for pkt in vs.encode(vf):
                container.mux(pkt)

            # audio up to the end of this video frame
            a_end = min(n_audio, int(round((i + 1) / FPS * SAMPLE_RATE)))
            while a_pos + AUDIO_FRAME <= a_end or (i == N_FRAMES - 1 and a_pos < n_audio):
                chunk = audio[:, a_pos : a_pos + AUDIO_FRAME]
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(chunk), format="fltp", layout="stereo"
                )
                af.sample_rate = SAMPLE_RATE
                af.pts = a_pos
                af.time_base = Fraction(1, SAMPLE_RATE)
                for pkt in aus.encode(af):
                    container.mux(pkt)
                a_pos += chunk.shape[1]

        for pkt in vs.encode(None):
            container.mux(pkt)
        for pkt in aus.encode(None):
            container.mux(pkt)


def verify(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        pts = [f.pts for f in c.decode(video=0)]
        facts = {
            "path": str(path),
            "size_bytes": path.stat().st_size,
            "container_duration_s": (c.duration or 0) / av.time_base,
            "video_codec": v.codec_context.name,
            "resolution": f"{v.codec_context.width}x{v.codec_context.height}",
            "pix_fmt": v.codec_context.pix_fmt,
            "avg_fps": float(v.average_rate),
            "video_frames": len(pts),
            "pts_strictly_increasing": all(b > a_ for a_, b in itertools.pairwise(pts)),
            "video_duration_s": float(v.duration * v.time_base) if v.duration else None,
            "audio": (
                f"{a.codec_context.name} {a.codec_context.sample_rate} Hz "
                f"{a.codec_context.layout.name} {a.codec_context.bit_rate or a.bit_rate} bit/s"
                if a
                else None
            ),
            "audio_duration_s": float(a.duration * a.time_base) if a and a.duration else None,
        }
    ok = (
        facts["video_frames"] == N_FRAMES
        and facts["pts_strictly_increasing"]
        and a is not None
        and abs(facts["container_duration_s"] - N_FRAMES / FPS) < 0.1
        and facts["size_bytes"] < 2_000_000
    )
    facts["ok"] = ok
    return facts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    t0 = time.perf_counter()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_clip(args.output)
    facts = verify(args.output)
    for k, v in facts.items():
        print(f"{k:>24}: {v}")
    print(f"{'runtime_s':>24}: {time.perf_counter() - t0:.1f}")
    return 0 if facts["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
