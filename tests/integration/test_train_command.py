"""`oanet train`: split, bag, fuse, gate and report wired together on a tiny OCR'd set."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

N, PER_LOT = 72, 12   # 6 lots: enough for a grouped 7:3 split and 2 folds


def test_train_writes_every_models_metrics(repo_root, ocr, tmp_path):  # noqa: PLR0915 - one tiny set, many checks
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
    params["gate"].update(table=f"{w}/clean.parquet", split=f"{w}/split.parquet", data=str(data),
                          bag_dir=f"{w}/models/bag", fusion_dir=f"{w}/models/fusion", out=f"{w}/models/gate.json",
                          predictions=f"{w}/gate.parquet", metrics=f"{w}/gate.json", device="cpu",
                          off_factors=[2.0, 5.0], temperatures=[1.0])
    params["report"] = {"out": f"{w}/metrics.json"}
    params["evaluate"].update(table=f"{w}/clean.parquet", data=str(data), out_dir=f"{w}/eval",
                              metrics=f"{w}/eval/evaluation.json", robustness_encoder="alexnet", device="cpu",
                              missing_rates=[0.0, 1.0], grid_ratios=[0.0, 0.5],
                              quick=dict(image_size=32, epochs=1, batch_size=16, repeats=2, encoders=["alexnet"]))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    from oanet.cli import app

    res = CliRunner().invoke(app, ["train", "--params", str(tmp_path / "params.yaml")])
    assert res.exit_code == 0, res.output
    metrics = json.loads(Path(w, "metrics.json").read_text())
    assert set(metrics) == {"gbm", "random_forest", "bag", "cnn", "fusion", "gate"}
    for values in metrics.values():
        assert set(values) == {"accuracy", "recall", "precision", "f1", "roc_auc"}
        assert 0.0 <= values["accuracy"] <= 1.0
    assert Path(w, "models/fusion/fusion.pt").exists() and Path(w, "models/bag").is_dir()
    assert "| fusion |" in res.output and "gate: k" in res.output
    check_gate_artifact_reproduces_its_predictions(tmp_path, data)
    check_bundle_decides_from_raw_bytes(tmp_path, data, ocr)
    check_evaluate_writes_the_tables_plots_and_goals(tmp_path)


def check_bundle_decides_from_raw_bytes(w: Path, data: Path, ocr):
    """Raw image bytes in, decision out; a blank panel leans on the image, junk is accounted for."""
    import io

    import numpy as np
    import pandas as pd
    from PIL import Image

    from oanet.config import load_params
    from oanet.serving import OUTPUT_COLUMNS, DefectPipeline, package_bundle

    p = load_params(w / "params.yaml")
    folder = package_bundle(w / "bundle", data / "layout.yaml", p.ingest, p.bag.out_dir, p.fuse.out_dir, p.gate.out)
    pipe = DefectPipeline.load(folder, device="cpu")
    pipe._ocr = ocr                                        # the session's engine: no second cnocr start-up
    names = pd.read_csv(data / "labels.csv")["image"].head(3).tolist()
    arr = np.asarray(Image.open(data / names[0]).convert("L")).copy()
    x0, y0, x1, y1 = pipe.layout.object_roi
    panel = np.ones(arr.shape, bool)
    panel[y0:y1, x0:x1] = False
    arr[panel] = 0                                         # the object stays, the panel is wiped
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    items = [(n, (data / n).read_bytes()) for n in names] + [("blank.png", buf.getvalue()), ("junk.png", b"\x00")]
    out = pipe.predict(items)
    assert list(out.columns) == list(OUTPUT_COLUMNS) and list(out["image"]) == [*names, "blank.png", "junk.png"]
    ok = out.iloc[:4]
    assert ok["prob"].between(0, 1).all() and set(ok["decision"]) <= {0, 1} and (ok["error"] == "").all()
    assert all(abs(sum(json.loads(w_).values()) - 1) < 1e-9 for w_ in ok["weights"])
    read = json.loads(out.loc[0, "fields"])
    assert set(read) == {f.name for f in pipe.layout.fields} and read["lot"]["reason"] is None
    blank = out.loc[3]
    assert {v["reason"] for v in json.loads(blank["fields"]).values()} == {"blank_panel"}
    weights = json.loads(blank["weights"])
    assert weights["cnn"] == 1.0 and blank["driver"] == "image"   # every OCR-reading member is off
    junk = out.loc[4]
    assert junk["decision"] == -1 and np.isnan(junk["prob"]) and junk["error"].startswith("not_an_image")


def check_evaluate_writes_the_tables_plots_and_goals(w: Path):
    from oanet.cli import app

    res = CliRunner().invoke(app, ["evaluate", "--params", str(w / "params.yaml")])
    assert res.exit_code == 0, res.output
    ev = json.loads((w / "eval/evaluation.json").read_text())
    assert ev["repeats"] == 2 and ev["profile"]["name"] == "quick" and ev["profile"]["card"] == "cpu"
    models = {"cnn", "concat", "align", "fusion", "gate", "bag", "best_tabular", "late_fusion", "gbm", "random_forest"}
    assert set(ev["clean"]["alexnet"]) == models
    assert set(ev["table2"]) == {"clean", "ocr_loss", "gridmask", "both"}
    assert set(ev["sweeps"]["alexnet"]) == {"missing=0", "missing=1", "grid=0", "grid=0.5"}
    # With every OCR value gone every row looks the same to the OCR-only members: constant output, AUC 0.5.
    assert ev["sweeps"]["alexnet"]["missing=1"]["bag"]["roc_auc"]["mean"] == 0.5
    assert ev["clean"]["alexnet"]["bag"]["roc_auc"]["mean"] > 0.5
    assert set(ev["goals"]["alexnet"]) >= {"recall_90_accuracy_88", "recall_10_over_cnn", "beats_every_baseline",
                                           "robust_within_5"}
    ablation = (w / "eval/ablation.md").read_text()
    assert "+ alignment + refinement + gate" in ablation and "early concatenation fusion" in ablation
    assert "| no perturbation | OANet |" in (w / "eval/robustness.md").read_text()
    for png in ("sweeps", "confusion", "pr_curve"):
        assert (w / "eval/plots" / f"{png}.png").stat().st_size > 5000


def check_gate_artifact_reproduces_its_predictions(w: Path, data: Path):
    """A fresh load of the saved gate and models gives the stage's test decisions exactly."""
    import numpy as np
    import pandas as pd

    from oanet.gate.gate import GateArtifact
    from oanet.gate.members import load_members
    from oanet.gate.stage import gate_inputs

    artifact = GateArtifact.load(w / "models/gate.json")
    members = load_members(w / "models/bag", w / "models/fusion")
    rows, images = gate_inputs(w / "clean.parquet", w / "split.parquet", data, members.image_size,
                               members.object_roi)["test"]
    decision = artifact.decide(members.predict(rows, images), rows, images)
    saved = pd.read_parquet(w / "gate.parquet")
    np.testing.assert_allclose(decision.prob, saved["prob_gate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(decision.weights.sum(axis=1), 1.0)
    assert list(decision.driver) == list(saved["driver"])
    report = json.loads((w / "gate.json").read_text())
    assert set(report["scenarios"]) == {"clean", "ocr_loss", "gridmask", "both"}
    assert report["calibration"]["threshold"] == artifact.gate.threshold
