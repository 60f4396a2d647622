"""Calibrate the gate on validation rows that no member was trained on.

Inputs are the members' probabilities and the modality divergences of the validation
rows under several scenarios (clean, OCR values dropped, GridMask, both). Then:
1. per modality, the median B and the `quantile` T of its divergence on the clean rows;
2. skill_m: 2 AUC - 1 of each member on the clean rows;
3. (k, tau, fallback) by grid search on all scenarios pooled; with `combine: stack` the
   stacking coefficients are fitted for each (fit_stack); then a decision threshold per
   regime (rows where both modalities look like training data, only the image, only
   the OCR, neither) chosen on that regime's pooled rows by the one rule of
   oanet.metrics.choose_threshold: the highest recall at accuracy >= the regime's floor
   (min_accuracy, or degraded_min_accuracy where a modality is off), else
   Youden's J (recall + specificity - 1), since the most accurate threshold would let a
   weak ensemble call every unit good whenever the defect rate is under one half. The
   pooled result ranks the grid the same way.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from oanet.gate.gate import MODALITIES, REGIMES, Gate, GateError, skill_of
from oanet.metrics import choose_threshold, rates, threshold_score


@dataclass(frozen=True)
class Scenario:
    probs: Mapping[str, np.ndarray]          # member -> (N,) probability
    divergence: Mapping[str, np.ndarray]     # modality -> (N,) divergence


def regime_floors(min_accuracy: float, degraded_min_accuracy: float | None) -> dict[str, float]:
    """The accuracy floor of each regime: min_accuracy where both modalities look usual, and
    degraded_min_accuracy (when set) where one is off, since a line that sees less of a
    unit would rather re-inspect it than pass a defect."""
    degraded = min_accuracy if degraded_min_accuracy is None else degraded_min_accuracy
    return {r: (min_accuracy if r == "both" else degraded) for r in REGIMES}


def _regime_thresholds(y: np.ndarray, prob: np.ndarray, regime: np.ndarray, floors: Mapping[str, float]) -> dict:
    """A threshold per regime seen with both classes; the others fall back to the pooled one."""
    pooled = choose_threshold(y, prob, floors["both"])
    out = {r: pooled for r in REGIMES}
    for r in REGIMES:
        rows = regime == r
        if rows.sum() >= 10 and len(np.unique(y[rows])) == 2:
            out[r] = choose_threshold(y[rows], prob[rows], floors[r])
    return out


def fit_stack(gate: Gate, y: np.ndarray, scenarios: Mapping[str, Scenario]) -> Gate:
    """The gate with stacking coefficients fitted on every scenario's rows pooled (L2-regularised logistic)."""
    import dataclasses

    from sklearn.linear_model import LogisticRegression

    X = np.concatenate([gate.stack_features(np.stack([np.asarray(s.probs[m], float) for m in gate.members], 1),
                                            gate.activity(s.divergence)) for s in scenarios.values()])
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(X, np.concatenate([y for _ in scenarios]))
    return dataclasses.replace(gate, combine="stack", coef=(*map(float, lr.coef_[0]), float(lr.intercept_[0])))


MIN_FOLD_CLASS_ROWS = 10    # cross-fitting needs this many rows of each class in every fold


def out_of_fold_stack(gate: Gate, y: np.ndarray, scenarios: Mapping[str, Scenario], folds: int,
                      seed: int = 0) -> np.ndarray:
    """Stacked probabilities of every scenario's rows (pooled, in scenario order), each from a
    stack fitted without that row's unit: a unit's rows in every scenario sit in one fold, so
    thresholds chosen on them are not chosen on the rows the coefficients were fitted to."""
    from sklearn.model_selection import StratifiedKFold

    def rows(s: Scenario, keep: np.ndarray) -> Scenario:
        return Scenario({m: np.asarray(v)[keep] for m, v in s.probs.items()},
                        {mod: np.asarray(v)[keep] for mod, v in s.divergence.items()})

    out = {name: np.zeros(len(y)) for name in scenarios}
    for fit_idx, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        fitted = fit_stack(gate, y[fit_idx], {n: rows(s, fit_idx) for n, s in scenarios.items()})
        for name, s in scenarios.items():
            part = rows(s, held)
            out[name][held] = fitted.decide(part.probs, part.divergence).prob
    return np.concatenate([out[name] for name in scenarios])


