"""The statistics an AOI machine prints about its object region: MEAN, STD, DARK, EDGE.

Pure numpy on an (h, w) uint8 array. The stage passes the tile's own box, not the whole
object image: the black padding around a non-square photo would make every statistic
depend on the tile's aspect ratio, a shortcut to the defect class. EDGE is safe on a crop
because the Sobel border is edge-replicated: the crop's rim adds no false edges.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ObjectStats(NamedTuple):
    """Keyed by the layout's field names, so the stage can print them directly."""
    gray_mean: float
    gray_std: float
    dark_pct: float
    edge_frac: float


def gray_mean_std(img: np.ndarray) -> tuple[float, float]:
    arr = img.astype(np.float64)
    return float(arr.mean()), float(arr.std())


def dark_pct(img: np.ndarray) -> float:
    """Percent of pixels darker than mean - 2 std: pits, cracks and chipped-off areas raise it."""
    mean, std = gray_mean_std(img)
    return float(100.0 * np.count_nonzero(img < mean - 2.0 * std) / img.size)


def sobel_magnitude(img: np.ndarray) -> np.ndarray:
    """3x3 Sobel gradient magnitude, same shape as the input (edge-replicated border)."""
    p = np.pad(img.astype(np.float32), 1, mode="edge")
    # Separable Sobel: smooth [1, 2, 1] across the derivative [-1, 0, 1].
    dx = p[:, 2:] - p[:, :-2]
    gx = dx[:-2] + 2.0 * dx[1:-1] + dx[2:]
    dy = p[2:] - p[:-2]
    gy = dy[:, :-2] + 2.0 * dy[:, 1:-1] + dy[:, 2:]
    return np.hypot(gx, gy)


def edge_frac(img: np.ndarray, threshold: float) -> float:
    """Fraction of pixels whose Sobel magnitude exceeds `threshold`."""
    return float(np.count_nonzero(sobel_magnitude(img) > threshold) / img.size)


def object_stats(img: np.ndarray, edge_threshold: float) -> ObjectStats:
    mean, std = gray_mean_std(img)
    return ObjectStats(mean, std, dark_pct(img), edge_frac(img, edge_threshold))
