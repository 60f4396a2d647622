"""Loading a bag never unpickles a file outside its folder or one changed since it was saved
(issue 14, finding 14). The bag is a real one, saved by the `bag` stage on a small generated table."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oanet.config import BagConfig, PathsConfig, SplitConfig
from oanet.errors import OanetError
from oanet.layout import Field, Layout
from oanet.split import make_split


@pytest.fixture(scope="module")
def saved_bag(tmp_path_factory) -> Path:
    from oanet.tabular.stage import run

    work = tmp_path_factory.mktemp("bag")
    layout = Layout(name="bundle-test", size=(640, 480), object_roi=(0, 160, 320, 480), fields=(
        Field(name="lot", key="LOT", dtype="str", role="group"), Field(name="signal", key="SIG", dtype="float")))
    layout.save(work / "layout.yaml")
    rng = np.random.default_rng(0)
    label = (rng.random(96) < 0.4).astype(int)
    table = pd.DataFrame({"image": [f"images/{i:04d}.png" for i in range(96)], "label": label,
                          "lot": [f"L{i // 12:03d}" for i in range(96)], "signal": 1.5 * label + rng.normal(size=96)})
    table.to_parquet(work / "clean.parquet", index=False)
    make_split(table, layout, SplitConfig(folds=2)).to_parquet(work / "split.parquet", index=False)
    paths = PathsConfig(clean=str(work / "clean.parquet"), split=str(work / "split.parquet"),
                        bag_models=str(work / "bag"), bag_predictions=str(work / "pred.parquet"),
                        bag_metrics=str(work / "m.json"))
    run(BagConfig(models=("gbm",)), paths, work / "layout.yaml", progress=False, plot=False)
    return work / "bag"


@pytest.fixture
def bag(saved_bag, tmp_path) -> Path:
    copy = tmp_path / "bag"
    shutil.copytree(saved_bag, copy)
    return copy


class _Tripwire:
    """Unpickling this touches a file: proof that joblib.load ran on it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_Tripwire(marker)))


def _edit_manifest(bag: Path, **changes) -> None:
    manifest = json.loads((bag / "manifest.json").read_text())
    (bag / "manifest.json").write_text(json.dumps({**manifest, **changes}))


def test_a_saved_bag_loads_and_records_a_hash_per_file(bag):
    from oanet.tabular.stage import load_bag

    manifest = json.loads((bag / "manifest.json").read_text())
    assert set(manifest["sha256"]) == {"gbm.joblib", "schema.joblib"}
    schema, fitted = load_bag(bag)
    assert list(schema.columns) and fitted is not None


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_a_manifest_cannot_point_outside_the_bag(bag, tmp_path, where):
    from oanet.tabular.stage import load_bag

    outside, marker = tmp_path / "evil.joblib", tmp_path / "ran"
    _plant(outside, marker)
    _edit_manifest(bag, schema="../evil.joblib" if where == "parent" else str(outside))
    with pytest.raises(OanetError, match="inside"):
        load_bag(bag)
    assert not marker.exists()


def test_a_symlinked_member_is_refused(bag, tmp_path):
    from oanet.tabular.stage import load_bag

    outside, marker = tmp_path / "evil.joblib", tmp_path / "ran"
    _plant(outside, marker)
    (bag / "gbm.joblib").unlink()
    os.symlink(outside, bag / "gbm.joblib")
    with pytest.raises(OanetError, match="plain file"):
        load_bag(bag)
    assert not marker.exists()


def test_a_member_replaced_after_saving_is_not_unpickled(bag, tmp_path):
    from oanet.tabular.stage import load_bag

    marker = tmp_path / "ran"
    _plant(bag / "gbm.joblib", marker)
    with pytest.raises(OanetError, match="sha256"):
        load_bag(bag)
    assert not marker.exists()


def test_a_damaged_member_fails_with_a_clear_error(bag):
    from oanet.tabular.stage import load_bag

    with open(bag / "schema.joblib", "ab") as f:
        f.write(b"\0")                       # one byte appended: joblib alone would not notice
    with pytest.raises(OanetError, match="schema.joblib: sha256 differs"):
        load_bag(bag)
