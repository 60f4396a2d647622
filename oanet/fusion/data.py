"""Model inputs: object regions decoded once, the OCR matrix, and on-device augmentation.

- `load_rois` decodes each AOI image once, crops the layout's object box and resizes it
  to (S, S): one uint8 tensor (N, 1, S, S). On CUDA the training set is moved to the GPU
  once and every epoch's augmentation runs there: no per-epoch PNG decoding.
- `tabular_input` is the layout's feature matrix with NaN wherever a field is missing
  (a category field that was not read has all its one-hot columns NaN, so every
  missing field looks the same to the model and to mask learning).
- `augment_images` (random flips, transpose and GridMask) and `mask_fields` (mask
  learning: each OCR field set missing with probability p) act on the raw inputs, before
  the model's own normalisation, with an explicit torch.Generator for determinism.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from oanet.errors import OanetError
from oanet.features import TabularSchema

GRID_PERIOD = (1 / 6, 1 / 3)    # GridMask period d as a share of the image side, drawn uniformly
GRID_RATIO = 0.5                # side of each masked square as a share of d (25% of the area masked)


class ImageLoadError(OanetError, FileNotFoundError):
    """An image of the table that is missing or unreadable."""


def roi_of(image, roi: tuple[int, int, int, int], size: int) -> np.ndarray:
    """(size, size) uint8: the object box of a PIL image or (H, W) uint8 array, resized (bilinear)."""
    from PIL import Image

    im = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    crop = im.convert("L").crop(roi)
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def _load_one(path: Path, roi: tuple[int, int, int, int], size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return roi_of(im, roi, size)
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        raise ImageLoadError(f"cannot read image {path}: {err}") from None


def load_rois(data_dir: str | Path, images: Sequence[str], roi: tuple[int, int, int, int], size: int,
              threads: int = 8) -> torch.Tensor:
    """(N, 1, size, size) uint8: the object box of each image, resized (antialiased bilinear)."""
    data_dir = Path(data_dir)
    paths = [data_dir / str(name) for name in images]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:          # PIL decodes without the GIL
        arrays = list(pool.map(lambda p: _load_one(p, roi, size), paths))
    if not arrays:
        return torch.zeros((0, 1, size, size), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)[:, None])


def tabular_input(schema: TabularSchema, table: pd.DataFrame) -> np.ndarray:
    """(N, C) float32 in the schema's column order; NaN marks a missing field (all its columns)."""
    x = schema.matrix(table)
    missing = schema.missing_fields(table)                                  # (N, F) bool
    return np.where(missing[:, schema.field_of_column()], np.float32(np.nan), x).astype(np.float32)


def mask_fields(tab: torch.Tensor, field_of_column: torch.Tensor, n_fields: int, prob: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask learning: set each field of each row missing (NaN) with probability `prob`.

    tab (n, C) float; field_of_column (C,) long index into the n_fields fields.
    """
    if prob <= 0 or tab.shape[1] == 0:
        return tab
    hit = torch.rand((tab.shape[0], n_fields), generator=generator, device=tab.device) < prob   # (n, F)
    return tab.masked_fill(hit[:, field_of_column], float("nan"))


def gridmask(x: torch.Tensor, prob: float, generator: torch.Generator | None = None,
             ratio: float = GRID_RATIO) -> torch.Tensor:
    """GridMask (Chen et al. 2020) on a share `prob` of the batch: x (n,1,S,S) uint8 -> same.

    Each chosen image gets a grid of black squares of side ratio*d (ratio**2 of the area
    masked), period d drawn in GRID_PERIOD*S, at a random offset.
    """
    n, _, h, w = x.shape
    if prob <= 0 or n == 0 or ratio <= 0:
        return x
    dev = x.device
    u = torch.rand((n, 4), generator=generator, device=dev)                    # (n, 4)
    side = min(h, w)
    d = (GRID_PERIOD[0] + u[:, 0] * (GRID_PERIOD[1] - GRID_PERIOD[0])) * side  # (n,) period in pixels
    d = d.clamp_min(2.0)
    ox, oy = u[:, 1] * d, u[:, 2] * d                                          # (n,) offsets
    chosen = u[:, 3] < prob                                                    # (n,)
    ys = torch.arange(h, device=dev, dtype=torch.float32)
    xs = torch.arange(w, device=dev, dtype=torch.float32)
    in_y = torch.remainder(ys[None] + oy[:, None], d[:, None]) < ratio * d[:, None]   # (n, h)
    in_x = torch.remainder(xs[None] + ox[:, None], d[:, None]) < ratio * d[:, None]   # (n, w)
    hole = in_y[:, :, None] & in_x[:, None, :] & chosen[:, None, None]                    # (n, h, w)
    return x.masked_fill(hole[:, None], 0)


def augment_images(x: torch.Tensor, gridmask_prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal/vertical flips and transpose (the 8 symmetries of a square), then GridMask.

    x (n, 1, S, S) uint8 on any device -> same shape and dtype.
    """
    n = x.shape[0]
    flips = torch.rand((n, 3), generator=generator, device=x.device) < 0.5      # (n, 3)
    x = torch.where(flips[:, 0, None, None, None], x.flip(-1), x)
    x = torch.where(flips[:, 1, None, None, None], x.flip(-2), x)
    if x.shape[-1] == x.shape[-2]:
        x = torch.where(flips[:, 2, None, None, None], x.transpose(-1, -2), x)
    return gridmask(x, gridmask_prob, generator)
