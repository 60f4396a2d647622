"""Stage `split`: one 7:3 stratified train/test split and CV folds, written once.

Every later stage and every model reads the same rows from `data/split.parquet`:
columns `image`, `label`, `group`, `split` (train | val | test) and `fold` (0..k-1 on
train and val rows, -1 on test rows). The `val` rows are the training rows of fold
`val_fold`: cross-validation uses them like any training row, but the final models are
fitted on `train` rows only, so the gate can be calibrated on predictions no member
has seen (val_fold -1: no val rows). Units of one lot stay on one side when grouping is on,
whether the lot is printed on the panel or given in labels.csv (`groups_of`). `stable` (the default) picks the
test lots by a hash of their names, so the split holds as data grows; the evaluation's
repeated splits use the balanced search instead (`pick_test_groups`).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import PathsConfig, SplitConfig
from oanet.errors import OanetError
from oanet.layout import CLASH_SUFFIX, LABELS_LOT, Layout, load_layout

SEARCH_TRIES = 256   # random group orders tried when picking the test groups
UNIT_GROUP = "image:"   # the group name of a unit with no lot: "image:" + its image


def lot_columns(table: pd.DataFrame, layout: Layout) -> list[str]:
    """The table's columns that name a unit's lot: the printed one (the layout's `group` field), then the
    lot labels.csv gave (`lot`, or `lot__labels` where the layout prints a field named `lot`)."""
    field = layout.by_role("group")
    printed = [field.name] if field is not None else []
    given = [c for c in (LABELS_LOT, LABELS_LOT + CLASH_SUFFIX) if c not in printed]
    return [c for c in printed + given if c in table.columns]


def groups_of(table: pd.DataFrame, layout: Layout, group_by_lot: bool) -> pd.Series:
    """Each unit's group for the split.

    Units that share a printed lot or a labels.csv lot stay together, transitively: a unit whose printed
    lot was not read still goes with its labels.csv lot, and where the two disagree both lots are kept
    whole on one side. A group is named by its first lot in column order, then by name (so the stable
    split's hash order holds while the lots agree); a unit with no lot at all is a group of its own.
    """
    images = table["image"].astype(str)
    columns = lot_columns(table, layout) if group_by_lot else []
    if not columns:
        return images
    lots = [table[c].astype("string").str.strip().replace("", pd.NA) for c in columns]
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]          # path halving keeps the chains short
            name = parent[name]
        return name

    keys = [[f"{i}:{v}" for v in lot.dropna().unique()] for i, lot in enumerate(lots)]
    for key in sorted(k for ks in keys for k in ks):     # column 0 sorts first: printed lots name groups
        parent[key] = key
    for i in range(1, len(lots)):                        # join each unit's lots, column 0 with each other
        both = lots[0].notna() & lots[i].notna()
        for a, b in set(zip(lots[0][both], lots[i][both], strict=True)):
            ra, rb = root(f"0:{a}"), root(f"{i}:{b}")
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    names = pd.Series(pd.NA, index=table.index, dtype="string")
    for i, lot in enumerate(lots):
        known = names.isna() & lot.notna()
        names[known] = [root(f"{i}:{v}").split(":", 1)[1] for v in lot[known]]
    return names.fillna(UNIT_GROUP + images).astype(str)


def _grouped_parts(y: np.ndarray, groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Part index of each row: stratified by label, whole groups per part."""
    from sklearn.model_selection import StratifiedGroupKFold

    n = max(2, min(n, len(np.unique(groups))))
    parts = np.empty(len(y), dtype=np.int64)
    for k, (_, idx) in enumerate(StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed).split(y, y, groups)):
        parts[idx] = k
    return parts


def _share_prefix(order: np.ndarray, sizes: np.ndarray, n: int, test_size: float) -> list[np.ndarray]:
    """The prefixes of a group order just under and just over `test_size` of the rows."""
    cum = np.cumsum(sizes[order])
    k = int(np.searchsorted(cum, test_size * n)) + 1
    return [order[:max(1, k - 1)], order[:min(k, len(order) - 1)]]


def stable_test_groups(groups: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """Boolean test mask: whole groups taken in a seeded hash order of their names up to `test_size`.

    A group's place in the order depends on its name only, so when new lots arrive they
    land on the side their place gives them and only the lots next to the cut can change
    sides, instead of a reshuffle: tonight's model is not trained on most of the rows
    yesterday's was tested on, and the two can be compared on the rows neither saw. The
    defect rate is not balanced; with many lots it stays close to the overall rate.
    """
    names, inverse = np.unique(groups, return_inverse=True)
    keys = [hashlib.sha256(f"{seed}:{name}".encode()).hexdigest() for name in names]
    sizes = np.bincount(inverse)
    under, over = _share_prefix(np.argsort(keys), sizes, len(groups), test_size)
    chosen = min((under, over), key=lambda c: abs(sizes[c].sum() / len(groups) - test_size))
    return np.isin(inverse, chosen)


def pick_test_groups(y: np.ndarray, groups: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """Boolean test mask made of whole groups, near `test_size` and the overall defect rate.

    scikit-learn's StratifiedGroupKFold assigns groups greedily and its shuffle only breaks
    ties, so with a few dozen lots every seed gives the same split; repeats need different
    ones. So: try seeded random orders of the groups, take groups until the share is
    reached, keep the order whose share and defect rate are closest to the targets.
    """
    rng = np.random.default_rng(seed)
    names, inverse = np.unique(groups, return_inverse=True)
    sizes = np.bincount(inverse)
    positives = np.bincount(inverse, weights=y)
    rate, n = y.mean(), len(y)
    best, best_score = None, np.inf
    for _ in range(SEARCH_TRIES):
        for chosen in _share_prefix(rng.permutation(len(names)), sizes, n, test_size):
            size = sizes[chosen].sum()
            score = abs(size / n - test_size) + abs(positives[chosen].sum() / size - rate)
            if score < best_score:
                best, best_score = chosen, score
    return np.isin(inverse, best)


class SplitError(OanetError, ValueError):
    """A split that cannot be made from these rows and settings."""


def make_split(table: pd.DataFrame, layout: Layout, cfg: SplitConfig) -> pd.DataFrame:
    if not 0 < cfg.test_size < 1:
        raise SplitError(f"split.test_size must be in (0, 1), got {cfg.test_size}")
    y = table["label"].to_numpy().astype(int)
    groups = groups_of(table, layout, cfg.group_by_lot).to_numpy()
    if len(np.unique(groups)) < 3:
        where = ", ".join(lot_columns(table, layout))
        joined = f" (lots from the columns {where}; units sharing any lot are kept together)" if where else ""
        raise SplitError(f"split needs at least 3 groups (lots) to split by, found {len(np.unique(groups))}"
                         f"{joined}; set split.group_by_lot: false for a set this small")
    test = (stable_test_groups(groups, cfg.test_size, cfg.seed) if cfg.stable
            else pick_test_groups(y, groups, cfg.test_size, cfg.seed))
    if not -1 <= cfg.val_fold < cfg.folds:
        raise SplitError(f"split.val_fold must be a fold 0..{cfg.folds - 1} or -1 (no validation rows), "
                         f"got {cfg.val_fold}")
    fold = np.full(len(table), -1, dtype=np.int64)
    fold[~test] = _grouped_parts(y[~test], groups[~test], cfg.folds, cfg.seed + 1)
    role = np.where(test, "test", np.where(fold == cfg.val_fold, "val", "train"))
    return pd.DataFrame({"image": table["image"].to_numpy(), "label": y, "group": groups,
                         "split": role, "fold": fold})


def run(cfg: SplitConfig, paths: PathsConfig, layout_path: str | Path) -> pd.DataFrame:
    """The `split` stage: the rows of `paths.clean` assigned to train / val / test, written to `paths.split`."""
    table = pd.read_parquet(paths.clean)
    split = make_split(table, load_layout(layout_path), cfg)
    Path(paths.split).parent.mkdir(parents=True, exist_ok=True)
    split.to_parquet(paths.split, index=False)
    return split


MIN_DEFECTIVE = 5     # fewer defective units than this in val or test: thresholds and numbers rest on noise


def describe(split: pd.DataFrame) -> str:
    lines = [f"split: {len(split)} units -> " + ", ".join(
        f"{name} {len(part)} ({part['label'].mean():.1%} defective, {part['group'].nunique()} groups)"
        for name, part in split.groupby("split"))]
    folds = split[split["split"] != "test"].groupby("fold")["label"].agg(["size", "mean"])
    lines.append("  folds: " + ", ".join(f"{k}: {int(r['size'])} ({r['mean']:.0%})" for k, r in folds.iterrows()))
    return "\n".join(lines + [f"  WARNING: {w}" for w in split_warnings(split)])


def split_warnings(split: pd.DataFrame) -> list[str]:
    """What makes the numbers measured on this split weaker than they look: units with no lot (split one by
    one, so a lot's units can sit on both sides), and too few defective units to choose a threshold on or to
    measure recall with, or a fold that holds one class (the bag's cross-validation stops on it)."""
    out = []
    group = split["group"].astype(str)
    alone = group.str.startswith(UNIT_GROUP) | (group == split["image"].astype(str))
    if alone.any():
        out.append(f"{int(alone.sum())} of {len(split)} units are split one by one, not by lot (no labels.csv `lot` "
                   "column, no layout field with role: group, an unread lot, or split.group_by_lot: false): units "
                   "of one lot share its process and often its defects, and where they sit on both sides the test "
                   "numbers are optimistic. Give labels.csv a lot column.")
    for part in ("val", "test"):
        rows = split[split["split"] == part]
        defective = int(rows["label"].sum())
        if len(rows) and defective < MIN_DEFECTIVE:
            use = "thresholds and the gate are chosen on" if part == "val" else "test recall is measured on"
            out.append(f"{part} holds {defective} defective unit(s): {use} too few to trust; collect more defective "
                       f"units (at least {MIN_DEFECTIVE} a side)")
    labels = split[split["split"] != "test"].groupby("fold")["label"].agg(["min", "max"])
    one_class = [int(k) for k, r in labels.iterrows() if r["min"] == r["max"]]
    if one_class:
        out.append(f"fold(s) {one_class} hold one class only: the bag's cross-validation cannot score them; "
                   "set split.folds lower")
    return out


PARTS = ("train", "val", "test")


def load_rows(table_path: str | Path, split_path: str | Path,
              columns: tuple[str, ...] = ("image", "label", "split")) -> pd.DataFrame:
    """The split's rows in split order: its `columns` joined with the OCR table's other columns.

    The split's label is kept; a table whose images repeat, lack a split image or disagree
    on a label is older or newer than the split: an error that says to rerun the split stage.
    """
    from oanet.errors import OanetError

    for what, path in (("table", table_path), ("split", split_path)):
        if not Path(path).exists():
            raise OanetError(f"{what} not found: {path}")
    table = pd.read_parquet(table_path)
    split = pd.read_parquet(split_path)
    if lacking := [c for c in columns if c not in split.columns]:
        raise OanetError(f"{split_path}: the split lacks the columns {lacking} (has {list(split.columns)}); "
                         "rerun the split stage")
    if table["image"].duplicated().any():
        raise OanetError(f"{table_path}: images appear more than once")
    rows = split[list(columns)].merge(table.drop(columns=["label"], errors="ignore"), on="image", how="left",
                                      validate="one_to_one", indicator=True)
    absent = rows.loc[rows["_merge"] != "both", "image"]
    if len(absent):
        raise OanetError(f"{len(absent)} images of the split are not in the table {table_path}, "
                         f"e.g. {absent.iloc[0]}: rerun the split stage")
    if "label" in table.columns and "label" in columns and \
            (table.set_index("image").loc[rows["image"], "label"].to_numpy() != rows["label"].to_numpy()).any():
        raise OanetError(f"labels differ between {table_path} and {split_path}; rerun the split stage")
    return rows.drop(columns="_merge")


def load_parts(table_path: str | Path, split_path: str | Path) -> dict[str, pd.DataFrame]:
    """{train, val, test}: rows of the OCR table in split order, with the split's label (val may be empty)."""
    rows = load_rows(table_path, split_path)
    return {part: rows[rows["split"] == part].reset_index(drop=True) for part in PARTS}
