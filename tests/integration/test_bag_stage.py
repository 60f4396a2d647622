"""Stage `bag` end to end on a small generated table (no OCR): 156 units in lots of 12,
the defect signal in one numeric field, 10% of every field missing."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from oanet.config import BagConfig, PathsConfig, SplitConfig
from oanet.layout import Field, Layout
from oanet.split import make_split

N, LOT = 156, 12
MODELS = ("lightgbm", "catboost", "gbm", "random_forest")


def make_layout() -> Layout:
    return Layout(name="bag-test", size=(640, 480), object_roi=(0, 160, 320, 480), fields=(
        Field(name="lot", key="LOT", dtype="str", role="group"),
        Field(name="signal", key="SIG", dtype="float"),
        Field(name="noise", key="NOISE", dtype="float"),
        Field(name="count", key="CNT", dtype="int"),
        Field(name="station", key="STN", dtype="category", categories=("A", "B", "C")),
    ))


def make_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = (rng.random(N) < 0.35).astype(int)
    table = pd.DataFrame({
        "image": [f"images/{i:04d}.png" for i in range(N)],
        "label": label,
        "lot": [f"L{i // LOT:04d}" for i in range(N)],
        "signal": 1.6 * label + rng.normal(size=N),
        "noise": rng.normal(size=N),
        "count": pd.array(rng.integers(0, 9, N), dtype="Int64"),
        "station": pd.array(rng.choice(["A", "B", "C"], N), dtype="string"),
    })
    for col in ("signal", "noise", "count", "station"):
        table.loc[rng.random(N) < 0.10, col] = pd.NA
    return table


@pytest.fixture(scope="module")
def bag_run(tmp_path_factory):
    from oanet.tabular.stage import run

    work = tmp_path_factory.mktemp("bag")
    layout = make_layout()
    layout.save(work / "layout.yaml")
    table = make_table()
    table.to_parquet(work / "clean.parquet", index=False)
    split = make_split(table, layout, SplitConfig())
    split.to_parquet(work / "split.parquet", index=False)
    cfg = BagConfig(models=MODELS)
    paths = PathsConfig(clean=str(work / "clean.parquet"), split=str(work / "split.parquet"),
                        bag_models=str(work / "models"), bag_predictions=str(work / "pred.parquet"),
                        bag_metrics=str(work / "reports" / "bag_metrics.json"),
                        bag_importances=str(work / "reports" / "bag_importances.png"))
    result = run(cfg, paths, work / "layout.yaml", progress=False)
    return work, paths, split, result


def test_predictions_cover_every_row(bag_run):
    _, paths, split, _ = bag_run
    pred = pd.read_parquet(paths.bag_predictions)
    assert list(pred.columns) == ["image", "split", "fold", "label", *[f"prob_{m}" for m in MODELS], "prob_bag"]
    assert len(pred) == len(split) == N
    merged = pred.merge(split, on="image", suffixes=("", "_split"))
    assert (merged["split"] == merged["split_split"]).all() and (merged["fold"] == merged["fold_split"]).all()
    probs = pred[[f"prob_{m}" for m in MODELS] + ["prob_bag"]]
    assert probs.notna().all().all()                # OOF on every train row, a prediction on every test row
    test = pred[pred["split"] == "test"]                # the reported test scores are these rows' scores
    metrics = json.loads(open(paths.bag_metrics).read())["test"]
    for name in (*MODELS, "bag"):
        decided = test[f"prob_{name}"] >= metrics[name]["threshold"]
        assert metrics[name]["accuracy"] == pytest.approx((decided == (test["label"] == 1)).mean()), name
    np.testing.assert_allclose(pred["prob_bag"], probs.iloc[:, :-1].mean(axis=1))
    assert set(pred.loc[pred["split"] != "test", "fold"]) == set(range(5))
    assert (pred.loc[pred["split"] == "test", "fold"] == -1).all()


def test_metrics_json_has_cv_test_and_importances(bag_run):
    _, paths, _, result = bag_run
    metrics = json.loads(open(paths.bag_metrics).read())
    assert {"cv", "test", "importances"} <= set(metrics)
    assert set(metrics["cv"]) == {*MODELS, "bag"} and set(metrics["test"]) == {*MODELS, "bag"}
    for name in MODELS:
        cv = metrics["cv"][name]
        assert set(cv) == {"accuracy", "recall", "precision", "f1", "roc_auc", "pr_auc", "threshold"}
        assert set(cv["roc_auc"]) == {"mean", "std", "values"}
        assert len(metrics["cv_folds"][name]) == 5
        assert cv["roc_auc"]["values"] == pytest.approx([f["roc_auc"] for f in metrics["cv_folds"][name]])
        assert list(metrics["importances"][name]) == ["signal", "noise", "count", "station=A", "station=B",
                                                      "station=C"]
        imp = metrics["importances"][name]
        assert max(imp, key=imp.get) == "signal"
    assert result.cv == {k: v for k, v in metrics["cv"].items()}


def test_every_model_beats_chance_on_the_signal(bag_run):
    _, _, _, result = bag_run
    for name in (*MODELS, "bag"):
        assert result.cv[name]["roc_auc"]["mean"] > 0.7, name
        assert result.test[name]["roc_auc"] > 0.7, name


def test_models_schema_and_plot_are_written_and_reload(bag_run):
    from oanet.features import TabularSchema
    from oanet.tabular.stage import load_bag

    work, paths, _, result = bag_run
    for name in MODELS:
        assert result.models[name].exists()
    assert result.plot is not None and result.plot.stat().st_size > 1000
    assert result.plot.parent == work / "reports"
    schema, bag = load_bag(paths.bag_models)
    assert schema == TabularSchema.from_layout(make_layout())
    pred = pd.read_parquet(paths.bag_predictions)
    test = pred["split"] == "test"
    X = schema.matrix(make_table()[test.to_numpy()])
    np.testing.assert_allclose(bag.predict_proba(X)[:, 1], pred.loc[test, "prob_bag"])
    summary = result.summary()
    for name in (*MODELS, "bag"):
        assert name in summary


def test_unknown_model_and_stale_split_are_explained(bag_run, tmp_path):
    import dataclasses

    from oanet.errors import OanetError
    from oanet.tabular.stage import run

    work, paths, split, _ = bag_run
    with pytest.raises(OanetError, match="known: .*catboost"):
        run(BagConfig(models=("lightgbm", "svm")), paths, work / "layout.yaml", progress=False)
    stale = split.copy()
    stale.loc[0, "image"] = "images/gone.png"
    stale.to_parquet(tmp_path / "split.parquet", index=False)
    with pytest.raises(OanetError, match="rerun the split stage"):
        run(BagConfig(models=MODELS), dataclasses.replace(paths, split=str(tmp_path / "split.parquet")),
            work / "layout.yaml", progress=False)


def test_cli_runs_the_stage_from_params(bag_run, tmp_path, capsys):
    from typer.testing import CliRunner

    from oanet.cli import app

    work, paths, _, _ = bag_run
    params = {"paths": {"raw": str(work), "clean": paths.clean, "split": paths.split, "bag_models": str(tmp_path / "models"),
                        "bag_predictions": str(tmp_path / "pred.parquet"),
                        "bag_metrics": str(tmp_path / "bag_metrics.json"),
                        "bag_importances": str(tmp_path / "bag_importances.png")},
              "bag": {"models": ["lightgbm", "gbm"]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = CliRunner().invoke(app, ["bag", "--params", str(tmp_path / "params.yaml")])
    assert out.exit_code == 0, out.output
    assert "lightgbm" in out.output and "bag" in out.output
    pred = pd.read_parquet(tmp_path / "pred.parquet")
    assert list(pred.columns)[-3:] == ["prob_lightgbm", "prob_gbm", "prob_bag"]
