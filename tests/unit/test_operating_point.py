"""bench/operating_point.py on a small hand-made evaluation: the one val rule per model, the oracle,
and the gate's row read from the evaluation.json beside the predictions."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

MEMBERS = ("cnn", "fusion", "lightgbm", "catboost", "gbm", "random_forest", "bag", "concat", "late_fusion", "gate")


def predictions(repeats: int = 2, rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """Every model's probability on val and test rows: the label plus noise, so each ranks well but not perfectly."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(repeats):
        for part in ("val", "test"):
            label = (rng.random(rows) < 0.35).astype(int)
            for m in MEMBERS if part == "test" else MEMBERS[:-1]:      # the gate's val rows are not kept
                prob = 1 / (1 + np.exp(-(3 * (2 * label - 1) + rng.normal(0, 2, rows))))
                out.append(pd.DataFrame({"repeat": r, "encoder": "narrow_resnet", "part": part, "model": m,
                                         "row": np.arange(rows), "label": label, "prob": prob}))
    return pd.concat(out, ignore_index=True)


def operating_point(repo_root, predictions) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(repo_root / "bench" / "operating_point.py"),
                           "--predictions", str(predictions)], capture_output=True, text=True, timeout=300)


def test_the_gate_row_is_the_evaluations_own_per_repeat_numbers(tmp_path, repo_root):
    predictions().to_parquet(tmp_path / "predictions.parquet")
    gate = {"recall": [0.91, 0.95], "accuracy": [0.92, 0.90], "f1": [0.9, 0.9], "roc_auc": [0.97, 0.96]}
    (tmp_path / "evaluation.json").write_text(json.dumps(
        {"clean": {"narrow_resnet": {"gate": {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v}
                                              for k, v in gate.items()}}}}))
    run = operating_point(repo_root, tmp_path / "predictions.parquet")
    assert run.returncode == 0, run.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in run.stdout.splitlines() if line.startswith("|") and not line.startswith("|:")}
    assert rows["gate"][:4] == ["91.0 ± 1.0", "93.0 ± 2.0", "90.0 ± 0.0", "0.965 ± 0.005"]   # as evaluated
    assert all("±" in c for c in rows["late_fusion"][:4])              # the others: scored here by the val rule
    assert all(rows[m][4] for m in ("gate", "late_fusion", "cnn"))     # the oracle column is filled for every model
    assert any(w.startswith("stack: log(1-p) of cnn, bag, fusion, out of fold") for w in rows)


def test_without_an_evaluation_json_the_gate_has_only_the_oracle(tmp_path, repo_root):
    predictions(repeats=1).to_parquet(tmp_path / "predictions.parquet")
    run = operating_point(repo_root, tmp_path / "predictions.parquet")
    assert run.returncode == 0, run.stderr
    gate = next(line for line in run.stdout.splitlines() if line.startswith("| gate "))
    cells = [c.strip() for c in gate.split("|")[2:-1]]
    assert cells[:4] == ["", "", "", ""] and cells[4] not in ("", "never")
