"""Where a model wins or loses at the operating point: its ranking, or the threshold the rule picks.

    python bench/operating_point.py [--predictions reports/benchmark/mt-aoi/predictions.parquet]

Reads the clean val and test probabilities that `oanet evaluate` writes (predictions.parquet,
one row per repeat, encoder, part, model and row) and prints, mean ± std over the repeats:
1. each model at the one threshold rule on its val rows (what the evaluation reports; the gate
   decides with its own regime thresholds, so its row is read from the evaluation.json beside the
   predictions, where each repeat's value is kept, and has only 2. without it);
2. the best test recall any threshold reaches at a test accuracy floor: an oracle, never a
   result, that says whether a gap comes from the ranking or from the threshold chosen on val;
3. logistic stacks of the clean members fitted on val, each feature set thresholded by the
   same rule on in-sample and on out-of-fold val probabilities: what the gate's combiner could
   gain from another feature space (logits, or log(1 - p): a noisy-OR is additive there).
Nothing is trained but the stacks; a run takes seconds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("late_fusion", "gate", "fusion", "concat", "cnn", "bag")
EPS = 1e-6


def logit(p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def log_ok(p):                      # log(1 - p): the noisy-OR of members is a sum of these
    return np.log(np.clip(1 - p, EPS, 1))


STACKS = {
    "logits of cnn, fusion and the 4 learners": lambda P: [logit(P[m]) for m in
                                                           ("cnn", "fusion", "lightgbm", "catboost", "gbm",
                                                            "random_forest")],
    "logits of cnn, bag, fusion": lambda P: [logit(P["cnn"]), logit(P["bag"]), logit(P["fusion"])],
    "log(1-p) of cnn, bag, fusion": lambda P: [log_ok(P["cnn"]), log_ok(P["bag"]), log_ok(P["fusion"])],
    "log(1-p) of cnn, bag + logit fusion": lambda P: [log_ok(P["cnn"]), log_ok(P["bag"]), logit(P["fusion"])],
}


def parts(frame: pd.DataFrame, part: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rows = frame[frame["part"] == part]
    wide = rows.pivot(index="row", columns="model", values="prob").sort_index()
    label = rows.drop_duplicates("row").set_index("row").sort_index()["label"].to_numpy()
    return {m: wide[m].to_numpy() for m in wide.columns}, label


def out_of_fold(X: np.ndarray, y: np.ndarray, folds: int = 5) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    prob = np.zeros(len(y))
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y):
        prob[held] = LogisticRegression(max_iter=2000).fit(X[fit], y[fit]).predict_proba(X[held])[:, 1]
    return prob


def best_recall(y: np.ndarray, p: np.ndarray, accuracy_floor: float) -> float:
    cuts = np.unique(p)
    decided = p[None, :] >= cuts[:, None]                                      # (T, N)
    accuracy = (decided == (y == 1)).mean(axis=1)
    recall = (decided & (y == 1)).sum(axis=1) / max(int(y.sum()), 1)
    reached = recall[accuracy >= accuracy_floor]
    return float(reached.max()) if len(reached) else float("nan")


def repeat_rows(frame: pd.DataFrame, min_accuracy: float, floors: tuple[float, ...]) -> list[dict]:
    from sklearn.linear_model import LogisticRegression

    from oanet.metrics import binary_metrics, choose_threshold

    val, y_val = parts(frame, "val")
    test, y_test = parts(frame, "test")
    rows = []
    for m in MODELS:
        if m in test:
            cut = choose_threshold(y_val, val[m], min_accuracy) if m in val else None
            scored = binary_metrics(y_test, test[m], cut) if cut is not None else {}
            rows.append({"what": m, **scored, **{f"oracle@{f}": best_recall(y_test, test[m], f) for f in floors}})
    for name, features in STACKS.items():
        X_val, X_test = np.column_stack(features(val)), np.column_stack(features(test))
        stack = LogisticRegression(max_iter=2000).fit(X_val, y_val)
        prob = stack.predict_proba(X_test)[:, 1]
        for how, val_prob in (("in-sample", stack.predict_proba(X_val)[:, 1]),
                              ("out of fold", out_of_fold(X_val, y_val))):
            rows.append({"what": f"stack: {name}, {how}",
                         **binary_metrics(y_test, prob, choose_threshold(y_val, val_prob, min_accuracy))})
    return rows


def gate_as_evaluated(evaluation: dict, repeat: int, encoder: str) -> dict:
    """The gate's test metrics of one repeat as `oanet evaluate` scored them ({} where not kept)."""
    gate = evaluation.get("clean", {}).get(encoder, {}).get("gate", {})
    return {k: v["values"][repeat] for k, v in gate.items()
            if k in ("accuracy", "recall", "f1", "roc_auc") and len(v.get("values") or []) > repeat}


def _mean_std(s: pd.Series) -> str:
    """mean ± std over the repeats (population std, as evaluation.json); an oracle floor some repeats
    never reach says in how many it did."""
    if s.isna().all():
        return "never" if str(s.name).startswith("oracle") else ""
    if s.name == "roc_auc":
        return f"{s.mean():.3f} ± {s.std(ddof=0):.3f}"
    text = f"{100 * s.mean():.1f} ± {100 * s.std(ddof=0):.1f}"
    return text if s.notna().all() else f"{text} (in {s.notna().sum()} of {len(s)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predictions", type=Path, default=ROOT / "reports/benchmark/mt-aoi/predictions.parquet")
    ap.add_argument("--min-accuracy", type=float, default=0.9, help="the rule's accuracy floor (gate.min_accuracy)")
    ap.add_argument("--floors", type=float, nargs="+", default=[0.90, 0.92], help="test accuracy floors of the oracle")
    args = ap.parse_args()
    if not args.predictions.is_file():
        raise SystemExit(f"error: {args.predictions} not found; run `make benchmark` first")
    frame = pd.read_parquet(args.predictions)
    several = frame["encoder"].nunique() > 1           # the paper encoders: one block of rows each
    evaluation_file = args.predictions.with_name("evaluation.json")
    evaluation = json.loads(evaluation_file.read_text()) if evaluation_file.is_file() else {}
    rows = [dict(row, **(gate_as_evaluated(evaluation, r, enc) if row["what"] == "gate" else {}), repeat=r,
                 what=f"{enc}: {row['what']}" if several else row["what"])
            for (r, enc), group in frame.groupby(["repeat", "encoder"])
            for row in repeat_rows(group, args.min_accuracy, tuple(args.floors))]
    table = pd.DataFrame(rows)
    cols = [c for c in ("accuracy", "recall", "f1", "roc_auc", *(f"oracle@{f}" for f in args.floors)) if c in table]
    summary = table.groupby("what", sort=False)[cols].agg(_mean_std)
    print(f"{frame['repeat'].nunique()} repeats; threshold rule: the highest val recall at val accuracy >= "
          f"{args.min_accuracy}; oracle@F: the best test recall at test accuracy >= F (a diagnosis, not a result)")
    print(summary.to_markdown())


if __name__ == "__main__":
    main()
