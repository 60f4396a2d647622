"""Which images go in: reconcile labels.csv with the files, and check each file.

Every image named by labels.csv or found in the folder ends either as a candidate
for OCR or as a quarantine entry with a reason; nothing is dropped silently.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.errors import OanetError
from oanet.layout import Layout

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MISSING_IMAGE, UNLABELLED, EMPTY_FILE, NOT_AN_IMAGE, TRUNCATED = (
    "missing_image", "unlabelled", "empty_file", "not_an_image", "truncated")
WRONG_SIZE, BLANK_PANEL, DUPLICATE_UNIT, BAD_LABEL = "wrong_size", "blank_panel", "duplicate_unit", "bad_label"


class DataError(OanetError, ValueError):
    """A data folder that cannot be ingested at all (no labels.csv, bad columns)."""


@dataclass(frozen=True)
class Rejected:
    image: str
    reason: str
    detail: str = ""


def read_labels(data_dir: Path) -> pd.DataFrame:
    path = data_dir / "labels.csv"
    if not path.exists():
        raise DataError(f"{path} not found: an AOI folder needs labels.csv with columns image,label")
    try:
        labels = pd.read_csv(path, dtype={"image": str, "defect_type": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise DataError(f"{path} is not a readable CSV with columns image,label: {err}") from None
    missing = {"image", "label"} - set(labels.columns)
    if missing:
        raise DataError(f"{path} lacks the columns {sorted(missing)}; found {list(labels.columns)}")
    return labels


def image_files(data_dir: Path) -> list[str]:
    """Every image-like file under the folder, relative, sorted; labels.csv and layouts excluded."""
    return sorted(
        p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def reconcile(labels: pd.DataFrame, files: list[str]) -> tuple[pd.DataFrame, list[Rejected]]:
    """Label rows whose image exists and is labelled once with 0/1; the rest rejected."""
    rejected: list[Rejected] = []
    present = set(files)
    has_file = labels["image"].isin(present)
    rejected += [Rejected(i, MISSING_IMAGE, "labels.csv names it, the folder lacks it")
                 for i in labels.loc[~has_file, "image"]]
    labels = labels[has_file]
    dup = labels["image"].duplicated(keep="first")
    rejected += [Rejected(i, BAD_LABEL, "labelled more than once; first row kept") for i in labels.loc[dup, "image"]]
    labels = labels[~dup]
    bad = ~labels["label"].isin([0, 1])
    rejected += [Rejected(r.image, BAD_LABEL, f"label {r.label!r} is not 0 or 1") for r in labels[bad].itertuples()]
    labels = labels[~bad]
    labelled = set(labels["image"])
    rejected += [Rejected(f, UNLABELLED, "in the folder, not in labels.csv") for f in files if f not in labelled]
    return labels.reset_index(drop=True), rejected


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(data: bytes, layout: Layout, blank_panel_std: float) -> np.ndarray | Rejected:
    """Decode to (h, w) uint8 and check size and panel; a Rejected (image field empty) on failure."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return Rejected("", EMPTY_FILE, "zero bytes")
    try:
        img = Image.open(io.BytesIO(data))
        if img.size != tuple(layout.size):   # before decoding: a huge image is refused unread
            return Rejected("", WRONG_SIZE, f"{img.size[0]}x{img.size[1]}, layout {layout.name} needs "
                                           f"{layout.size[0]}x{layout.size[1]}")
        img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        return Rejected("", NOT_AN_IMAGE, f"not a readable image: {err}")
    except (OSError, SyntaxError, ValueError) as err:
        return Rejected("", TRUNCATED, f"cannot decode: {err}")
    arr = np.asarray(img.convert("L"))
    if panel_std(arr, layout) < blank_panel_std:
        return Rejected("", BLANK_PANEL, "the parameter panel holds no text")
    return arr


def panel_std(arr: np.ndarray, layout: Layout) -> float:
    """Gray-level spread of everything outside the object box: about 0 for a blank panel."""
    mask = np.ones(arr.shape, dtype=bool)
    x0, y0, x1, y1 = layout.object_roi
    mask[y0:y1, x0:x1] = False
    return float(arr[mask].std()) if mask.any() else 0.0
