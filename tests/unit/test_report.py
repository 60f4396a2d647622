"""reports/metrics.json: every model's test metrics under its name."""
from __future__ import annotations

import json

import pytest

from oanet.report import METRICS, collect, run, table


def metrics(acc: float) -> dict:
    return {"accuracy": acc, "recall": acc - 0.1, "precision": acc, "f1": acc - 0.05, "roc_auc": acc + 0.05}


def test_collect_names_every_model():
    bag = {"cv": {}, "test": {"lightgbm": metrics(0.8), "gbm": metrics(0.7), "bag": metrics(0.82)}}
    fusion = {"cnn": metrics(0.6), "fusion": metrics(0.9), "settings": {"encoder": "resnet18"}}
    merged = collect(bag, fusion)
    assert set(merged) == {"lightgbm", "gbm", "bag", "cnn", "fusion"}
    assert all(set(v) == set(METRICS) for v in merged.values())
    assert merged["fusion"]["accuracy"] == 0.9
    assert table(merged).splitlines()[2].startswith("| fusion |")   # best recall first


def test_run_writes_json_and_refuses_nothing(tmp_path):
    (tmp_path / "bag.json").write_text(json.dumps({"test": {"gbm": metrics(0.7)}}))
    out = tmp_path / "reports" / "metrics.json"
    run(tmp_path / "bag.json", tmp_path / "missing.json", out)
    assert json.loads(out.read_text())["gbm"]["accuracy"] == 0.7
    with pytest.raises(ValueError, match="no test metrics"):
        run(tmp_path / "none.json", tmp_path / "missing.json", out)
