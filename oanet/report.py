"""Stage `report`: one `reports/metrics.json` mapping each model to its test metrics.

Keys: `cnn`, `fusion`, each tabular model by its registry name, `bag` (their
average) and `gate` (all of them ensembled by the KL-divergence gate, when it ran). Values: accuracy, recall, precision, F1 and ROC AUC on the test split.
"""
from __future__ import annotations

import json
from pathlib import Path

from oanet.metrics import REPORTED_METRICS as METRICS


def collect(bag_metrics: dict, fusion_metrics: dict, gate_metrics: dict | None = None) -> dict[str, dict[str, float]]:
    models = {**bag_metrics.get("test", {}), **{k: fusion_metrics[k] for k in ("cnn", "fusion") if k in fusion_metrics},
              **({"gate": gate_metrics["gate"]} if gate_metrics and "gate" in gate_metrics else {})}
    if not models:
        raise ValueError("no test metrics found: run the bag and fuse stages first")
    return {name: {m: float(values[m]) for m in METRICS} for name, values in models.items()}


def read_json(path: str | Path | None) -> dict:
    """The JSON object in `path`, or {} when there is no such file (a stage that has not run)."""
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else {}


def run(bag_metrics_path: str | Path, fusion_metrics_path: str | Path, out: str | Path = "reports/metrics.json",
        gate_metrics_path: str | Path | None = None) -> dict:
    merged = collect(read_json(bag_metrics_path), read_json(fusion_metrics_path), read_json(gate_metrics_path))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def table(merged: dict[str, dict[str, float]]) -> str:
    """Markdown table of the merged metrics, best recall first."""
    rows = sorted(merged.items(), key=lambda kv: -kv[1]["recall"])
    head = "| model | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS)
    return head + "\n" + "\n".join(
        f"| {name} | " + " | ".join(f"{100 * v[m]:.1f}" if m != "roc_auc" else f"{v[m]:.3f}" for m in METRICS) + " |"
        for name, v in rows)
