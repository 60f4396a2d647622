"""Model inputs: object regions decoded once, the OCR matrix, and on-device augmentation.

- `load_rois` decodes each AOI image once, crops the layout's object box, cuts it to
  the object itself when the box has a plain background around it (`tight_box`), and
  resizes that to (S, S): one uint8 tensor (N, 1, S, S). The tight cut spends every
  pixel of S on the object: a 320 px box padded around a 2.3:1 tile left it 27 of 64 px. On CUDA the training set is moved to the GPU
  once and every epoch's augmentation runs there: no per-epoch PNG decoding.
- `tabular_input` is the layout's feature matrix with NaN wherever a field is missing
  (a category field that was not read has all its one-hot columns NaN, so every
  missing field looks the same to the model and to mask learning).
- `augment_images` (random flips, transpose, photometric jitter and GridMask) and `mask_fields` (mask
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
from oanet.imaging import gray8

GRID_PERIOD = (1 / 6, 1 / 3)    # GridMask period d as a share of the image side, drawn uniformly
GRID_RATIO = 0.5                # side of each masked square as a share of d (25% of the area masked)


class ImageLoadError(OanetError, FileNotFoundError):
    """An image of the table that is missing or unreadable."""


# The object is cut out of its box only where the box is clearly object on background:
BACKGROUND_MARGIN = 16     # gray levels above or below the border's level that count as object
OBJECT_LINE_SHARE = 0.2    # a row / column with this share of object pixels belongs to the object
MIN_OBJECT_SHARE = 0.2     # a cut narrower than this share of the box is not trusted (whole box kept)


def tight_box(box: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the object inside a (H, W) uint8 box, or the whole box.

    The background level is the box border's median; rows and columns where at least
    OBJECT_LINE_SHARE of the pixels stand BACKGROUND_MARGIN above or below it make the object:
    a tile on black padding, or a part on a back-lit, light table.
    A box whose object touches no clear background (or is too small to trust) is kept
    whole, so a layout whose object fills its box is read as before.
    """
    h, w = box.shape
    border = np.concatenate([box[0], box[-1], box[:, 0], box[:, -1]])
    fg = np.abs(box.astype(np.int16) - np.median(border)) > BACKGROUND_MARGIN   # (H, W) bool
    rows = np.flatnonzero(fg.mean(axis=1) >= OBJECT_LINE_SHARE)
    cols = np.flatnonzero(fg.mean(axis=0) >= OBJECT_LINE_SHARE)
    if not len(rows) or not len(cols):
        return 0, 0, w, h
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    if (x1 - x0) < MIN_OBJECT_SHARE * w or (y1 - y0) < MIN_OBJECT_SHARE * h:
        return 0, 0, w, h
    return x0, y0, x1, y1


def roi_of(image, roi: tuple[int, int, int, int], size: int, tight: bool = True) -> np.ndarray:
    """(size, size) uint8: the object of a PIL image or (H, W) uint8 array, cut tight and resized.

    The object box is cropped, cut to the object (`tight_box`; `tight=False` only for
    the ablation that measures it) and resized to a square (bilinear, antialiased): a
    tile's aspect is not kept, its detail is.
    """
    from PIL import Image

    im = Image.fromarray(image if isinstance(image, np.ndarray) else gray8(image))   # upright, 8-bit, as ingest reads it
    crop = im.convert("L").crop(roi)
    if tight:
        crop = crop.crop(tight_box(np.asarray(crop, dtype=np.uint8)))
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


# An AOI image has a few megapixels; one past this is refused from its header, before decoding
# (a 20k x 20k PNG of a few KB would decode to 400 MB; PIL's own bomb check stops only at 179 MP).
MAX_IMAGE_PIXELS = 40_000_000


