"""The writer's own RGB -> YUV 4:2:0 conversion (vidtoon/yuv.py) agrees with swscale's
for every colour matrix and range the writer passes on; the planes of a small picture
resized (scaled_i420, the classic backend's step 6) agree with those of the resized RGB."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from clips import picture

from vidtoon.io.yuv import rgb_to_i420, scaled_i420, yuv_matrix


@pytest.mark.parametrize("space", [1, 2, 5, 6, 7, 9])  # BT.709, unspecified, BT.601 x2, SMPTE 240M, BT.2020
@pytest.mark.parametrize("color_range", [0, 1, 2])  # unspecified, limited, full
def test_matches_swscale(space, color_range):
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    smooth = np.stack([127 + 120 * np.sin(x / 13), 127 + 120 * np.cos(y / 9), 127 + 120 * np.sin((x + y) / 21)], -1)
    ours, theirs = both(smooth.astype(np.uint8), space, color_range)
    assert ours.shape == theirs.shape == (144, 96)
    assert np.abs(ours - theirs).max() <= 2  # rounding only
    # Hard edges (a marker square at odd positions): swscale's chroma filter is wider
    # than the 2x2 average, so chroma differs there, and only there.
    ours, theirs = both(np.concatenate([picture(i, 96, 32) for i in range(3)]), space, color_range)
    assert np.abs(ours[:96] - theirs[:96]).max() <= 1
    assert np.abs(ours[96:] - theirs[96:]).mean() < 1.5


def both(rgb, space, color_range):
    ours = rgb_to_i420(rgb, yuv_matrix(space, color_range)).astype(int)
    theirs = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=space if space != 2 else None, dst_color_range=color_range or None
    ).to_ndarray().astype(int)
    return ours, theirs


def test_limited_range_codes():
    black, white = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
    for rgb, luma in ((black, 16), (white, 235)):
        planes = rgb_to_i420(rgb, yuv_matrix(1, 1))
        assert planes[:2].tolist() == [[luma, luma]] * 2 and planes[2].tolist() == [128, 128]
    assert rgb_to_i420(white, yuv_matrix(1, 2))[:2].max() == 255


@pytest.mark.parametrize("space", [1, 2, 9])  # BT.709, unspecified, BT.2020 (10-bit sources are mostly HDR)
@pytest.mark.parametrize("color_range", [1, 2])
def test_ten_bit_codes_match_swscale(space, color_range):
    """yuv420p10le for sources the writer keeps at 10 bits: within a level of swscale on
    luma, 3 (of 1024) on chroma."""
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    rgb = np.stack([127 + 120 * np.sin(x / 13), 127 + 120 * np.cos(y / 9), 127 + 120 * np.sin((x + y) / 21)], -1)
    rgb = rgb.astype(np.uint8)
    ours = rgb_to_i420(rgb, yuv_matrix(space, color_range, bits=10), bits=10)
    assert ours.dtype == np.uint16 and ours.shape == (144, 96)
    theirs = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p10le", dst_colorspace=space if space != 2 else None, dst_color_range=color_range
    ).to_ndarray().astype(int)
    assert np.abs(ours[:96].astype(int) - theirs[:96]).max() <= 1
    assert np.abs(ours[96:].astype(int) - theirs[96:]).max() <= 3
    # limited range: the 8-bit codes times four, up to their rounding (half a level, times four, and
    # its 2x2 chroma average); so 10 bits keep what 8 bits round away
    if color_range == 1:
        eight = rgb_to_i420(rgb, yuv_matrix(space, color_range)).astype(int)
        assert np.abs(ours.astype(int) - 4 * eight).max() <= 4
        assert not np.array_equal(ours % 4, np.zeros_like(ours))


@pytest.mark.parametrize("small, full", [
    ((64, 36), (128, 72)),  # half size: chroma straight from the small picture, blurred as there
    ((96, 54), (384, 216)),  # a quarter (4K's working size): chroma upscaled
    ((96, 72), (128, 96)),  # 3/4 (480p's): chroma downscaled
    ((64, 48), (64, 48)),  # full size
])
@pytest.mark.parametrize("space, color_range", [(1, 1), (5, 2)])
def test_scaled_planes_match_the_resized_pictures(small, full, space, color_range):
    """Luma within a level of the planes of the bilinear upscale; chroma within the upscale's
    own blur (the full-size path averages it a little wider), and equal on average."""
    y, x = np.mgrid[0 : small[1], 0 : small[0]].astype(np.float32)
    rgb = np.stack([127 + 120 * np.sin(x / 5), 127 + 120 * np.cos(y / 4), 127 + 120 * np.sin((x + y) / 7)], -1)
    rgb = rgb.astype(np.uint8)
    rgb[8:20, 10:30] = (250, 20, 40)  # a hard-edged block too
    matrix = yuv_matrix(space, color_range)
    theirs = rgb_to_i420(cv2.resize(rgb, full, interpolation=cv2.INTER_LINEAR), matrix).astype(int)
    out = np.full((full[1] * 3 // 2, full[0]), 7, np.uint8)
    ours = scaled_i420(rgb, full, matrix, out=out)
    assert ours is out and ours.shape == theirs.shape
    height = full[1]
    assert np.abs(ours[:height] - theirs[:height]).max() <= 1
    chroma = np.abs(ours[height:].astype(int) - theirs[height:])
    if full == (2 * small[0], 2 * small[1]):  # half size: the same blur, done at half size
        assert chroma.max() <= 1
    else:
        assert chroma.mean() < 1.0 and chroma.max() <= 40  # at the block's edges only
    assert np.array_equal(scaled_i420(rgb, full, matrix), out)  # a new array when no out is given
