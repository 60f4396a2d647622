"""Behaviour of the `fuse` stage on a tiny generated AOI set (true panel values as the OCR table).

`oanet fuse` runs once for the module (32 px, 2 epochs, one thread); the tests read its
outputs, rerun it for determinism, and score masked and perturbed inputs with the saved
models. Fixtures are generated, never downloaded.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from oanet.config import PathsConfig, updated

N = 30
METRICS = {"accuracy", "recall", "precision", "f1", "roc_auc", "pr_auc", "threshold"}


@pytest.fixture(scope="module")
def fuse_setup(tmp_path_factory):
    """A 30-image AOI set, its table and split, and a params file for a tiny `fuse` run."""
    from oanet.config import SplitConfig, SynthConfig
    from oanet.layout import load_layout
    from oanet.split import make_split
    from oanet.synth.stage import run as synth

    root = tmp_path_factory.mktemp("fuse")
    data = root / "aoi"
    synth(SynthConfig(n=N, seed=5), data, progress=False)
    table = pd.read_csv(data / "truth.csv", dtype={"station": str, "light": str}).merge(
        pd.read_csv(data / "labels.csv")[["image", "label"]], on="image")
    table.to_parquet(root / "table.parquet", index=False)
    make_split(table, load_layout(data / "layout.yaml"), SplitConfig(group_by_lot=False)).to_parquet(
        root / "split.parquet", index=False)
    paths = dict(clean=str(root / "table.parquet"), split=str(root / "split.parquet"), raw=str(data),
                 fusion_models=str(root / "models"), fusion_predictions=str(root / "pred.parquet"),
                 fusion_metrics=str(root / "reports" / "fusion_metrics.json"),
                 fusion_curves=str(root / "reports" / "fusion_curves.png"))
    fuse = {"network": dict(encoder="resnet18", align_dim=16, refine_dim=8, tab_hidden=16, head_hidden=16,
                            image_norm="dataset", tta=False, fill_occlusion=False),            # the paper's recipe
            "optimiser": dict(epochs=2, batch_size=8, optimizer="sgd", lr=0.01, weight_decay=0.0005, schedule="cosine"),
            "training": dict(image_size=32, jitter=0.0, image_label="unit", staged=False),
            "device": "cpu", "num_threads": 1, "seed": 7}
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"paths": paths, "fuse": fuse}))
    return root, data, params, table


@pytest.fixture(scope="module")
def fuse_run(fuse_setup):
    from typer.testing import CliRunner

    from oanet.cli import app

    root, data, params, table = fuse_setup
    threads = torch.get_num_threads()
    result = CliRunner().invoke(app, ["fuse", "--params", str(params), "--quiet"])
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root, data, params, table, result.output


def _cfg(params: Path):
    from oanet.config import load_params
    return load_params(params).fuse


def test_cli_writes_metrics_predictions_models_and_curves(fuse_run):
    root, _, _, _, output = fuse_run
    assert "cnn" in output and "fusion" in output
    metrics = json.loads((root / "reports" / "fusion_metrics.json").read_text())
    test = pd.read_parquet(root / "pred.parquet").query("split == 'test'")
    for name in ("cnn", "fusion"):
        assert set(metrics[name]) == METRICS
        decided = test[f"prob_{name}"] >= metrics[name]["threshold"]      # the test rows' score, recomputed
        assert metrics[name]["accuracy"] == pytest.approx((decided == (test["label"] == 1)).mean())
        assert metrics[name]["recall"] == pytest.approx(decided[test["label"] == 1].mean())
    assert metrics["settings"]["network"]["encoder"] == "resnet18" and metrics["settings"]["training"]["image_size"] == 32
    assert (root / "models" / "cnn.pt").exists() and (root / "models" / "fusion.pt").exists()
    assert (root / "reports" / "fusion_curves.png").stat().st_size > 1000


def test_predictions_cover_the_val_and_test_rows_only(fuse_run):
    root, *_ = fuse_run
    pred = pd.read_parquet(root / "pred.parquet")
    split = pd.read_parquet(root / "split.parquet")
    assert list(pred.columns) == ["image", "split", "label", "prob_cnn", "prob_fusion"]
    held_out = split[split["split"] != "train"]
    assert set(pred["image"]) == set(held_out["image"]) and len(pred) == len(held_out)
    assert set(pred["split"]) == {"val", "test"}
    probs = pred[["prob_cnn", "prob_fusion"]]
    assert probs.notna().all().all() and (probs.nunique() > 1).all()     # a score per row, not one constant


def test_pca_refinement_was_fitted_on_the_training_rows_only(fuse_run):
    from oanet.fusion.stage import load_bundle

    root, *_ = fuse_run
    n_train = int((pd.read_parquet(root / "split.parquet")["split"] == "train").sum())
    bundle = load_bundle(root / "models" / "fusion.pt")
    assert int(bundle.model.refinement.fit_rows) == n_train
    assert json.loads((root / "reports" / "fusion_metrics.json").read_text())["settings"]["refine_fit_rows"] == n_train


def test_saved_models_reproduce_the_stage_predictions_from_raw_images(fuse_run):
    from oanet.fusion.stage import load_bundle

    root, data, _, table, _ = fuse_run
    pred = pd.read_parquet(root / "pred.parquet")
    rows = table.set_index("image").loc[pred["image"]].reset_index()
    for name in ("cnn", "fusion"):
        bundle = load_bundle(root / "models" / f"{name}.pt")
        assert bundle.image_size == 32 and bundle.object_roi == (0, 160, 320, 480)
        assert np.allclose(bundle.predict_proba(rows, data), pred[f"prob_{name}"], atol=1e-5)


def test_a_model_saved_before_the_network_section_still_loads_and_predicts_the_same(fuse_run, tmp_path):
    """Champions registered by older code keep scoring: format /1 saved the arch flat."""
    from oanet.fusion.stage import load_bundle

    root, data, _, table, _ = fuse_run
    saved = torch.load(root / "models" / "fusion.pt", map_location="cpu", weights_only=True)
    arch = saved["arch"]
    old = {**saved, "format": "oanet-fusion/1", "arch": {**arch.pop("network"), **arch}}
    torch.save(old, tmp_path / "old.pt")
    rows = table.head(8)
    assert np.array_equal(load_bundle(tmp_path / "old.pt").predict_proba(rows, data),
                          load_bundle(root / "models" / "fusion.pt").predict_proba(rows, data))
    torch.save({**saved, "format": "oanet-fusion/0"}, tmp_path / "other.pt")
    with pytest.raises(Exception, match="not a saved fusion model"):
        load_bundle(tmp_path / "other.pt")


def test_same_seed_gives_the_same_metrics(fuse_run, tmp_path):
    from oanet.fusion.stage import run

    root, data, params, _, _ = fuse_run
    from oanet.config import load_params

    paths = dataclasses.replace(load_params(params).paths, fusion_models=str(tmp_path / "m"),
                                fusion_predictions=str(tmp_path / "p.parquet"),
                                fusion_metrics=str(tmp_path / "r" / "m.json"),
                                fusion_curves=str(tmp_path / "r" / "curves.png"))
    again = run(_cfg(params), paths, data / "layout.yaml")
    first = json.loads((root / "reports" / "fusion_metrics.json").read_text())
    for name in ("cnn", "fusion"):
        assert again.metrics[name] == first[name]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), pd.read_parquet(root / "pred.parquet"))


@pytest.mark.parametrize("masked", [["sinter_temp_c"], ["station"], "all"])
def test_masked_fields_at_inference_never_crash(fuse_run, masked):
    from oanet.fusion.stage import load_bundle

    root, data, _, table, _ = fuse_run
    bundle = load_bundle(root / "models" / "fusion.pt")
    rows = table.head(6).copy()
    fields = list(bundle.schema.fields) if masked == "all" else masked
    rows[fields] = None
    prob = bundle.predict_proba(rows, data)
    assert prob.shape == (6,) and np.isfinite(prob).all()


def test_training_with_every_field_masked_or_a_field_never_read(fuse_setup):
    from oanet.features import TabularSchema
    from oanet.fusion.data import load_rois, tabular_input
    from oanet.fusion.model import ArchConfig
    from oanet.fusion.train import TrainData, build_model, fit, predict_proba, refit_refinement
    from oanet.layout import load_layout

    _, data, params, table = fuse_setup
    layout = load_layout(data / "layout.yaml")
    schema = TabularSchema.from_layout(layout)
    images = load_rois(data, table["image"].tolist(), layout.object_roi, 32)
    never_read = table.assign(press_mpa=np.nan, light=None)
    for rows, mask_prob in ((table, 1.0), (never_read, 0.2)):
        cfg = updated(_cfg(params), {"optimiser": {"epochs": 1}, "training": {"mask_prob": mask_prob}})
        d = TrainData.build(images, tabular_input(schema, rows), rows["label"], schema.field_of_column())
        model = build_model(ArchConfig.of(cfg.network, len(schema.columns)), None, torch.device("cpu"))
        hist = fit(model, d, cfg).history
        refit_refinement(model, d)
        assert np.isfinite(hist[-1]["loss"])
        assert np.isfinite(predict_proba(model, d)).all()


def test_unknown_encoder_fails_with_the_known_names(fuse_setup):
    from oanet.fusion.encoders import UnknownEncoderError
    from oanet.fusion.stage import run

    _, data, params, _ = fuse_setup
    with pytest.raises(UnknownEncoderError, match="known: alexnet, vgg16, resnet18"):
        run(updated(_cfg(params), {"network": {"encoder": "lenet"}}), PathsConfig(), data / "layout.yaml")