def _load_one(path: Path, roi: tuple[int, int, int, int], size: int, tight: bool = True,
              max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise Image.DecompressionBombError(f"{im.width}x{im.height} pixels, over the limit of {max_pixels}")
            return roi_of(im, roi, size, tight)
    except (FileNotFoundError, UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ImageLoadError(f"cannot read image {path}: {err}") from None


def load_rois(data_dir: str | Path, images: Sequence[str], roi: tuple[int, int, int, int], size: int,
              threads: int = 8, tight: bool = True, max_pixels: int = MAX_IMAGE_PIXELS) -> torch.Tensor:
    """(N, 1, size, size) uint8: the object of each image (`roi_of`), resized (antialiased bilinear).

    An image over `max_pixels` (width x height) is an ImageLoadError, raised before it is decoded."""
    data_dir = Path(data_dir)
    paths = [data_dir / str(name) for name in images]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:          # PIL decodes without the GIL
        arrays = list(pool.map(lambda p: _load_one(p, roi, size, tight, max_pixels), paths))
    if not arrays:
        return torch.zeros((0, 1, size, size), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)[:, None])


def tabular_input(schema: TabularSchema, table: pd.DataFrame) -> np.ndarray:
    """(N, C) float32 in the schema's column order; NaN marks a missing field (all its columns)."""
    x = schema.matrix(table)
    missing = schema.missing_fields(table)                                  # (N, F) bool
    return np.where(missing[:, schema.field_of_column()], np.float32(np.nan), x).astype(np.float32)


def image_labels(rows: pd.DataFrame, process_defects: Sequence[str]) -> np.ndarray:
    """(N,) int: the unit label with process-only defects set to 0, for models that see only the image.

    A unit labelled defective for an out-of-spec process value (`defect_type` in
    `process_defects`) shows nothing in its image; teaching the image branch that it is
    a defect is label noise (docs/benchmarks.md, "The MT-AOI data set"). Without a
    `defect_type` column the unit label is returned.
    """
    y = rows["label"].to_numpy().astype(int)
    if "defect_type" not in rows.columns or not process_defects:
        return y
    return np.where(rows["defect_type"].astype("string").isin(list(process_defects)).fillna(False), 0, y)


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


def photometric_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random gamma, contrast and brightness per image: x (n,1,S,S) uint8 -> same.

    Exposure is the main nuisance of AOI photographs (MT: six exposures, mean gray 67 to
    151). Per-image standardisation removes an affine change of gray levels, not the
    non-linear one of a sensor's response, so the jitter includes a gamma.
    `strength` s: gamma in exp(+-s), contrast in 1 +- s, brightness in +-s*64 gray levels.
    """
    if strength <= 0 or x.shape[0] == 0:
        return x
    u = torch.rand((x.shape[0], 3, 1, 1, 1), generator=generator, device=x.device) * 2 - 1   # (n,3,1,1,1)
    v = (x.float() / 255.0).pow(torch.exp(strength * u[:, 0]))                                # (n,1,S,S)
    mean = v.mean(dim=(1, 2, 3), keepdim=True)
    v = (v - mean) * (1 + strength * u[:, 1]) + mean + strength * 0.25 * u[:, 2]
    return (v.clamp(0, 1) * 255).round().to(torch.uint8)


def flip8(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 symmetries of a square (k in 0..7): bit 0 flips x, bit 1 flips y, bit 2 transposes."""
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4 and x.shape[-1] == x.shape[-2]:
        x = x.transpose(-1, -2)
    return x


def augment_images(x: torch.Tensor, gridmask_prob: float, generator: torch.Generator | None = None,
                   jitter: float = 0.0) -> torch.Tensor:
    """Random horizontal/vertical flips and transpose (the 8 symmetries of a square),
    photometric jitter (`jitter` strength, 0: off), then GridMask.

    x (n, 1, S, S) uint8 on any device -> same shape and dtype.
    """
    n = x.shape[0]
    flips = torch.rand((n, 3), generator=generator, device=x.device) < 0.5      # (n, 3)
    x = torch.where(flips[:, 0, None, None, None], x.flip(-1), x)
    x = torch.where(flips[:, 1, None, None, None], x.flip(-2), x)
    if x.shape[-1] == x.shape[-2]:
        x = torch.where(flips[:, 2, None, None, None], x.transpose(-1, -2), x)
    return gridmask(photometric_jitter(x, jitter, generator), gridmask_prob, generator)
