"""RGB -> YUV 4:2:0 (I420) for the encoder, with OpenCV: about 2.5x cheaper than swscale here.

    matrix = yuv_matrix(color.space, color.range)   # once per clip
    planes = rgb_to_i420(rgb, matrix)                # (3H/2, W) uint8: Y, then U, then V
    planes = scaled_i420(small, (W, H), matrix)      # the same, of `small` resized to W x H

swscale builds its context (and slice threads) for every VideoFrame.reformat()
call, which was 8% of a classic run's profile (benchmarks/NOTES.md). Here one
cv2.transform applies the source's matrix (BT.601/709/2020...) and range (limited
or full) with rounding, and each 2x2 block's chroma is averaged. It agrees with
swscale within 1 level on luma and 2 on chroma (8 bits; 10 and 12 bits: see tests/io/test_yuv.py). Even sizes only (the writer pads
odd ones for 4:2:0 codecs; it keeps swscale for the rest).
"""

from __future__ import annotations

import cv2
import numpy as np

# (Kr, Kb) by FFmpeg's AVCOL_SPC_* code; anything else is treated as BT.601, as swscale does.
_KR_KB = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601 625 lines)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601 525 lines)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
}
_BT601 = (0.299, 0.114)
FULL_RANGE = 2  # AVCOL_RANGE_JPEG; 0 (unspecified) and 1 mean limited, as in swscale


def yuv_matrix(space: int, color_range: int, bits: int = 8) -> np.ndarray:
    """The 3x4 float32 matrix (offsets in the last column) from RGB 0..255 to Y'CbCr codes
    of `bits` bits (limited range: the 8-bit codes times 2^(bits-8), as swscale does)."""
    kr, kb = _KR_KB.get(space, _BT601)
    kg = 1.0 - kr - kb
    rows = np.array([
        [kr, kg, kb],
        [-kr / (2 - 2 * kb), -kg / (2 - 2 * kb), 0.5],
        [0.5, -kg / (2 - 2 * kr), -kb / (2 - 2 * kr)],
    ])
    step = 2.0 ** (bits - 8)
    if color_range == FULL_RANGE:  # 0..2^bits - 1, chroma centred on 2^(bits-1)
        scale = np.full(3, (2.0**bits - 1) / 255.0)
        offset = np.array([0.0, 128.0, 128.0]) * step
    else:  # limited: Y' 16..235, C 16..240 (times step)
        scale = np.array([219.0, 224.0, 224.0]) / 255.0 * step
        offset = np.array([16.0, 128.0, 128.0]) * step
    return np.hstack([rows * scale[:, None], offset[:, None]]).astype(np.float32)


def rgb_to_i420(rgb: np.ndarray, matrix: np.ndarray, bits: int = 8) -> np.ndarray:
    """uint8 (H, W, 3) RGB, H and W even -> (3H/2, W): the Y, U and V planes one after
    another; uint8 for 8 bits, else uint16 (yuv420p10le/12le) with a matrix of those bits."""
    height, width = rgb.shape[:2]
    deep = bits > 8
    ycc = cv2.transform(rgb.astype(np.uint16) if deep else rgb, matrix)  # rounds and saturates
    half = cv2.resize(ycc, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    out = np.empty((height * 3 // 2, width), np.uint16 if deep else np.uint8)
    flat, luma, quarter = out.reshape(-1), height * width, height * width // 4
    flat[:luma] = ycc[..., 0].reshape(-1)
    flat[luma : luma + quarter] = half[..., 1].reshape(-1)
    flat[luma + quarter :] = half[..., 2].reshape(-1)
    return out


DOUBLE_AND_HALVE = np.array([1, 6, 1], np.float32) / 8  # bilinear x2 (3/4, 1/4), then a pair's mean


def scaled_i420(rgb: np.ndarray, size: tuple[int, int], matrix: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The 8-bit I420 planes of uint8 (h, w, 3) RGB resized (bilinear) to size = (W, H),
    both even, into `out` if given: rgb_to_i420(cv2.resize(rgb, size), matrix) without the
    full-size RGB. The matrix works at the small size, and only luma is resized to full
    size, chroma to half of it. Agrees with that path within 1 level on luma, and on
    chroma where the small picture is half the full size (see tests/io/test_yuv.py)."""
    width, height = size
    ycc = cv2.transform(rgb, matrix)  # rounds and saturates, as rgb_to_i420 does
    luma, cb, cr = cv2.split(ycc)
    if out is None:
        out = np.empty((height * 3 // 2, width), np.uint8)
    cv2.resize(luma, size, dst=out[:height], interpolation=cv2.INTER_LINEAR)
    half = (width // 2, height // 2)
    chroma = out[height:].reshape(2, -1)  # U, then V: each (H/2) x (W/2), row after row
    for plane, dst in zip((cb, cr), chroma, strict=True):
        if plane.shape[::-1] == half:
            # The full-size path's bilinear doubling and 2x2 average, done at half size: chroma
            # as soft as there, or moving borders in it flicker more (sample: 1.31x -> 1.38x).
            plane = cv2.sepFilter2D(plane, -1, DOUBLE_AND_HALVE, DOUBLE_AND_HALVE, borderType=cv2.BORDER_REPLICATE)
        else:
            grow = half[0] > plane.shape[1]
            plane = cv2.resize(plane, half, interpolation=cv2.INTER_LINEAR if grow else cv2.INTER_AREA)
        dst[:] = plane.reshape(-1)
    return out