def calibrate(labels: Sequence[int], scenarios: Mapping[str, Scenario], members: Sequence[str], *,
              quantile: float, off_factors: Sequence[float], temperatures: Sequence[float],
              min_accuracy: float, combine: str = "mean",
              degraded_min_accuracy: float | None = None, cross_fit: int = 0) -> tuple[Gate, dict]:
    """The gate chosen on the validation rows (module docstring). `cross_fit` >= 2 (stack only):
    thresholds and the grid are judged on out-of-fold stacked probabilities (out_of_fold_stack);
    the gate keeps the stack fitted on every row. With fewer than MIN_FOLD_CLASS_ROWS rows of
    either class per fold, a fold's stack is too unlike the full one for its probabilities to set
    the full stack's thresholds: the calibration is in-sample then, and the report says so."""
    if "clean" not in scenarios:
        raise GateError("gate calibration needs a 'clean' scenario")
    y = np.asarray(labels).astype(int)
    if len(y) < 10 or len(np.unique(y)) < 2:
        raise GateError(f"gate calibration needs validation rows of both classes, got {len(y)} rows "
                        f"with labels {sorted(set(y.tolist()))}; is split.val_fold set?")
    clean = scenarios["clean"]
    baselines = {mod: float(np.median(clean.divergence[mod])) for mod in MODALITIES}
    limits = {mod: max(float(np.quantile(clean.divergence[mod], quantile)), baselines[mod] + 1e-9)
              for mod in MODALITIES}
    skill = tuple(skill_of(y, clean.probs[m]) for m in members)
    pooled_y = np.concatenate([y for _ in scenarios])
    fold_rows = int(np.bincount(y, minlength=2).min()) // max(cross_fit, 1)
    cross_fitted = combine == "stack" and cross_fit >= 2 and fold_rows >= MIN_FOLD_CLASS_ROWS
    floors = regime_floors(min_accuracy, degraded_min_accuracy)
    grid = []
    for k, tau, fallback in itertools.product(off_factors, temperatures, ("calm", *MODALITIES)):
        gate = Gate(tuple(members), skill, limits, baselines, float(k), float(tau), {"both": 0.5},
                    fallback=fallback)
        if combine == "stack":
            gate = fit_stack(gate, y, scenarios)
        decisions = [gate.decide(s.probs, s.divergence) for s in scenarios.values()]
        prob = (out_of_fold_stack(gate, y, scenarios, cross_fit) if cross_fitted
                else np.concatenate([d.prob for d in decisions]))
        regime = np.concatenate([d.regime for d in decisions])
        cut = _regime_thresholds(pooled_y, prob, regime, floors)
        pred = prob >= np.array([cut[r] for r in regime])
        acc, rec, spec = rates(pooled_y, pred)
        floor = float(np.mean([floors[r] for r in regime]))       # the pooled rows' floor, regime by regime
        grid.append({"off_factor": float(k), "temperature": float(tau), "fallback": fallback, "threshold": cut,
                     "recall": float(rec), "accuracy": float(acc), "specificity": float(spec),
                     "score": float(threshold_score(acc, rec, spec, floor)), "floor": floor,
                     "regimes": {r: int((regime == r).sum()) for r in REGIMES}, "coef": gate.coef})
    best = max(grid, key=lambda g: (g["score"], g["accuracy"]))
    feasible = best["accuracy"] >= best["floor"]
    gate = Gate(tuple(members), skill, limits, baselines, best["off_factor"], best["temperature"],
                best["threshold"], combine, best.get("coef", ()), best["fallback"])
    report = {"rows": int(len(y)), "scenarios": list(scenarios), "quantile": quantile,
              "min_accuracy": min_accuracy, "cross_fit": cross_fit if cross_fitted else 0, "floors": floors,
              "floor_met": bool(feasible), "chosen": best, "grid": grid,
              "skill": dict(zip(members, skill, strict=True)), "divergence_limits": limits,
              "baselines": baselines}
    return gate, report
