"""Champion/challenger rule: should a newly trained model replace the one in service?

A pure function over numbers, so it is unit-tested without MLflow; `flows/registry.py`
reads the numbers from the model registry, calls `decide` and moves the aliases.
Recall on defects is what the paper improves, so the challenger must not lose recall;
accuracy and recall under damaged inputs (60% OCR missing + GridMask, the paper's
Table 2) may drop a little, because run-to-run noise alone moves them by that much.
Accuracy under damaged inputs is bounded too (more loosely): a model that flags every
unit once the inputs are damaged has perfect robust recall and is no use.

Every promotion, the first included, must also clear absolute `Floors` (in the spirit of
MLflow's `MetricThreshold(threshold=...)`): "better than the champion" means nothing when
there is no champion, and a first model that misses 90% of defects under damage must not
go into service just because it was first.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from oanet.jsonsafe import strict_json

if TYPE_CHECKING:
    import pandas as pd

METRICS = ("recall", "accuracy", "robust_recall")
OPTIONAL = ("robust_accuracy",)   # checked when both models have it (versions registered before it lack it)
# Equal metrics must pass; `a - b` in floats can miss that by one ulp (0.3 - 0.1 != 0.2).
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PromotionRule:
    max_accuracy_drop: float = 0.01       # challenger accuracy >= champion accuracy - this
    max_robust_recall_drop: float = 0.02  # challenger robust recall >= champion's - this
    min_recall_gain: float = 0.0          # challenger recall >= champion recall + this
    max_robust_accuracy_drop: float = 0.05  # challenger robust accuracy >= champion's - this


@dataclass(frozen=True)
class Floors:
    """Absolute minimum test metrics for any promotion (robust: under 60% OCR missing + GridMask)."""
    min_recall: float = 0.5
    min_accuracy: float = 0.5         # flagging every unit scores the defect rate (~0.3-0.4)
    min_robust_recall: float = 0.3
    min_robust_accuracy: float = 0.5   # checked when the challenger has it (older versions lack it)


@dataclass(frozen=True)
class Candidate:
    version: str
    complete: bool          # False for a failed or incomplete run
    recall: float | None
    accuracy: float | None
    robust_recall: float | None
    robust_accuracy: float | None = None


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str             # one sentence a human reads in the registry history
    compared: dict          # {"challenger": {...}, "champion": {...} or None, "rule": {...}}


def _missing(value) -> bool:
    """None, NaN or infinite: a metric that cannot be compared (an `inf` must not win every comparison)."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def incomplete_reason(candidate: Candidate) -> str | None:
    """Why a candidate cannot be compared at all (failed run, missing or NaN metric), else None."""
    if not candidate.complete:
        return "run is incomplete (failed or did not finish)"
    missing = [name for name in METRICS if _missing(getattr(candidate, name))]
    if missing:
        return "metric missing or NaN/inf: " + ", ".join(missing)
    return None


def _numbers(candidate: Candidate | None) -> dict | None:
    if candidate is None:
        return None
    values = {name: getattr(candidate, name) for name in METRICS + OPTIONAL}
    return {"version": candidate.version, "complete": candidate.complete, **values}


def _check(label: str, value: float, op_ok: bool, champion: float, margin: str) -> tuple[bool, str]:
    sign = ">=" if op_ok else "<"
    return op_ok, f"{label} {value:.3f} {sign} champion {champion:.3f}{margin}"


def below_floors(candidate: Candidate, floors: Floors) -> list[str]:
    """The floors `candidate` misses, as "robust recall 0.106 < floor 0.3" (empty: clears them all)."""
    failed = []
    for metric in METRICS + OPTIONAL:
        value, floor = getattr(candidate, metric), getattr(floors, "min_" + metric)
        if not _missing(value) and value < floor - _TOLERANCE:
            failed.append(f"{metric.replace('_', ' ')} {value:.3f} < floor {floor:g}")
    return failed


