"""`oanet train`: split, bag, fuse and report wired together on a tiny OCR'd set."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

N, PER_LOT = 72, 12   # 6 lots: enough for a grouped 7:3 split and 2 folds


def test_train_writes_every_models_metrics(repo_root, ocr, tmp_path):
    from oanet.config import IngestConfig, SynthConfig
    from oanet.ingest.stage import run as ingest
    from oanet.synth.stage import run as synth

    data = tmp_path / "aoi"
    synth(SynthConfig(n=N, seed=5, units_per_lot=PER_LOT), data, progress=False)
    ingest(IngestConfig(cache=None), data, tmp_path / "clean.parquet", tmp_path / "q.parquet", ocr=ocr)

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    w = str(tmp_path)
    params["split"].update(table=f"{w}/clean.parquet", out=f"{w}/split.parquet", folds=2)
    params["bag"].update(table=f"{w}/clean.parquet", split=f"{w}/split.parquet", models=["gbm", "random_forest"],
                         out_dir=f"{w}/models/bag", predictions=f"{w}/bag.parquet", metrics=f"{w}/bag.json")
    params["fuse"].update(table=f"{w}/clean.parquet", split=f"{w}/split.parquet", data=str(data), image_size=32,
                          epochs=1, batch_size=16, align_dim=16, refine_dim=8, device="cpu",
                          out_dir=f"{w}/models/fusion", predictions=f"{w}/fusion.parquet", metrics=f"{w}/fusion.json")
    params["report"] = {"out": f"{w}/metrics.json"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    from oanet.cli import app

    res = CliRunner().invoke(app, ["train", "--params", str(tmp_path / "params.yaml")])
    assert res.exit_code == 0, res.output
    metrics = json.loads(Path(w, "metrics.json").read_text())
    assert set(metrics) == {"gbm", "random_forest", "bag", "cnn", "fusion"}
    for values in metrics.values():
        assert set(values) == {"accuracy", "recall", "precision", "f1", "roc_auc"}
        assert 0.0 <= values["accuracy"] <= 1.0
    assert Path(w, "models/fusion/fusion.pt").exists() and Path(w, "models/bag").is_dir()
    assert "| fusion |" in res.output
