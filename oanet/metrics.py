"""Binary classification metrics as pure functions (label 1 = defect)."""
from __future__ import annotations

import numpy as np


def binary_metrics(y_true, prob, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, recall, precision, F1 at `threshold`, and ROC AUC of the probabilities."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=float)
    pred = (p >= threshold).astype(int)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
    }
    return out


def mean_std(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric, the mean and (population) standard deviation over folds or repeats."""
    keys = rows[0].keys() if rows else []
    return {k: {"mean": float(np.nanmean([r[k] for r in rows])), "std": float(np.nanstd([r[k] for r in rows]))}
            for k in keys}
