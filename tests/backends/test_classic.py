"""The classic (OpenCV) cartoon backend: contract, look, palette, temporal stability."""

import dataclasses
import itertools
import subprocess
import sys

import cv2
import numpy as np
import pytest
from clips import panning

from vidtoon.backends.classic import STYLES, ClassicSettings, palette
from vidtoon.backends.classic import filter as classic
from vidtoon.backends.classic import lines as ink
from vidtoon.backends.classic.filter import ClassicBackend, cartoonize_image
from vidtoon.errors import SettingsError


def scene(h: int = 360, w: int = 640, seed: int = 0) -> np.ndarray:
    """Deterministic 'natural-ish' frame: smooth colour field, flat discs, fine texture."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(40, 215, (6, 10, 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.08, 0.25) * h
        base[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(20, 235, 3)
    texture = cv2.GaussianBlur(rng.normal(0, 6, (h, w, 3)).astype(np.float32), (0, 0), 0.7)
    return np.clip(base + texture, 0, 255).round().astype(np.uint8)


def step(h: int, w: int, dark: int = 60, bright: int = 200) -> np.ndarray:
    """Grey frame, dark left half, bright right half."""
    img = np.full((h, w, 3), dark, np.uint8)
    img[:, w // 2:] = bright
    return img


def run(img: np.ndarray, **kw) -> np.ndarray:
    return ClassicBackend(ClassicSettings(**kw))(img[None])[0]


def pan(count: int, h: int = 120, w: int = 160) -> np.ndarray:
    draw = panning()
    return np.stack([draw(i, w, h) for i in range(count)])


@pytest.fixture
def backend() -> ClassicBackend:
    return ClassicBackend()


# ---- contract -------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (2, 7, 5, 3), (3, 33, 17, 3), (1, 2, 999, 3),
                                   (1, 541, 963, 3), (2, 720, 1280, 3)])
def test_shape_dtype_preserved(backend, shape):
    batch = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    before = batch.copy()
    out = backend(batch)
    assert out.shape == shape and out.dtype == np.uint8
    assert not np.shares_memory(out, batch) and np.array_equal(batch, before)


@pytest.mark.parametrize("bad", [np.zeros((1, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8),
                                 np.zeros((1, 8, 8, 4), np.uint8), np.zeros((1, 8, 8), np.uint8),
                                 np.zeros((1, 8, 8, 3), np.uint16)])
def test_bad_batch_raises(backend, bad):
    with pytest.raises(ValueError, match=r"shape .* dtype"):
        backend(bad)


def test_non_contiguous_batch():
    batch = np.stack([scene(48, 64, s) for s in range(3)])
    bgr_view = batch[..., ::-1]  # a common non-contiguous view
    assert np.array_equal(ClassicBackend()(bgr_view), ClassicBackend()(np.ascontiguousarray(bgr_view)))


def test_deterministic_and_batch_independent():
    frames = pan(6)
    a = ClassicBackend()(frames)
    assert np.array_equal(a, ClassicBackend()(frames))  # same clip, same frames
    split = ClassicBackend()
    assert np.array_equal(np.concatenate([split(frames[:2]), split(frames[2:3]), split(frames[3:])]), a)
    split.reset()  # a new clip: nothing carried over, a new palette
    assert np.array_equal(split(frames), a)
    assert np.array_equal(cartoonize_image(frames[2]), ClassicBackend().picture(frames[2]))
    split.picture(frames[5])  # a picture between clips leaves nothing behind
    assert np.array_equal(split(frames), a)


@pytest.mark.parametrize("style", ["cel", "flat", "sketch"])  # with ink, without, on paper
@pytest.mark.parametrize("h, w", [(720, 1280), (120, 160)])  # worked at half size, at full size
def test_work_prepared_ahead_gives_the_same_cartoons(style, h, w):
    """prepare() on another thread, ahead (as the pipeline's decode thread does it), then
    __call__ or planes() with it: the very cartoons of doing it all inline, frame after
    frame of a pan (the palette and steady state carried alike)."""
    import threading

    from vidtoon.io.yuv import yuv_matrix

    draw, settings, matrix = panning(seed=4), ClassicSettings(style=style), yuv_matrix(1, 1)
    batches = [np.stack([draw(i, w, h) for i in range(j, j + 3)]) for j in (0, 3, 6)]
    ahead, inline = ClassicBackend(settings), ClassicBackend(settings)
    prepared = []
    worker = threading.Thread(target=lambda: prepared.extend(ahead.prepare(b) for b in batches))
    worker.start()
    worker.join()
    for batch, work in zip(batches[:2], prepared, strict=False):
        assert np.array_equal(ahead(batch, work), inline(batch))
    assert np.array_equal(ahead.planes(batches[2], matrix, prepared[2]), inline.planes(batches[2], matrix))
    with pytest.raises(ValueError, match="2 prepared frames for a batch of 3"):
        ahead(batches[0], prepared[0][:2])


def test_borders_soften_where_the_picture_moves_and_a_still_stays_crisp():
    """Soft borders are for motion: a still picture, and the still parts of a clip, keep
    hard ones; a pan and a clip's first frame (its motion not known yet) get soft ones."""
    def crisp(rgb: np.ndarray) -> float:  # hard borders: a large mean |Laplacian|
        return float(np.abs(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())

    frames = pan(12)
    flat = ClassicSettings(edges=0.0)  # the colour alone
    still = crisp(ClassicBackend(flat).picture(frames[0]))
    clip = ClassicBackend(flat)(frames)
    static = ClassicBackend(flat)(np.stack([frames[0]] * 12))
    assert crisp(clip[0]) < still / 1.5  # a clip's first frame: its motion not known yet, soft
    assert crisp(clip[-1]) < still / 1.5  # a pan: soft
    assert crisp(static[-1]) > 0.8 * still  # nothing moves: crisp again, once the first frame's carried share fades


@pytest.mark.parametrize("style", list(STYLES))
def test_each_style_is_deterministic_and_differs(style):
    frames = pan(3)
    out = ClassicBackend(ClassicSettings(style=style))(frames)
    assert np.array_equal(out, ClassicBackend(ClassicSettings(style=style))(frames))
    if style != "cel":
        assert np.abs(out.astype(int) - ClassicBackend()(frames)).mean() > 0.5


def test_extreme_settings_run():
    img = scene(64, 96)
    for kw in [dict(levels=2), dict(levels=32), dict(edges=0.0), dict(edges=3.0), dict(smooth=0),
               dict(smooth=6), dict(line_width=0.25), dict(line_width=4.0), dict(steady=0.0), dict(steady=0.95)]:
        out = ClassicBackend(ClassicSettings(**kw))(np.stack([img, img]))
        assert out.shape == (2, *img.shape) and out.dtype == np.uint8


def test_settings_adjust_the_style_and_name_bad_values():
    assert ClassicSettings().look() == STYLES["cel"]
    comic = ClassicSettings(style="comic", levels=5, line_width=0.5).look()
    assert comic.colours == 5 and comic.line_width == 0.5 * STYLES["comic"].line_width
    assert comic.edges == STYLES["comic"].edges  # what is not given stays the style's
    assert ClassicSettings(style="anime", edges=0.0).describe() == "style anime, edges 0"
    for bad, message in [(dict(style="oil"), "--style must be one of cel, comic"), (dict(levels=1), "--levels"),
                         (dict(edges=4.0), "--edges"), (dict(line_width=9.0), "--line-width"), (dict(steady=1.0), "--steady")]:
        with pytest.raises(SettingsError, match=message):
            ClassicSettings(**bad)


def test_import_does_not_pull_torch():
    code = ("import sys, vidtoon.backends.classic; "
            "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- look -----------------------------------------------------------------------------

def _high_freq(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (g - cv2.GaussianBlur(g, (0, 0), 1.5)) ** 2


def test_output_is_flatter_in_smooth_regions(backend):
    img = scene()
    out = backend(img[None])[0]
    # "smooth regions": low large-scale gradient in the input (texture is fine-scale only)
    g = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 3)
    grad = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    flat = grad < np.median(grad)
    assert _high_freq(out)[flat].mean() < 0.5 * _high_freq(img)[flat].mean()


def test_few_colours_cover_the_picture():
    """The palette: at 16 levels a channel, a handful of colours cover 90% of the
    cartoon where the source needs many more; fewer --levels, fewer colours."""

    def colours90(rgb):
        codes = (rgb >> 4).astype(np.int32)
        counts = np.sort(np.bincount((codes[..., 0] << 8 | codes[..., 1] << 4 | codes[..., 2]).ravel()))[::-1]
        return int(np.searchsorted(np.cumsum(counts), 0.9 * counts.sum()) + 1)

    img = scene()
    default, few = run(img, edges=0.0), run(img, edges=0.0, levels=4)
    assert colours90(default) < 0.5 * colours90(img)
    assert colours90(few) < colours90(default)


def test_a_small_object_keeps_its_own_colour():
    """A green ball on an orange suit stays green: the palette gives its worst-fitted
    colours centres of their own rather than folding them into a big neighbour."""
    img = np.full((240, 320, 3), (230, 110, 40), np.uint8)  # orange
    img[:, 160:] = (235, 235, 230)  # and white
    cv2.circle(img, (80, 120), 14, (40, 170, 60), -1)  # ~0.8% of the picture
    out = run(img, edges=0.0)
    r, g, b = out[120, 80].astype(int)
    assert g > r + 40 and g > b + 40, (r, g, b)


@pytest.mark.parametrize("h, w", [(120, 160), (720, 1280)])  # full-res path and 2x work path
def test_dark_outline_on_step_edge_only(h, w):
    img = step(h, w)
    out = run(img).astype(np.int32)
    plain = run(img, edges=0.0).astype(np.int32)
    row = out[h // 2, :, 1]
    flat_dark, flat_bright = row[: w // 4], row[3 * w // 4:]
    near = row[w // 2 - 8: w // 2 + 8]
    # a clearly dark line next to the step (on its dark side) ...
    assert near.min() < 0.6 * flat_dark.mean()
    # ... and none in the flat areas: there the outline factor is exactly 1
    assert np.array_equal(out[:, : w // 4], plain[:, : w // 4])
    assert np.array_equal(out[:, 3 * w // 4:], plain[:, 3 * w // 4:])
    assert np.ptp(flat_dark) == 0 and np.ptp(flat_bright) == 0


def test_edges_zero_no_darkening_and_strength_orders():
    img = step(120, 160, dark=60, bright=120)  # moderate step: a partly dark line at edges=1
    row = {e: run(img, edges=e)[60, :, 1].astype(np.int32) for e in (0.0, 1.0, 3.0)}
    # without outlines the step stays monotone: nothing darker than the dark side
    assert row[0.0].min() == row[0.0][0] and np.all(np.diff(row[0.0]) >= 0)
    darkening = [(row[0.0] - row[e]).sum() for e in (1.0, 3.0)]
    assert 0 < darkening[0] < darkening[1]


def _line_width(out: np.ndarray, plain: np.ndarray) -> float:
    """Width in px of the ink across a vertical step: columns darkened by over half the most."""
    darkening = (plain.astype(np.float32) - out)[out.shape[0] // 2, :, 1]
    return float((darkening > 0.5 * darkening.max()).sum())


def test_line_width_follows_the_frame():
    """The same picture at 480p and at 4K: lines of the same share of the frame (not a
    fixed few px, which would be hairlines at 4K, nor 10 px at 4K and 480p alike)."""
    widths = {}
    for h, w in [(480, 854), (2160, 3840)]:
        img = step(h, w)
        widths[h] = _line_width(run(img), run(img, edges=0.0)) / h
    assert 0.6 < widths[2160] / widths[480] < 1.6, widths
    wide, normal = (_line_width(run(step(720, 1280), line_width=k), run(step(720, 1280), edges=0.0)) for k in (2.0, 1.0))
    assert wide > 1.4 * normal


def test_more_levels_more_luminance_values():
    ramp = np.tile(np.linspace(0, 255, 640).astype(np.uint8)[None, :, None], (64, 1, 3))

    def effective_values(levels):  # exp(entropy) of the output grey histogram
        g = run(ramp, levels=levels, edges=0.0)[..., 1]
        p = np.bincount(g.ravel(), minlength=256) / g.size
        p = p[p > 0]
        return np.exp(-(p * np.log(p)).sum())

    counts = [effective_values(n) for n in (2, 4, 8, 16)]
    assert all(a < b for a, b in itertools.pairwise(counts)), counts


# ---- the palette: once per clip -----------------------------------------------------------

def test_the_palette_is_fitted_once_for_a_steady_clip():
    backend = ClassicBackend()
    frames = pan(24)
    backend(frames[:1])
    first = backend.palette.centres.copy()
    for i in range(1, 24, 5):
        backend(frames[i : i + 5])
    assert backend.palette.fits == 1 and np.array_equal(backend.palette.centres, first)


def test_the_palette_is_fitted_again_after_a_cut_to_other_colours():
    backend = ClassicBackend()
    warm = pan(4)
    cold = np.ascontiguousarray(warm[:, :, :, ::-1] // 3)  # other hues, darker: the old colours do not fit
    backend(warm)
    assert backend.palette.fits == 1
    backend(cold[:1])
    assert backend.palette.fits == 2
    backend(cold[1:])
    assert backend.palette.fits == 2  # and then it stays
    backend.reset()
    assert backend.palette.fits == 0 and backend.palette.centres is None


def test_a_fade_in_from_black_ends_with_the_pictures_palette():
    """A palette fitted on a black first frame fits nothing after it: it is fitted
    again as the picture comes up, and the end of the fade has its colours."""
    img = pan(1)[0]
    fade = np.stack([(img * (k / 10)).astype(np.uint8) for k in range(11)])
    backend = ClassicBackend(ClassicSettings(steady=0.0))  # the palette alone, without the lag of steady
    last = backend(fade)[-1]
    assert backend.palette.fits >= 2
    alone = ClassicBackend(ClassicSettings(steady=0.0))(img[None])[0]
    # within the refit's hysteresis of the picture's own palette (fitted here at 90% of the
    # fade: ~13 levels off), where the black first frame's palette would be ~100 off
    assert np.abs(last.astype(int) - alone).mean() < 20


def test_kmeans_is_deterministic_and_finds_the_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 1.0, (200, 3)) for c in (0.0, 50.0, 100.0)]).astype(np.float32)
    centres = palette.kmeans(x, 3)
    assert np.array_equal(centres, palette.kmeans(x, 3))
    assert np.allclose(np.sort(centres[:, 0]), [0, 50, 100], atol=1.0)


# ---- temporal stability ---------------------------------------------------------------

def _hard(monkeypatch, **kw) -> ClassicBackend:
    """The same filter with hard borders and hard ink (the flicker-prone way), nothing carried over."""
    monkeypatch.setattr(classic, "SOFTEN", 0.0)
    monkeypatch.setattr(classic, "SOFTEN_MIN", 0.0)
    monkeypatch.setattr(ink, "PHI", 5.0)
    backend = ClassicBackend(ClassicSettings(steady=0.0, **kw))
    backend.palette = palette.Palette(dataclasses.replace(backend.look, softness=0.0))
    return backend


def test_small_noise_gives_small_change(monkeypatch):
    img = scene()
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 2, img.shape), 0, 255).round().astype(np.uint8)
    in_mad = np.abs(noisy.astype(np.float32) - img).mean()  # ~1.6 for sigma 2

    def change(backend):
        clean = backend(img[None])[0]  # fits the palette; steady 0, so the next frame stands alone
        d = np.abs(backend(noisy[None])[0].astype(np.float32) - clean)
        return d.mean(), (d > 16).mean()

    mad, pops = change(ClassicBackend(ClassicSettings(steady=0.0)))
    # Smoothing averages noise away and soft borders turn a nudge into a nudge.
    assert mad < 0.5 * in_mad
    assert pops < 5e-3
    hard_mad, hard_pops = change(_hard(monkeypatch))
    assert hard_pops > 2 * pops and hard_mad > mad


def test_steady_keeps_a_still_picture_still():
    """A still shot with sensor noise: the last frame carried over where the motion
    is trusted makes consecutive cartoons differ far less than frame by frame."""
    rng = np.random.default_rng(2)
    img = scene(120, 160)
    frames = np.stack([np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8) for _ in range(12)])

    def jitter(backend):
        out = backend(frames).astype(np.int32)
        return np.abs(np.diff(out[4:], axis=0)).mean()

    assert jitter(ClassicBackend()) < 0.5 * jitter(ClassicBackend(ClassicSettings(steady=0.0)))


def test_new_content_appears_at_once():
    """Nothing is carried over across a cut: the frame after it is what it would be
    with nothing carried over at all (the palette is fitted the same either way)."""
    warm, other = pan(3), np.ascontiguousarray(scene(120, 160, seed=5)[None])
    steady, alone = ClassicBackend(), ClassicBackend(ClassicSettings(steady=0.0))
    steady(warm)
    alone(warm)
    assert np.array_equal(steady(other), alone(other))


@pytest.mark.parametrize("h, w", [(360, 640), (720, 1280)])
def test_one_pixel_shift_is_equivariant(h, w):
    img = scene(h, w)
    backend = ClassicBackend(ClassicSettings(steady=0.0))  # one palette for both
    b = np.roll(backend(img[None])[0], 1, axis=1)
    a = backend(np.roll(img, 1, axis=1)[None])[0]
    d = np.abs(a.astype(np.float32) - b)[16:-16, 16:-16]  # away from the wrapped border
    # exact at full-res work size; a half work-pixel shift at 720p only resamples a bit
    assert d.mean() < 1.5 and (d > 16).mean() < 0.02


@pytest.mark.parametrize("h, w", [(720, 1280), (540, 960), (240, 320)])  # working at 1/2, 2/3 and full size
def test_planes_are_the_cartoons_as_the_encoders_yuv(h, w):
    """planes() hands the encoder what rgb_to_i420 makes of __call__'s cartoons, frame
    after frame of a pan (the steady state carried alike): luma within a level, chroma
    too at half size, elsewhere sharper by the upscale's blur at most, and equal on average."""
    from vidtoon.io.yuv import rgb_to_i420, yuv_matrix

    draw = panning(seed=3)
    frames = np.stack([draw(i, w, h) for i in range(6)])
    matrix = yuv_matrix(1, 1)
    rgb_backend, planes_backend = ClassicBackend(), ClassicBackend()
    for batch in (frames[:4], frames[4:]):
        cartoons = rgb_backend(batch)
        planes = planes_backend.planes(batch, matrix)
        assert planes.shape == (len(batch), h * 3 // 2, w) and planes.dtype == np.uint8
        for cartoon, ours in zip(cartoons, planes, strict=True):
            theirs = rgb_to_i420(cartoon, matrix).astype(int)
            assert np.abs(ours[:h] - theirs[:h]).max() <= 1
            chroma = np.abs(ours[h:] - theirs[h:])
            if h == 720:  # working at half size: chroma as soft as the full-size path's
                assert chroma.max() <= 1
            assert chroma.mean() < 0.3 and np.percentile(chroma, 99) <= 3
    with pytest.raises(ValueError, match="even"):
        ClassicBackend().planes(frames[:1, :-1], matrix)
