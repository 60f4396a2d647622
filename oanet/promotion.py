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
from dataclasses import asdict, dataclass

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
    # NaN becomes None so that the record serialises as strict JSON.
    values = {name: None if _missing(v := getattr(candidate, name)) else float(v) for name in METRICS + OPTIONAL}
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
           floors: Floors | None = None) -> Decision:
    """Promote `challenger` over `champion` (None: no champion yet) under `rule`.

    `floors`: absolute minimums the challenger must clear first (None: none; the registry
    always passes them, the relative rule's own tests do not).
    """
    compared = {"challenger": _numbers(challenger), "champion": _numbers(champion), "rule": asdict(rule),
                "floors": asdict(floors) if floors else None}

    why = incomplete_reason(challenger)
    if why:
        return Decision(False, f"refused: challenger v{challenger.version} {why}", compared)
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
