"""Flow, warping and occlusion masks (vidtoon/temporal.py)."""

import cv2
import numpy as np
import pytest

from vidtoon.temporal import FlowEstimator, resize_flow, valid_mask, warp


def texture(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """Smooth blobs plus fine grain: something optical flow can lock onto."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(30, 225, (6, 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 20, (h, w, 3)).astype(np.float32), (0, 0), 1.2)
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img moved by (dx, dy) px, sub-pixel: out[y, x] = img[y - dy, x - dx]."""
    move = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, move, img.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


# ---- flow and warping ------------------------------------------------------------------

@pytest.mark.parametrize(("preset", "short_side"), [("medium", None), ("fast", 60), ("ultrafast", None)])
def test_flow_recovers_a_subpixel_translation(preset, short_side):
    a = texture(120, 160)
    b = shifted(a, 2.4, -1.3)
    flow = FlowEstimator(preset, short_side)(a, b)
    assert flow.shape == (120, 160, 2) and flow.dtype == np.float32
    inner = flow[16:-16, 16:-16].reshape(-1, 2)
    assert np.median(inner, axis=0) == pytest.approx([2.4, -1.3], abs=0.15)
    # and warping b back along it reproduces a
    back = warp(b, flow)[16:-16, 16:-16].astype(np.float32)
    assert np.abs(back - a[16:-16, 16:-16]).mean() < 4


@pytest.mark.parametrize("channels", [1, 3, 4, 8])
def test_warp_any_channel_count(channels):
    rng = np.random.default_rng(channels)
    image = rng.random((20, 30, channels), np.float32).squeeze()
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2  # sample 3 right, 2 up
    out = warp(image, flow)
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.array_equal(out[2:, :-3], image[:-2, 3:])


def test_resize_flow_rescales_the_vectors():
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.5, -0.5
    big = resize_flow(flow, (160, 60))
    assert big.shape == (60, 160, 2)
    assert np.allclose(big[..., 0], 6.0) and np.allclose(big[..., 1], -1.0)


def test_valid_mask_drops_occlusions_boundaries_and_the_outside():
    """A square moves 6 px right over a still background; flows made by hand."""
    h, w, top, left, side, d = 60, 80, 20, 20, 16, 6
    forward = np.zeros((h, w, 2), np.float32)  # frame a -> b
    forward[top : top + side, left : left + side, 0] = d
    backward = np.zeros((h, w, 2), np.float32)  # frame b -> a
    backward[top : top + side, left + d : left + d + side, 0] = -d
    forward[:, -2:, 0] = 5  # the right edge leaves the frame
    keep = valid_mask(forward, backward)
    rows = slice(top + 2, top + side - 2)
    covered = keep[rows, left + side + 1 : left + side + d - 1]  # background the square moves over
    assert not covered.any()
    assert keep[rows, left + 2 : left + side - 2].all()  # the square itself is tracked
    assert not keep[:, -2:].any()
    assert not keep[rows, left].any()  # its outline: a motion boundary
    assert keep[:10, :50].all() and keep[-10:, :50].all()  # still background far from it
