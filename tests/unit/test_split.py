"""The split stage: stratified 7:3 train/test, CV folds, lots never on both sides."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from oanet.config import SplitConfig
from oanet.split import describe, make_split, split_warnings
from oanet.synth.aoi_layout import aoi_v1_layout


def table(n: int = 480, per_lot: int = 48, seed: int = 0, lot_missing: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lots = pd.array([f"L2611-{i // per_lot + 1:04d}" for i in range(n)], dtype="string")
    lots[:lot_missing] = pd.NA
    return pd.DataFrame({"image": [f"images/U{i:06d}.png" for i in range(n)],
                         "label": (rng.random(n) < 0.3).astype(int), "lot": lots})


@pytest.mark.parametrize("stable", [True, False])
def test_split_is_about_seven_to_three_and_stratified(stable):
    t = table()
    s = make_split(t, aoi_v1_layout(), SplitConfig(stable=stable))
    assert list(s["image"]) == list(t["image"])
    share = (s["split"] == "test").mean()
    assert 0.2 <= share <= 0.4
    rates = s.groupby("split")["label"].mean()
    assert abs(rates["test"] - rates["train"]) < 0.1


def test_no_lot_on_both_sides_and_folds_cover_train_only():
    s = make_split(table(), aoi_v1_layout(), SplitConfig(folds=5))
    sides = s.groupby("group")["split"].nunique()
    assert (sides == 1).all()
    train, test = s[s["split"] != "test"], s[s["split"] == "test"]
    assert (test["fold"] == -1).all()
    assert set(train["fold"]) == set(range(5))
    assert (train.groupby("group")["fold"].nunique() == 1).all()   # a lot sits in one fold
    assert set(s.loc[s["split"] == "val", "fold"]) == {0}           # val_fold 0 is held out of the final fits


def test_val_fold_minus_one_means_no_val_rows_and_a_bad_fold_is_refused():
    s = make_split(table(), aoi_v1_layout(), SplitConfig(folds=5, val_fold=-1))
    assert set(s["split"]) == {"train", "test"}
    with pytest.raises(ValueError, match="val_fold"):
        make_split(table(), aoi_v1_layout(), SplitConfig(folds=5, val_fold=5))


def test_same_seed_same_split_other_seed_other_split():
    t = table()
    a, b = make_split(t, aoi_v1_layout(), SplitConfig(seed=1)), make_split(t, aoi_v1_layout(), SplitConfig(seed=1))
    c = make_split(t, aoi_v1_layout(), SplitConfig(seed=2))
    assert a.equals(b)
    assert not a["split"].equals(c["split"])


def test_a_unit_with_no_lot_at_all_is_its_own_group_and_ungrouped_mode_uses_units():
    s = make_split(table(lot_missing=5), aoi_v1_layout(), SplitConfig())
    assert s["group"].iloc[:5].str.startswith("image:").all()
    ungrouped = make_split(table(), aoi_v1_layout(), SplitConfig(group_by_lot=False))
    assert ungrouped["group"].nunique() == len(ungrouped)


def test_a_split_that_is_not_by_lot_or_rests_on_few_defects_says_so():
    assert split_warnings(make_split(table(), aoi_v1_layout(), SplitConfig())) == []
    no_lot = table().drop(columns="lot")                        # labels.csv without lots, a panel printing none
    warned = split_warnings(make_split(no_lot, _no_field_layout(), SplitConfig()))
    assert len(warned) == 1 and warned[0].startswith("480 of 480 units are split one by one, not by lot")
    partly = split_warnings(make_split(table(lot_missing=5), aoi_v1_layout(), SplitConfig()))
    assert partly[0].startswith("5 of 480 units are split one by one")
    rare = table().assign(label=0)
    rare.loc[[0, 50, 100, 150, 200, 250, 300, 350], "label"] = 1      # 8 defective units of 480 in 10 lots
    split = make_split(rare, aoi_v1_layout(), SplitConfig(folds=5))
    warned = split_warnings(split)
    assert any(w.startswith("val holds ") and "thresholds and the gate are chosen on" in w for w in warned)
    assert any(w.startswith("test holds ") for w in warned)
    assert "WARNING: val holds" in describe(split)
    one_lot = table().assign(label=0)
    one_lot.loc[[0, 1, 2], "label"] = 1                            # every defect in one lot: folds without any
    assert any("hold one class only" in w for w in split_warnings(make_split(one_lot, aoi_v1_layout(), SplitConfig())))


def _no_field_layout():
    """aoi-v1 without its printed lot: a machine that does not print one."""
    layout = aoi_v1_layout()
    return dataclasses.replace(layout, fields=tuple(f for f in layout.fields if f.role != "group"))


def test_the_labels_csv_lot_groups_units_where_the_panel_prints_none():
    s = make_split(table(), _no_field_layout(), SplitConfig())
    assert s["group"].nunique() == 10
    assert (s.groupby("group")["split"].nunique() == 1).all()


def test_a_unit_whose_printed_lot_was_not_read_goes_with_its_labels_csv_lot():
    t = table(lot_missing=5).assign(lot__labels=table()["lot"])      # labels.csv gave every lot
    s = make_split(t, aoi_v1_layout(), SplitConfig())
    assert list(s["group"].iloc[:5]) == ["L2611-0001"] * 5
    assert s["split"].iloc[:5].nunique() == 1 and s["split"].iloc[0] == s["split"].iloc[10]


def test_where_printed_and_given_lots_disagree_both_lots_stay_whole_on_one_side():
    """Printed lots of 48 units; labels.csv lots of 96, each spanning two printed lots."""
    t = table(per_lot=48)
    given = table(per_lot=96)["lot"].str.replace("L2611", "B")
    s = make_split(t.assign(lot__labels=given), aoi_v1_layout(), SplitConfig(stable=False))
    assert s["group"].nunique() == 5
    for lots in (t["lot"], given):
        assert (s.groupby(lots)["split"].nunique() == 1).all()


def test_lots_chained_into_too_few_groups_are_refused_naming_where_the_lots_come_from():
    t = table(per_lot=48).assign(lot__labels=table(per_lot=40)["lot"])     # 48 and 40 chain into 2 groups
    with pytest.raises(ValueError, match=r"found 2.*lot, lot__labels"):
        make_split(t, aoi_v1_layout(), SplitConfig())


def test_printed_lots_name_the_groups_so_the_stable_split_holds_when_labels_agree():
    t = table()
    same = make_split(t.assign(lot__labels=t["lot"]), aoi_v1_layout(), SplitConfig())
    assert same.equals(make_split(t, aoi_v1_layout(), SplitConfig()))


def test_bad_test_size_is_refused():
    with pytest.raises(ValueError, match="test_size"):
        make_split(table(), aoi_v1_layout(), SplitConfig(test_size=1.5))


def _sides(split: pd.DataFrame) -> pd.Series:
    return split.groupby("group")["split"].agg(lambda parts: "test" if (parts == "test").all() else "train")


@pytest.mark.parametrize("stable, most_moved", [(True, 2), (False, None)])
def test_a_stable_split_holds_its_lots_as_new_lots_arrive(stable, most_moved):
    """Night 1: 30 lots. Night 2: 4 more. The stable split moves only lots at the cut."""
    cfg = SplitConfig(stable=stable, seed=3)
    before = _sides(make_split(table(n=30 * 16, per_lot=16), aoi_v1_layout(), cfg))
    grown = table(n=34 * 16, per_lot=16)
    after = _sides(make_split(grown, aoi_v1_layout(), cfg)).loc[before.index]
    moved = int((before != after).sum())
    if most_moved is not None:
        assert moved <= most_moved
        assert (after == "test").sum() >= (before == "test").sum() - 1
    else:
        assert moved > 2     # the balanced search reshuffles: why nightly runs use the stable split


def test_one_loader_joins_the_split_with_the_table_and_names_what_is_stale(tmp_path):
    from oanet.errors import OanetError
    from oanet.split import load_parts, load_rows

    t = table(96, per_lot=8)
    s = make_split(t, aoi_v1_layout(), SplitConfig(folds=3))
    t.iloc[::-1].to_parquet(tmp_path / "table.parquet", index=False)         # table order does not matter
    s.to_parquet(tmp_path / "split.parquet", index=False)
    rows = load_rows(tmp_path / "table.parquet", tmp_path / "split.parquet", ("image", "label", "split", "fold"))
    assert list(rows["image"]) == list(s["image"]) and list(rows["fold"]) == list(s["fold"])   # split order
    assert "lot" in rows.columns and "group" not in rows.columns
    parts = load_parts(tmp_path / "table.parquet", tmp_path / "split.parquet")
    assert sum(len(p) for p in parts.values()) == len(s) and set(parts["test"]["split"]) == {"test"}

    def broken(table_: pd.DataFrame, match: str, columns=("image", "label", "split")):
        table_.to_parquet(tmp_path / "bad.parquet", index=False)
        with pytest.raises(OanetError, match=match):
            load_rows(tmp_path / "bad.parquet", tmp_path / "split.parquet", columns)

    broken(t.iloc[1:], "not in the table.*rerun the split stage")
    broken(pd.concat([t, t.iloc[:1]]), "more than once")
    broken(t.assign(label=1 - t["label"]), "labels differ.*rerun the split stage")
    broken(t, "lacks the columns \\['cohort'\\]", columns=("image", "label", "cohort"))