def decide(challenger: Candidate, champion: Candidate | None, rule: PromotionRule,
           floors: Floors | None = None, drifted: str = "") -> Decision:
    """Promote `challenger` over `champion` (None: no champion yet) under `rule`.

    `floors`: absolute minimums the challenger must clear first (None: none; the registry
    always passes them, the relative rule's own tests do not).
    `drifted`: the drift alert of the challenger's test rows against the rows it learned on
    (oanet.drift), empty when none. Numbers measured on drifted rows do not say how the model
    does on its own line, so such a challenger is never promoted: an operator looks first.
    """
    compared = strict_json({"challenger": _numbers(challenger), "champion": _numbers(champion), "rule": asdict(rule),
                            "floors": asdict(floors) if floors else None})     # NaN as null: the record is JSON

    why = incomplete_reason(challenger)
    if why:
        return Decision(False, f"refused: challenger v{challenger.version} {why}", compared)
    if drifted:
        return Decision(False, f"refused: its test rows drifted from the rows it learned on ({drifted})", compared)
    low = below_floors(challenger, floors) if floors else []
    if low:
        return Decision(False, "refused: below the promotion floors: " + "; ".join(low), compared)
    if champion is None:
        return Decision(True, f"promoted: first valid model (v{challenger.version}, no champion yet)", compared)
    if incomplete_reason(champion):
        # A champion without numbers (e.g. an alias set by hand) cannot be defended; say so.
        return Decision(True, f"promoted: champion v{champion.version} has no complete metrics to "
                              f"compare against ({incomplete_reason(champion)})", compared)

    c, h = challenger, champion
    checks = [
        _check("recall", c.recall, c.recall >= h.recall + rule.min_recall_gain - _TOLERANCE,
               h.recall, f" + {rule.min_recall_gain:g}"),
        _check("accuracy", c.accuracy, c.accuracy >= h.accuracy - rule.max_accuracy_drop - _TOLERANCE,
               h.accuracy, f" - {rule.max_accuracy_drop:g}"),
        _check("robust recall", c.robust_recall,
               c.robust_recall >= h.robust_recall - rule.max_robust_recall_drop - _TOLERANCE,
               h.robust_recall, f" - {rule.max_robust_recall_drop:g}"),
    ]
    if not (_missing(c.robust_accuracy) or _missing(h.robust_accuracy)):
        checks.append(_check("robust accuracy", c.robust_accuracy,
                             c.robust_accuracy >= h.robust_accuracy - rule.max_robust_accuracy_drop - _TOLERANCE,
                             h.robust_accuracy, f" - {rule.max_robust_accuracy_drop:g}"))
    failed = [text for ok, text in checks if not ok]
    if failed:
        return Decision(False, "refused: " + "; ".join(failed), compared)
    return Decision(True, "promoted: " + "; ".join(text for _, text in checks), compared)


# ---------------------------------------------------------------------------------------
# Re-scoring the champion and the challenger on the rows neither was fitted on
# ---------------------------------------------------------------------------------------

MIN_SHARED_ROWS = 10     # fewer unseen rows than this (or one class only): compare registered metrics
ROLES = ("challenger", "champion")


@dataclass(frozen=True)
class HeadToHead:
    challenger: dict | None      # candidate_metrics on the shared rows; None: not comparable there
    champion: dict | None
    rows: int                    # how many rows both were scored on (or, when too few, were left)
    note: str                    # one sentence for the registry history


def candidate_metrics(gate_metrics: dict) -> dict[str, float]:
    """What promotion compares, from a gate's scores ({"scenarios": {scenario: {"gate": metrics}}}):
    its clean test recall and accuracy, and both under 60% OCR loss + GridMask (scenario `both`)."""
    s = gate_metrics["scenarios"]
    return {"recall": s["clean"]["gate"]["recall"], "accuracy": s["clean"]["gate"]["accuracy"],
            "robust_recall": s["both"]["gate"]["recall"], "robust_accuracy": s["both"]["gate"]["accuracy"]}


def head_to_head(challenger, champion, test_rows: pd.DataFrame, champion_seen: set[str] | None,
                 score: Callable[[object, pd.DataFrame], dict]) -> HeadToHead:
    """Score both pipelines with `score(pipeline, rows)` on this run's test rows the champion never saw.

    With a growing dataset the split moves: rows the champion was fitted or calibrated on
    (`champion_seen`, its own split's train and val rows) may now be test rows, and would
    flatter it, so they are left out. `champion_seen` None (its split was not logged): all
    test rows, and the note says so. Fewer than MIN_SHARED_ROWS rows left, or one class
    only: nothing is scored, and promotion compares the metrics each model was registered
    with. Pure: the pipelines are whatever `score` takes (`gate_scorer` for real ones).
    """
    rows = test_rows[~test_rows["image"].isin(champion_seen or set())]
    labels = set(rows["label"].astype(int))
    if len(rows) < MIN_SHARED_ROWS or labels != {0, 1}:
        return HeadToHead(None, None, len(rows), f"only {len(rows)} test rows unseen by the champion "
                          f"(classes {sorted(labels)}): compared on the metrics each was registered with")
    scored = {role: score(pipe, rows) for role, pipe in zip(ROLES, (challenger, champion), strict=True)}
    note = (f"compared on {len(rows)} test rows neither model was fitted on" if champion_seen is not None else
            f"compared on all {len(rows)} test rows (the champion's split was not logged)")
    return HeadToHead(scored["challenger"], scored["champion"], len(rows), note)


def gate_scorer(data_dir: str | Path, seed: int, device: str = "cpu") -> Callable[[object, pd.DataFrame], dict]:
    """`score(pipeline, rows)` for `head_to_head`: a DefectPipeline's gate on `rows`, clean and under
    both corruptions (seeded by `seed`), by the gate stage's own code; candidate_metrics of that.
    The object regions are read once per crop (both models usually crop the same way)."""
    from oanet.fusion.data import load_rois
    from oanet.gate.stage import score_gate

    images: dict = {}

    def score(pipe, rows: pd.DataFrame) -> dict:
        size, roi = pipe.members.image_size, tuple(pipe.members.object_roi)
        key = (size, roi, tuple(rows["image"]))
        if key not in images:
            images[key] = load_rois(data_dir, rows["image"].tolist(), roi, size)
        scores, _, _ = score_gate(pipe.members, pipe.gate, rows, images[key], ("clean", "both"), seed, device)
        return candidate_metrics({"scenarios": scores})

    return score
