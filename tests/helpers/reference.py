"""The usual tutorial cartoonizer, as a flicker reference for tests and benchmarks.

Per frame: a k-means colour palette fitted to that frame alone, a bilateral
filter, and binary adaptive-threshold outlines. Both the palette and the
outlines jump from frame to frame, which is what vidtoon's classic backend and
stabiliser are built to avoid. Same call shape as vidtoon's backends.
"""

from __future__ import annotations

import cv2
import numpy as np


class NaiveCartoon:
    name = "naive k-means"
    summary = ""
    batch_size = 8

    def __init__(self, colours: int = 8, seed: int = 0) -> None:
        self.colours = colours
        self.seed = seed

    def reset(self) -> None:
        pass

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        cv2.setRNGSeed(self.seed)  # deterministic runs; still a new palette every frame
        return np.stack([self.frame(rgb) for rgb in batch])

    def frame(self, rgb: np.ndarray) -> np.ndarray:
        gray = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 7)
        edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 7, 7)
        data = rgb.reshape(-1, 3).astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.001)
        _, labels, centres = cv2.kmeans(data, self.colours, None, criteria, 1, cv2.KMEANS_RANDOM_CENTERS)
        flat = centres.astype(np.uint8)[labels.ravel()].reshape(rgb.shape)
        smooth = cv2.bilateralFilter(flat, 7, 200, 200)
        return cv2.bitwise_and(smooth, smooth, mask=edges)
