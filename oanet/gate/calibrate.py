"""Calibrate the gate on validation rows that no member was trained on.

Inputs are the members' probabilities and the modality divergences of the validation
rows under several scenarios (clean, OCR values dropped, GridMask, both). Then:
1. per modality, the median B and the `quantile` T of its divergence on the clean rows;
2. skill_m: 2 AUC - 1 of each member on the clean rows;
3. (k, tau, decision threshold): grid search on all scenarios pooled, maximising
   recall subject to accuracy >= min_accuracy; ties go to the higher accuracy. When
   no setting reaches the floor, the most accurate one is taken and the report says so.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from oanet.gate.gate import MODALITIES, Gate, GateError, skill_of

THRESHOLD_GRID = tuple(np.round(np.arange(0.05, 0.951, 0.01), 2))


@dataclass(frozen=True)
class Scenario:
    probs: Mapping[str, np.ndarray]          # member -> (N,) probability
    divergence: Mapping[str, np.ndarray]     # modality -> (N,) divergence


def _best_threshold(y: np.ndarray, p: np.ndarray, min_accuracy: float) -> tuple[float, float, float]:
    """(threshold, recall, accuracy) maximising recall with accuracy >= floor, else accuracy."""
    t = np.asarray(THRESHOLD_GRID)
    pred = p[None, :] >= t[:, None]                                     # (T, N)
    acc = (pred == (y[None] == 1)).mean(axis=1)
    rec = (pred & (y[None] == 1)).sum(axis=1) / max(1, int((y == 1).sum()))
    feasible = acc >= min_accuracy
    score = np.where(feasible, rec + 1e-3 * acc, -1.0 + acc)            # recall first, accuracy breaks ties
    i = int(np.argmax(score))
    return float(t[i]), float(rec[i]), float(acc[i])


def calibrate(labels: Sequence[int], scenarios: Mapping[str, Scenario], members: Sequence[str], *,
              quantile: float, off_factors: Sequence[float], temperatures: Sequence[float],
              min_accuracy: float) -> tuple[Gate, dict]:
    if "clean" not in scenarios:
        raise GateError("gate calibration needs a 'clean' scenario")
    y = np.asarray(labels).astype(int)
    if len(y) < 10 or len(np.unique(y)) < 2:
        raise GateError(f"gate calibration needs validation rows of both classes, got {len(y)} rows "
                        f"with labels {sorted(set(y.tolist()))}; is split.val_fold set?")
    clean = scenarios["clean"]
    baselines = {mod: float(np.median(clean.divergence[mod])) for mod in MODALITIES}
    thresholds = {mod: max(float(np.quantile(clean.divergence[mod], quantile)), baselines[mod] + 1e-9)
                  for mod in MODALITIES}
    skill = tuple(skill_of(y, clean.probs[m]) for m in members)
    pooled_y = np.concatenate([y for _ in scenarios])
    grid = []
    for k in off_factors:
        for tau in temperatures:
            gate = Gate(tuple(members), skill, thresholds, baselines, float(k), float(tau), 0.5)
            p = np.concatenate([gate.decide(s.probs, s.divergence).prob for s in scenarios.values()])
            t, rec, acc = _best_threshold(pooled_y, p, min_accuracy)
            grid.append({"off_factor": float(k), "temperature": float(tau), "threshold": t,
                         "recall": rec, "accuracy": acc})
    feasible = [g for g in grid if g["accuracy"] >= min_accuracy]
    best = max(feasible, key=lambda g: (g["recall"], g["accuracy"])) if feasible \
        else max(grid, key=lambda g: (g["accuracy"], g["recall"]))
    gate = Gate(tuple(members), skill, thresholds, baselines, best["off_factor"], best["temperature"],
                best["threshold"])
    report = {"rows": int(len(y)), "scenarios": list(scenarios), "quantile": quantile,
              "min_accuracy": min_accuracy, "floor_met": bool(feasible), "chosen": best, "grid": grid,
              "skill": dict(zip(members, skill, strict=True)), "thresholds": thresholds,
              "baselines": baselines}
    return gate, report
