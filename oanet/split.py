"""Stage `split`: one 7:3 stratified train/test split and CV folds, written once.

Every later stage and every model reads the same rows from `data/split.parquet`:
columns `image`, `label`, `group`, `split` (train | test) and `fold` (0..k-1 on
train rows, -1 on test rows). Units of one lot stay on one side when grouping is on;
a unit whose lot was not read forms a group of its own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import SplitConfig
from oanet.layout import Layout, load_layout

N_TEST_PARTS = 10   # the test split is made of whole parts of a 10-part grouped split


def groups_of(table: pd.DataFrame, layout: Layout, group_by_lot: bool) -> pd.Series:
    field = layout.by_role("group")
    if not group_by_lot or field is None or field.name not in table.columns:
        return table["image"].astype(str)
    lot = table[field.name].astype("string")
    return lot.fillna("image:" + table["image"].astype(str)).astype(str)


def _grouped_parts(y: np.ndarray, groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Part index of each row: stratified by label, whole groups per part."""
    from sklearn.model_selection import StratifiedGroupKFold

    n = max(2, min(n, len(np.unique(groups))))
    parts = np.empty(len(y), dtype=np.int64)
    for k, (_, idx) in enumerate(StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed).split(y, y, groups)):
        parts[idx] = k
    return parts


def make_split(table: pd.DataFrame, layout: Layout, cfg: SplitConfig) -> pd.DataFrame:
    if not 0 < cfg.test_size < 1:
        raise ValueError(f"split.test_size must be in (0, 1), got {cfg.test_size}")
    y = table["label"].to_numpy().astype(int)
    groups = groups_of(table, layout, cfg.group_by_lot).to_numpy()
    n_parts = min(N_TEST_PARTS, len(np.unique(groups)))
    parts = _grouped_parts(y, groups, n_parts, cfg.seed)
    n_test = max(1, round(cfg.test_size * n_parts))
    test = parts < n_test
    fold = np.full(len(table), -1, dtype=np.int64)
    fold[~test] = _grouped_parts(y[~test], groups[~test], cfg.folds, cfg.seed + 1)
    return pd.DataFrame({"image": table["image"].to_numpy(), "label": y, "group": groups,
                         "split": np.where(test, "test", "train"), "fold": fold})


def run(cfg: SplitConfig, layout_path: str | Path) -> pd.DataFrame:
    table = pd.read_parquet(cfg.table)
    split = make_split(table, load_layout(layout_path), cfg)
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    split.to_parquet(cfg.out, index=False)
    return split


def describe(split: pd.DataFrame) -> str:
    lines = [f"split: {len(split)} units -> " + ", ".join(
        f"{name} {len(part)} ({part['label'].mean():.1%} defective, {part['group'].nunique()} groups)"
        for name, part in split.groupby("split"))]
    folds = split[split["split"] == "train"].groupby("fold")["label"].agg(["size", "mean"])
    lines.append("  folds: " + ", ".join(f"{k}: {int(r['size'])} ({r['mean']:.0%})" for k, r in folds.iterrows()))
    return "\n".join(lines)
