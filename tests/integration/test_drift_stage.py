"""The drift stage inside `oanet train`: a reference beside the models, the test rows reported against it,
with what the gate and the models did; and the nightly step's report of tonight's rows."""
from __future__ import annotations

import json
from dataclasses import replace

import browser
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow   # reads the session's `trained` fixture: `oanet train` on 72 images (a minute or more)


@pytest.fixture(scope="module")
def drift_paths(trained):
    work, data, output = trained
    return work, data, output, yaml.safe_load((work / "params.yaml").read_text())["paths"]


def test_train_writes_the_reference_and_reports_the_test_rows(drift_paths):
    from oanet.drift.reference import DriftReference

    work, _, output, cfg = drift_paths
    reference = DriftReference.load(cfg["drift_reference"])
    split = pd.read_parquet(work / "split.parquet")
    assert reference.n_rows == int((split["split"] == "train").sum())
    assert len(reference.calibration["ocr:gray_mean"]) == int((split["split"] == "val").sum())
    summary = json.loads((work / "drift" / "test-rows" / "summary.json").read_text())
    assert summary["rows"] == int((split["split"] == "test").sum())
    assert "test rows: " + summary["headline"] in output
    champion = summary["champion"]                     # the models of this training, on the test rows
    assert champion["rows"] == summary["rows"] and 0 <= champion["image_off"] <= champion["image_unusual"]
    gate = pd.read_parquet(work / "gate.parquet")
    assert champion["mean_prob"] == pytest.approx(gate["prob_gate"].mean(), abs=1e-6)
    assert set(reference.decisions) == set(champion)   # the same view of the clean val rows, for comparison


def test_the_test_row_report_shows_the_champion_table(drift_paths):
    work, *_ = drift_paths
    page = (work / "drift" / "test-rows" / "index.html").read_text()
    found = {t.id: t for t in browser.tables(page)}
    assert found["champion"].rows == 6 and found["drifted"].rows > 10


def test_the_nightly_step_reports_only_tonights_rows(drift_paths, tmp_path):
    from oanet.config import load_params
    from oanet.drift.nights import report_taken

    work, data, _, cfg = drift_paths
    p = load_params(work / "params.yaml")
    p = replace(p, paths=replace(p.paths, ocr=str(work / "clean.parquet"), drift_reports=str(tmp_path)))
    tonight = pd.read_parquet(work / "clean.parquet")["image"].tolist()[:30]
    result = report_taken(p, tonight, "night-test")
    assert result.summary["rows"] == 30 and (tmp_path / "night-test" / "index.html").is_file()
    assert [e["night"] for e in map(json.loads, (tmp_path / "history.jsonl").read_text().splitlines())] == ["night-test"]
    assert report_taken(p, [], "night-empty") == "drift: no new images tonight, nothing to compare"


def test_a_bundle_is_a_baseline_with_its_own_reference_and_models(drift_paths, tmp_path):
    """`--against BUNDLE` (and the champion's bundle in the nightly): the bundle's reference, and the
    view of the bundle's models, named in the report; a folder without a reference is refused."""
    import shutil

    from oanet.config import load_params
    from oanet.drift.nights import report_taken
    from oanet.drift.reference import DriftError

    work, _, _, cfg = drift_paths
    p = load_params(work / "params.yaml")
    p = replace(p, paths=replace(p.paths, ocr=str(work / "clean.parquet"), drift_reports=str(tmp_path / "reports")))
    bundle = tmp_path / "bundle"
    shutil.copytree(cfg["bag_models"], bundle / "bag")
    shutil.copytree(cfg["fusion_models"], bundle / "fusion")
    shutil.copy(cfg["gate"], bundle / "gate.json")
    tonight = pd.read_parquet(work / "clean.parquet")["image"].tolist()[:30]
    with pytest.raises(DriftError, match="without drift_reference.json"):
        report_taken(p, tonight, "night-bundle", against=bundle)
    shutil.copy(cfg["drift_reference"], bundle / "drift_reference.json")
    by_bundle = report_taken(p, tonight, "night-bundle", against=bundle, against_name="the champion's bundle (v7)")
    by_paths = report_taken(p, tonight, "night-paths")
    assert by_bundle.summary["reference"]["against"] == "the champion's bundle (v7)"
    assert "the champion&#x27;s bundle (v7)" in by_bundle.page.read_text()
    assert by_bundle.summary["champion"] == by_paths.summary["champion"] != {}     # the same models, read there
    assert [i["score"] for i in by_bundle.summary["items"]] == [i["score"] for i in by_paths.summary["items"]]
    shutil.rmtree(bundle / "fusion")            # the view is of the bundle's models, not the project's:
    assert report_taken(p, tonight, "night-partial", against=bundle).summary["champion"] == {}   # none shown
