"""Calibrate the gate on validation rows that no member was trained on.

Inputs are the members' probabilities and the modality divergences of the validation
rows under several scenarios (clean, OCR values dropped, GridMask, both). Then:
1. per modality, the median B and the `quantile` T of its divergence on the clean rows;
2. skill_m: 2 AUC - 1 of each member on the clean rows;
3. (k, tau) by grid search on all scenarios pooled; for each, a decision threshold per
   regime (rows whose active members read both modalities, the image only, the OCR
   only) chosen on that regime's pooled rows, maximising recall subject to accuracy >=
   min_accuracy (ties: higher accuracy). Where the floor cannot be reached, Youden's J
   (recall + specificity - 1) picks the threshold instead: taking the most accurate
   threshold would let a weak ensemble call every unit good (recall 0) whenever the
   defect rate is under one half. The pooled result ranks (k, tau) the same way.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from oanet.gate.gate import MODALITIES, REGIMES, Gate, GateError, skill_of

THRESHOLD_GRID = tuple(np.round(np.arange(0.05, 0.951, 0.01), 2))


@dataclass(frozen=True)
class Scenario:
    probs: Mapping[str, np.ndarray]          # member -> (N,) probability
    divergence: Mapping[str, np.ndarray]     # modality -> (N,) divergence


def _rates(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accuracy, recall, specificity) of boolean predictions (..., N) against labels (N,)."""
    pos, neg = y == 1, y == 0
    acc = (pred == pos).mean(axis=-1)
    rec = (pred & pos).sum(axis=-1) / max(1, int(pos.sum()))
    spec = (~pred & neg).sum(axis=-1) / max(1, int(neg.sum()))
    return acc, rec, spec


def _score(acc, rec, spec, min_accuracy: float):
    """Feasible (accuracy >= floor) ranks above infeasible; recall first, else Youden's J."""
    return np.where(acc >= min_accuracy, 2.0 + rec + 1e-3 * acc, rec + spec - 1.0)


def _best_threshold(y: np.ndarray, p: np.ndarray, min_accuracy: float) -> float:
    t = np.asarray(THRESHOLD_GRID)
    acc, rec, spec = _rates(y, p[None, :] >= t[:, None])                  # (T,) each
    return float(t[int(np.argmax(_score(acc, rec, spec, min_accuracy)))])


def _regime_thresholds(y: np.ndarray, prob: np.ndarray, regime: np.ndarray, min_accuracy: float) -> dict:
    """A threshold per regime seen with both classes; the others fall back to the pooled one."""
    pooled = _best_threshold(y, prob, min_accuracy)
    out = {r: pooled for r in REGIMES}
    for r in REGIMES:
        rows = regime == r
        if rows.sum() >= 10 and len(np.unique(y[rows])) == 2:
            out[r] = _best_threshold(y[rows], prob[rows], min_accuracy)
    return out


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
            gate = Gate(tuple(members), skill, thresholds, baselines, float(k), float(tau), {"both": 0.5})
            decisions = [gate.decide(s.probs, s.divergence) for s in scenarios.values()]
            prob = np.concatenate([d.prob for d in decisions])
            regime = np.concatenate([d.regime for d in decisions])
            cut = _regime_thresholds(pooled_y, prob, regime, min_accuracy)
            pred = prob >= np.array([cut[r] for r in regime])
            acc, rec, spec = _rates(pooled_y, pred)
            grid.append({"off_factor": float(k), "temperature": float(tau), "threshold": cut,
                         "recall": float(rec), "accuracy": float(acc), "specificity": float(spec),
                         "score": float(_score(acc, rec, spec, min_accuracy)),
                         "regimes": {r: int((regime == r).sum()) for r in REGIMES}})
    best = max(grid, key=lambda g: (g["score"], g["accuracy"]))
    feasible = best["accuracy"] >= min_accuracy
    gate = Gate(tuple(members), skill, thresholds, baselines, best["off_factor"], best["temperature"],
                best["threshold"])
    report = {"rows": int(len(y)), "scenarios": list(scenarios), "quantile": quantile,
              "min_accuracy": min_accuracy, "floor_met": bool(feasible), "chosen": best, "grid": grid,
              "skill": dict(zip(members, skill, strict=True)), "thresholds": thresholds,
              "baselines": baselines}
    return gate, report
