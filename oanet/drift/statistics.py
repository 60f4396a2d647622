"""Image statistics of the object box, one row per image: what a camera, a lamp or a fixture moves.

The box is the layout's `object_roi`, read whole (not cut tight to the object as the
networks read it): a moved camera shows as the object moving inside the box, and the
tight cut would hide exactly that.

    brightness   mean gray level (exposure, lamp ageing)
    contrast     gray-level standard deviation
    sharpness    mean |dx| + |dy| (focus, vibration)
    dark_share   share of pixels under DARK_LEVEL (background, a failed light)
    centre_x/_y  the object's centre in the box, -0.5..0.5 (the camera or fixture moved)
    object_fill  the object's share of the box (distance to the camera, a wrong object)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

IMAGE_STATISTICS = ("brightness", "contrast", "sharpness", "dark_share", "centre_x", "centre_y", "object_fill")
DARK_LEVEL = 32


def _object_box_stats(box: np.ndarray) -> tuple[float, float, float]:
    """(centre_x, centre_y, fill) of the object in one (H, W) box (oanet.fusion.data.tight_box)."""
    from oanet.fusion.data import tight_box

    h, w = box.shape
    x0, y0, x1, y1 = tight_box(box)
    return (x0 + x1) / (2 * w) - 0.5, (y0 + y1) / (2 * h) - 0.5, (x1 - x0) * (y1 - y0) / (w * h)


def image_statistics(boxes: np.ndarray) -> pd.DataFrame:
    """(N, H, W) or (N, 1, H, W) uint8 object boxes -> a frame with one column per IMAGE_STATISTICS."""
    arr = np.asarray(boxes.cpu().numpy() if hasattr(boxes, "cpu") else boxes)
    if arr.ndim == 4:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"object boxes must be (N, H, W) or (N, 1, H, W), got {arr.shape}")
    x = arr.astype(np.float32)
    grad = np.abs(np.diff(x, axis=2))[:, :-1, :] + np.abs(np.diff(x, axis=1))[:, :, :-1]
    position = np.array([_object_box_stats(b) for b in arr]).reshape(len(arr), 3)
    return pd.DataFrame({
        "brightness": x.mean(axis=(1, 2)), "contrast": x.std(axis=(1, 2)), "sharpness": grad.mean(axis=(1, 2)),
        "dark_share": (arr < DARK_LEVEL).mean(axis=(1, 2)),
        "centre_x": position[:, 0], "centre_y": position[:, 1], "object_fill": position[:, 2],
    }).astype("float64")
