"""The two corruptions of the paper's robustness study, seeded, on in-memory data.

- OCR loss: a share of the OCR values replaced by missing, as when the reader fails
  on a smudged or truncated panel (paper Table 2: 60%).
- GridMask on the object region: a grid of black squares over the image, as when
  the object is occluded or a lighting segment fails (Chen et al. 2020).
Both are pure functions of their inputs and a seed, so every model under comparison
sees exactly the same corrupted rows.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

TABLE2_MISSING_RATE = 0.6     # the paper's Table 2: 60% of the OCR values replaced by missing
TABLE2_GRID_RATIO = 0.5       # GridMask square side / period: 25% of the object area masked


def drop_ocr_values(table: pd.DataFrame, fields: Sequence[str], rate: float, seed: int) -> pd.DataFrame:
    """A copy of `table` with each value of `fields` set missing with probability `rate`.

    rate 0 returns the values unchanged, rate 1 removes every one of them.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"missing rate must be in [0, 1], got {rate}")
    out = table.copy()
    if rate == 0 or not len(out):
        return out
    hit = np.random.default_rng(seed).random((len(out), len(fields))) < rate     # (N, F)
    for j, name in enumerate(fields):
        column = out[name]
        if column.dtype.kind in "iub":                  # an int column cannot hold NaN
            column = column.astype("float64")
        out[name] = column.mask(hit[:, j])
    return out


def grid_mask_images(images, ratio: float, seed: int):
    """GridMask on every image: (N,1,S,S) uint8 torch tensor -> same; ratio**2 of the area black."""
    import torch

    from oanet.fusion.data import gridmask

    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"GridMask ratio must be in [0, 1), got {ratio}")
    gen = torch.Generator(device=images.device)
    gen.manual_seed(seed)
    return gridmask(images, 1.0, gen, ratio=ratio)
