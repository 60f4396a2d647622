"""Small generated OCR tables shaped like the ingest stage's output (no OCR, no images)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from oanet.config import PathsConfig, ValidateConfig
from oanet.layout import Layout
from oanet.synth.aoi_layout import aoi_v1_layout


def fake_value(f, i: int, rng: np.random.Generator):
    if f.dtype == "category":
        return f.categories[i % len(f.categories)]
    if f.role == "id":
        return f"U{100000 + i:06d}"
    if f.role == "group":
        return f"L2611-{i // 48:04d}"
    if f.dtype == "str":
        return f"S{i}"
    lo, hi = f.range or (0.0, 100.0)
    mid, half = (lo + hi) / 2, (hi - lo) / 4
    v = float(rng.uniform(mid - half, mid + half))
    return round(v, f.decimals if f.decimals is not None else 2) if f.dtype == "float" else float(round(v))


def make_table(n: int = 60, layout: Layout | None = None, seed: int = 0, missing_every: int = 0,
               defect_rate: float = 0.3) -> pd.DataFrame:
    """An ingest-shaped table: image, label, defect_type, sha256 and per field value/text/conf/reason.

    `missing_every=k` makes every k-th read of each field missing (reason not_found, conf null).
    """
    layout = layout or aoi_v1_layout()
    rng = np.random.default_rng(seed)
    n_def = int(round(n * defect_rate))
    label = np.array([1] * n_def + [0] * (n - n_def))
    rng.shuffle(label)
    cols: dict[str, list] = {
        "image": [f"images/{i:05d}.png" for i in range(n)],
        "label": label.tolist(),
        "defect_type": [("Crack" if lab else None) for lab in label],
        "sha256": [f"{i:064x}" for i in range(n)],
    }
    for j, f in enumerate(layout.fields):
        vals, texts, confs, reasons = [], [], [], []
        for i in range(n):
            v = fake_value(f, i, rng)
            miss = missing_every and (i + j) % missing_every == 0 and f.role != "id"
            vals.append(None if miss else v)
            texts.append("" if miss else f.format_value(v))
            confs.append(None if miss else float(rng.uniform(0.93, 1.0)))
            reasons.append("not_found" if miss else None)
        numeric = f.dtype in ("float", "int")
        cols[f.name] = pd.array(vals, dtype="float64" if numeric else "str")
        cols[f"{f.name}__text"] = pd.array(texts, dtype="str")
        cols[f"{f.name}__conf"] = pd.array(confs, dtype="float64")
        cols[f"{f.name}__reason"] = pd.array(reasons, dtype="str")
    df = pd.DataFrame(cols)
    df["label"] = df["label"].astype("int64")
    df["defect_type"] = df["defect_type"].astype("str")
    return df


@pytest.fixture(name="make_table")
def _make_table_fixture():
    """The table generator, as a fixture (tests/data is not a package, so no imports from here)."""
    return make_table


def validation_stage(tmp_path, df: pd.DataFrame, n_ingest_q: int = 3, **settings
                     ) -> tuple[ValidateConfig, PathsConfig]:
    """The validate stage's settings and files: `df` as the OCR table, `n_ingest_q` images the OCR
    quarantined, and where the clean table, the quarantine and the reports go."""
    paths = PathsConfig(ocr=str(tmp_path / "ocr.parquet"), ocr_quarantine=str(tmp_path / "ocr_quarantine.parquet"),
                        clean=str(tmp_path / "clean.parquet"), quarantine=str(tmp_path / "quarantine.parquet"),
                        validation_reports=str(tmp_path / "reports" / "validation"))
    df.to_parquet(paths.ocr, index=False)
    pd.DataFrame({"image": [f"images/bad_{i}.png" for i in range(n_ingest_q)], "reason": ["unreadable"] * n_ingest_q,
                  "detail": ["truncated PNG"] * n_ingest_q}).to_parquet(paths.ocr_quarantine, index=False)
    return ValidateConfig(**settings), paths


@pytest.fixture(name="validation_stage")
def _validation_stage_fixture():
    return validation_stage


@pytest.fixture(scope="session", autouse=True)
def _offline_env(tmp_path_factory):
    from oanet.env import apply_offline_defaults
    root = tmp_path_factory.mktemp("env")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    apply_offline_defaults(root)
