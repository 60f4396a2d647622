"""Stage `gate`: fit the modality references, calibrate the gate on val, score the test split.

Reads the OCR table, the split, the images and the bag and fuse stages' models (paths.clean,
paths.split, paths.raw, paths.bag_models, paths.fusion_models); writes
- paths.gate: the gate artifact (JSON: references, skills, thresholds, k, tau, decision threshold,
  calibration grid), versioned by DVC beside the models;
- paths.gate_predictions: per test row the gate probability and decision, the driving modality,
  every member's weight and probability;
- paths.gate_metrics: {"gate": test metrics (clean), "scenarios": {scenario: {member or gate: metrics}},
  "calibration": chosen constants, "batch_divergence": {part: {modality: KL}}}.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import GateConfig, PathsConfig
from oanet.metrics import binary_metrics


@dataclass(frozen=True)
class GateResult:
    metrics: dict
    artifact: Path
    predictions: Path
    seconds: float

    def summary(self) -> str:
        cal = self.metrics["calibration"]
        cuts = ", ".join(f"{r} {t:.2f}" for r, t in cal["threshold"].items())
        lines = [f"gate: k {cal['off_factor']:g}, tau {cal['temperature']:g}, thresholds {cuts} "
                 f"(val pooled recall {cal['recall']:.3f} accuracy {cal['accuracy']:.3f}"
                 f"{'' if cal['floor_met'] else ', accuracy floor NOT met'}); {self.seconds:.1f} s",
                 *([] if cal["floor_met"] else [
                     f"  warning: no gate setting reaches gate.min_accuracy {cal['min_accuracy']:g} on val, so the "
                     "thresholds maximise recall + specificity instead; set gate.min_accuracy to what this line "
                     "can reach (the val accuracy above) to choose for recall under it; where fuse warned that "
                     "its models learned nothing, no threshold helps: look at the labels and the data first"]),
                 f"  {'test scenario':<10} " + " ".join(f"{m:>13}" for m in self.metrics["scenarios"]["clean"])]
        for name, rows in self.metrics["scenarios"].items():
            lines.append(f"  {name:<10} recall " + " ".join(f"{v['recall']:13.3f}" for v in rows.values()))
            lines.append(f"  {'':<10} acc    " + " ".join(f"{v['accuracy']:13.3f}" for v in rows.values()))
        lines.append(f"  written: {self.artifact}, {self.predictions}")
        return "\n".join(lines)


def gate_inputs(table_path, split_path, data_dir, image_size: int, object_roi) -> dict:
    """{part: (rows, images (N,1,S,S) uint8)} for train, val and test."""
    from oanet.fusion.data import load_rois
    from oanet.split import load_parts

    parts = load_parts(table_path, split_path)
    return {part: (df, load_rois(data_dir, df["image"].tolist(), object_roi, image_size))
            for part, df in parts.items()}


def score_gate(members, artifact, rows: pd.DataFrame, images, scenarios, seed: int, device: str = "cpu"):
    """({scenario: {member or "gate": metrics}}, the clean GateDecision, the clean member probabilities).

    Used by the stage on its own models and by promotion to score a champion on the
    challenger's test rows, so both are judged by the same code on the same rows.
    """
    from oanet.gate.members import score_scenarios

    y = rows["label"].to_numpy().astype(int)
    scored = score_scenarios(members, artifact.references, rows, images, scenarios, seed, device)
    out, clean = {}, None
    for name, sc in scored.items():
        decision = artifact.gate.decide(sc.probs, sc.divergence)
        out[name] = {**{m: binary_metrics(y, p) for m, p in sc.probs.items()},
                     "gate": binary_metrics(y, decision.prob, decision.threshold)}
        clean = decision if name == "clean" else clean
    return out, clean, scored["clean"].probs if "clean" in scored else {}


def run(cfg: GateConfig, paths: PathsConfig) -> GateResult:
    from oanet.device import resolve_device
    from oanet.gate.calibrate import calibrate
    from oanet.gate.gate import GateArtifact
    from oanet.gate.members import load_members, score_scenarios
    from oanet.gate.reference import References

    t0 = time.perf_counter()
    device = str(resolve_device(cfg.device))
    members = load_members(paths.bag_models, paths.fusion_models)
    parts = gate_inputs(paths.clean, paths.split, paths.raw, members.image_size, members.object_roi)
    references = References.fit(members.schema, *parts["train"], ocr_bins=cfg.ocr_bins)
    val_rows, val_images = parts["val"]
    val = score_scenarios(members, references, val_rows, val_images, cfg.scenarios, cfg.seed, device)
    gate, report = calibrate(val_rows["label"], val, members.names, quantile=cfg.quantile,
                             off_factors=cfg.off_factors, temperatures=cfg.temperatures,
                             min_accuracy=cfg.min_accuracy, combine=cfg.combine,
                             degraded_min_accuracy=cfg.degraded_min_accuracy, cross_fit=cfg.cross_fit)
    artifact = GateArtifact(gate, references, report)
    artifact.save(paths.gate)

    test_rows, test_images = parts["test"]
    y = test_rows["label"].to_numpy().astype(int)
    scenarios, clean, clean_probs = score_gate(members, artifact, test_rows, test_images, cfg.scenarios,
                                               cfg.seed + 100, device)
    pred = pd.DataFrame({"image": test_rows["image"], "label": y, "prob_gate": clean.prob,
                         "decision": clean.decision, "threshold": clean.threshold, "regime": clean.regime,
                         "driver": clean.driver,
                         **{f"w_{m}": clean.weights[:, j] for j, m in enumerate(gate.members)},
                         **{f"prob_{m}": clean_probs[m] for m in gate.members}})
    predictions = Path(paths.gate_predictions)
    predictions.parent.mkdir(parents=True, exist_ok=True)
    pred.to_parquet(predictions, index=False)
    metrics = {"gate": scenarios["clean"]["gate"], "scenarios": scenarios,
               "calibration": {**report["chosen"], "floor_met": report["floor_met"],
                               "min_accuracy": report["min_accuracy"], "skill": report["skill"],
                               "divergence_limits": report["divergence_limits"], "baselines": report["baselines"]},
               "batch_divergence": {p: references.batch_divergences(*parts[p]) for p in ("val", "test")},
               "drivers": {k: int(v) for k, v in zip(*np.unique(clean.driver, return_counts=True), strict=True)}}
    metrics_file = Path(paths.gate_metrics)
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
    return GateResult(metrics, Path(paths.gate), predictions, time.perf_counter() - t0)
