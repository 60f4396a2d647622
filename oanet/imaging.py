"""One image, as every stage sees it: upright (as a viewer shows it) and 8-bit gray.

Ingest, the image branch's training loader and serving all read images through here, so an
EXIF-rotated or 16-bit image is the same array wherever it is read: a model is never trained
on one view of an image and served another.
"""
from __future__ import annotations

import numpy as np


def upright_size(img) -> tuple[int, int]:
    """(width, height) as a viewer shows the image: EXIF orientations 5 to 8 turn it a quarter."""
    turned = img.getexif().get(0x0112) in (5, 6, 7, 8)
    return (img.size[1], img.size[0]) if turned else img.size


def gray8(img) -> np.ndarray:
    """(h, w) uint8 gray, upright. 16-bit and 32-bit images are scaled to 8 bits, not clipped at 255
    (which turns a panel white and reads as blank)."""
    from PIL import ImageOps

    if img.getexif().get(0x0112, 1) != 1:         # turned or mirrored; most AOI images carry no EXIF (no copy)
        img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I;16"):
        return (np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8)
    if img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        low, high = np.nanmin(arr), np.nanmax(arr)
        return np.zeros(arr.shape, np.uint8) if high <= low else ((arr - low) * (255 / (high - low))).astype(np.uint8)
    return np.asarray(img.convert("L"))
