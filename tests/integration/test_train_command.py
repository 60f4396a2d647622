"""The model pipeline on one tiny OCR'd set: `oanet train` (split, bag, fuse, gate, report), the
saved gate, the serving bundle, `oanet evaluate` (the `trained` fixture is in conftest.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

# every test here reads the session's `trained` fixture: `oanet train` on 72 images (a minute or more)
pytestmark = pytest.mark.slow


def test_train_writes_every_models_metrics(trained):
    tmp_path, data, output = trained
    w = str(tmp_path)
    metrics = json.loads(Path(w, "metrics.json").read_text())
    assert set(metrics) == {"gbm", "random_forest", "bag", "cnn", "fusion", "gate"}
    for values in metrics.values():
        assert set(values) == {"accuracy", "recall", "precision", "f1", "roc_auc"}
    # the table reports what the predictions score (a check that can fail, unlike 0 <= accuracy <= 1)
    import pandas as pd

    fused = pd.read_parquet(Path(w, "fusion.parquet"))
    test = fused[fused["split"] == "test"]
    for name in ("cnn", "fusion"):
        decided = test[f"prob_{name}"] >= 0.5
        assert metrics[name]["accuracy"] == pytest.approx((decided == (test["label"] == 1)).mean())
        assert metrics[name]["recall"] == pytest.approx(decided[test["label"] == 1].mean())
    gate = pd.read_parquet(Path(w, "gate.parquet"))
    assert set(gate["image"]) == set(test["image"])                   # the same test rows
    assert metrics["gate"]["accuracy"] == pytest.approx((gate["decision"] == gate["label"]).mean())
    bag = json.loads(Path(w, "bag.json").read_text())["test"]["bag"]
    assert metrics["bag"] == pytest.approx({m: bag[m] for m in metrics["bag"]})
    assert Path(w, "models/fusion/fusion.pt").exists() and Path(w, "models/bag").is_dir()
    assert "| fusion |" in output and "gate: k" in output


def test_bundle_decides_from_raw_bytes(trained, ocr):
    """Raw image bytes in, decision out; a blank panel leans on the image, junk is accounted for."""
    w, data, _ = trained
    import io

    import numpy as np
    import pandas as pd
    from PIL import Image

    from oanet.config import load_params
    from oanet.serving import OUTPUT_COLUMNS, DefectPipeline, package_bundle

    p = load_params(w / "params.yaml")
    folder = package_bundle(w / "bundle", data / "layout.yaml", p.ingest, p.paths.bag_models, p.paths.fusion_models,
                            p.paths.gate)
    pipe = DefectPipeline.load(folder, device="cpu")
    assert pipe.ingest["charset"] == p.ingest.charset == "layout"   # served as trained: same recogniser head
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
    assert (ok["decision"] == (ok["prob"] >= ok["threshold"]).astype(int)).all() and (ok["error"] == "").all()
    assert all(abs(sum(json.loads(w_).values()) - 1) < 1e-9 for w_ in ok["weights"])
    read = json.loads(out.loc[0, "fields"])
    assert set(read) == {f.name for f in pipe.layout.fields} and read["lot"]["reason"] is None
    blank = out.loc[3]
    assert {v["reason"] for v in json.loads(blank["fields"]).values()} == {"blank_panel"}
    weights = json.loads(blank["weights"])
    assert weights["cnn"] == 1.0 and blank["driver"] == "image"   # every OCR-reading member is off
    junk = out.loc[4]
    assert junk["decision"] == -1 and np.isnan(junk["prob"]) and junk["error"].startswith("not_an_image")


def test_evaluate_writes_the_tables_plots_and_goals(trained):
    from oanet.cli import app

    w, _, _ = trained
    res = CliRunner().invoke(app, ["evaluate", "--params", str(w / "params.yaml")])
    assert res.exit_code == 0, res.output
    ev = json.loads((w / "eval/evaluation.json").read_text())
    assert ev["repeats"] == 2 and ev["profile"]["name"] == "quick" and ev["profile"]["card"] == "cpu"
    models = {"cnn", "cnn_object", "concat", "align", "fusion", "gate", "bag", "best_tabular", "late_fusion", "gbm",
              "random_forest"}
    assert set(ev["clean"]["alexnet"]) == models
    assert set(ev["table2"]) == {"clean", "ocr_loss", "gridmask", "both"}
    assert set(ev["sweeps"]["alexnet"]) == {"missing=0", "missing=1", "grid=0", "grid=0.5"}
    # With every OCR value gone every row looks the same to the OCR-only members: constant output, AUC 0.5.
    assert ev["sweeps"]["alexnet"]["missing=1"]["bag"]["roc_auc"]["mean"] == 0.5
    assert ev["clean"]["alexnet"]["bag"]["roc_auc"]["mean"] > 0.5
    # Every model's decision threshold is the one chosen on val rows (recorded per repeat), not 0.5 or a test choice.
    for model, stats in ev["clean"]["alexnet"].items():
        if model != "gate":
            chosen = [rep["alexnet"]["val_thresholds"][model] for rep in ev["gates"]]
            assert stats["threshold"]["mean"] == pytest.approx(sum(chosen) / len(chosen)), model
    assert set(ev["goals"]["alexnet"]) >= {"recall_93_accuracy_90", "recall_10_over_cnn", "beats_every_baseline",
                                           "robust_within_5", "auc_at_or_above_every_baseline", "losses"}
    ablation = (w / "eval/ablation.md").read_text()
    assert "+ alignment + refinement + gate" in ablation and "early concatenation fusion" in ablation
    assert "| no perturbation | OANet |" in (w / "eval/robustness.md").read_text()
    for png in ("sweeps", "confusion", "pr_curve"):
        assert (w / "eval/plots" / f"{png}.png").stat().st_size > 5000


def test_gate_artifact_reproduces_its_predictions(trained):
    """A fresh load of the saved gate and models gives the stage's test decisions exactly."""
    w, data, _ = trained
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
    np.testing.assert_array_equal(decision.decision, saved["decision"])
