"""Binary classification metrics as pure functions (label 1 = defect)."""
from __future__ import annotations

import numpy as np

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
#: The test metrics every model is reported with in reports/metrics.json and its table, in this order.
REPORTED_METRICS = ("accuracy", "recall", "precision", "f1", "roc_auc")


def rates(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accuracy, recall, specificity) of boolean predictions (..., N) against labels (N,)."""
    pos, neg = y == 1, y == 0
    acc = (pred == pos).mean(axis=-1)
    rec = (pred & pos).sum(axis=-1) / max(1, int(pos.sum()))
    spec = (~pred & neg).sum(axis=-1) / max(1, int(neg.sum()))
    return acc, rec, spec


def threshold_score(acc, rec, spec, min_accuracy: float):
    """Feasible (accuracy >= floor) ranks above infeasible; recall first, else Youden's J."""
    return np.where(acc >= min_accuracy, 2.0 + rec + 1e-3 * acc, rec + spec - 1.0)


def choose_threshold(y_val, p_val, min_accuracy: float) -> float:
    """The one decision-threshold rule every model gets, on its validation rows.

    The highest recall whose accuracy is at least `min_accuracy` (ties: higher accuracy);
    where no threshold reaches the floor, Youden's J (recall + specificity - 1): the most
    accurate threshold of a weak model would call every unit good when defects are rare.
    """
    y = np.asarray(y_val).astype(int)
    p = np.asarray(p_val, dtype=float)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return 0.5
    t = THRESHOLD_GRID
    acc, rec, spec = rates(y, p[None, :] >= t[:, None])                  # (T,) each
    return float(t[int(np.argmax(threshold_score(acc, rec, spec, min_accuracy)))])


def binary_metrics(y_true, prob, threshold: float | np.ndarray = 0.5) -> dict[str, float]:
    """Accuracy, recall, precision, F1 at `threshold`; ROC AUC and PR AUC (average precision) of the probabilities."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=float)
    pred = (p >= threshold).astype(int)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
        "threshold": float(np.mean(threshold)),      # a gate's per-row thresholds: their mean
    }
    return out


def learned_nothing(y_val, p_val, max_auc: float = 0.55) -> str | None:
    """Why a model's validation scores show it learned nothing, or None: one score for every unit, or a
    ROC AUC no better than chance. Its test numbers then only echo the class balance and the threshold."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_val).astype(int)
    p = np.asarray(p_val, dtype=float)
    if len(np.unique(y)) < 2:
        return None
    if np.ptp(p) < 1e-3:
        return f"it gives every val unit the same score ({p.mean():.2f})"
    auc = float(roc_auc_score(y, p))
    return f"its val ROC AUC is {auc:.2f}, no better than chance" if auc <= max_auc else None


def mean_std(rows: list[dict[str, float]]) -> dict[str, dict]:
    """Per metric, the mean and (population) standard deviation over folds or repeats, and the values
    themselves (None where undefined): two models scored on the same splits compare repeat by repeat."""
    keys = rows[0].keys() if rows else []
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows], dtype=float)
        out[k] = {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v)),
                  "values": [None if np.isnan(x) else float(x) for x in v]}
    return out


def repeats_ahead(ours: dict, theirs: dict) -> tuple[int, int]:
    """(how many repeats `ours` scored at or above `theirs`, how many both scored): `mean_std` entries
    of one metric for two models on the same repeats. A mean margin can hide one lucky split."""
    pairs = [(a, b) for a, b in zip(ours.get("values", []), theirs.get("values", []), strict=False)
             if a is not None and b is not None]
    return sum(a >= b for a, b in pairs), len(pairs)
