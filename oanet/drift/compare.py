"""One night against the drift reference: a divergence, a threshold and a score per field and statistic.

score = D / T(n): 1 is the edge of what clean nights of this size do, so scores compare
across fields with different numbers of bins. An item alerts when its score passes 1
and the night has at least `min_rows` rows (a handful of rows says nothing).

An OCR field is tested twice, and its score is the larger of the two:
- its values: the KL of its whole histogram (value bins and the missing bin);
- its reads: the KL of its read-or-missing histogram, with a threshold of its own. Values
  vary from lot to lot, so the first test's threshold is wide, and a new font that
  breaks 15% of one field's reads can hide inside it; clean nights almost never miss a
  read, so the second test sees it.

Naming what drifted: items are ranked by score, with two rules on top, both of the form
"a cause before its echoes":
- Some panel fields are statistics the machine computes from the object image
  (`image_derived`, e.g. the printed mean gray). When such a field alerts together with
  an image statistic, the image is the cause and the printed field its echo, so the
  image statistic is named first.
- Among the image statistics that alert, the object's position (centre_x, centre_y,
  object_fill) comes first, then brightness, then the rest. A moved object changes every
  pixel statistic of its box, and a gain change scales contrast and sharpness with the
  brightness; a focus problem alone still names sharpness.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd

from oanet.drift.reference import DriftError, DriftReference
from oanet.gate.reference import smoothed_kl

REASON_SUFFIX = "__reason"


@dataclass(frozen=True)
class DriftItem:
    modality: str                 # "ocr" | "image"
    name: str                     # the OCR field or image statistic
    divergence: float
    threshold: float
    missing_rate: float = 0.0     # OCR fields: share not read in the night
    reference_missing_rate: float = 0.0
    missing_divergence: float = 0.0                          # OCR fields: the read-or-missing test
    missing_threshold: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)    # why values are missing: reason -> rows
    confidence: float = float("nan")                         # median read confidence in the night
    reference_confidence: float = float("nan")
    night_hist: tuple[float, ...] = ()                       # bin shares, the reference's bins (last: missing)
    reference_hist: tuple[float, ...] = ()
    bin_labels: tuple[str, ...] = ()

    @property
    def values_score(self) -> float:
        return self.divergence / self.threshold if self.threshold > 0 else float("inf")

    @property
    def missing_score(self) -> float:
        return self.missing_divergence / self.missing_threshold if self.missing_threshold > 0 else 0.0

    @property
    def score(self) -> float:
        return max(self.values_score, self.missing_score)

    @property
    def label(self) -> str:
        return f"{self.modality}:{self.name}"

    def to_dict(self) -> dict:
        return {**asdict(self), "score": self.score, "values_score": self.values_score,
                "missing_score": self.missing_score, "label": self.label}


def _bin_labels(ref) -> tuple[str, ...]:
    if ref.kind == "category":
        return (*ref.categories, "other", "missing")
    edges = [f"{e:.4g}" for e in ref.edges]
    inner = [f"[{a}, {b})" for a, b in pairwise(edges)]
    return ((f"< {edges[0]}", *inner, f">= {edges[-1]}") if edges else ("all",)) + ("missing",)


def _reasons(table: pd.DataFrame, name: str) -> dict[str, int]:
    column = f"{name}{REASON_SUFFIX}"
    if column not in table:
        return {}
    counts = table[column].dropna().astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items() if k}


def _median(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else float("nan")


def _item(reference: DriftReference, modality: str, name: str, values: pd.Series, thresholds: dict,
          table: pd.DataFrame | None) -> DriftItem:
    ref = reference.field_reference(f"{modality}:{name}")
    counts = ref.counts(values).sum(axis=0)
    probs = np.asarray(ref.probs)
    extra = {}
    if table is not None:
        read_or_missing = np.array([values.notna().sum(), values.isna().sum()])
        extra = dict(missing_rate=float(values.isna().mean()),
                     missing_divergence=float(smoothed_kl(read_or_missing, reference.missing_probs(f"ocr:{name}"))),
                     missing_threshold=thresholds[f"ocr:{name}#missing"],
                     reference_missing_rate=reference.missing_rate.get(name, 0.0), reasons=_reasons(table, name),
                     confidence=_median(table.get(f"{name}__conf", pd.Series(dtype=float))),
                     reference_confidence=reference.confidence.get(name, float("nan")))
    return DriftItem(modality, name, float(smoothed_kl(counts, probs)), thresholds[f"{modality}:{name}"],
                     night_hist=tuple(float(c) for c in counts / max(1.0, counts.sum())),
                     reference_hist=tuple(float(p) for p in probs), bin_labels=_bin_labels(ref), **extra)


def compare(reference: DriftReference, table: pd.DataFrame, stats: pd.DataFrame, thresholds: dict) -> list[DriftItem]:
    """Every OCR field of the reference (over `table`) and image statistic (over `stats`), unranked."""
    absent = [f.name for f in reference.ocr.fields if f.name not in table]
    if absent:
        raise DriftError(f"the night's rows lack the reference's OCR fields {absent}: the night was read with "
                         f"another layout than the reference's ({reference.source or 'no source recorded'}). "
                         "Compare it with a reference fitted on its own layout (--against), or read it with "
                         "the reference's layout.")
    items = [_item(reference, "ocr", f.name, table[f.name], thresholds, table) for f in reference.ocr.fields]
    return items + [_item(reference, "image", f.name, stats[f.name], thresholds, None) for f in reference.image.fields]


#: Image statistics in cause-before-echo order (module docstring); the others come after these.
IMAGE_CAUSES = ("centre_x", "centre_y", "object_fill", "brightness")


def _causes_first(ordered: list[DriftItem]) -> list[DriftItem]:
    """The alerting image statistics re-ordered among the places they hold: IMAGE_CAUSES first, then by score."""
    places = [k for k, i in enumerate(ordered) if i.modality == "image" and i.score > 1]
    order = {name: k for k, name in enumerate(IMAGE_CAUSES)}
    alerting = sorted((ordered[k] for k in places), key=lambda i: (order.get(i.name, len(order)), -i.score))
    out = list(ordered)
    for k, item in zip(places, alerting, strict=True):
        out[k] = item
    return out


def rank(items: Sequence[DriftItem], image_derived: Sequence[str] = ()) -> list[DriftItem]:
    """Items most drifted first, causes before their echoes (module docstring)."""
    ordered = _causes_first(sorted(items, key=lambda i: -i.score))
    alerting_image = [k for k, i in enumerate(ordered) if i.modality == "image" and i.score > 1]
    if not alerting_image:
        return ordered
    is_echo = [i.modality == "ocr" and i.name in image_derived and i.score > 1 for i in ordered]
    echoes = [i for i, echo in zip(ordered, is_echo, strict=True) if echo]
    others = [i for i, echo in zip(ordered, is_echo, strict=True) if not echo]
    last_image = max(k for k, i in enumerate(others) if i.modality == "image" and i.score > 1)
    return others[:last_image + 1] + echoes + others[last_image + 1:]


def headline(items: Sequence[DriftItem], alert: bool, n_rows: int) -> str:
    """One line for the operator: the drifted items, strongest first, or that the night looks clean."""
    if not items:
        return f"drift: nothing to compare ({n_rows} rows)"
    if not alert:
        top = items[0]
        return f"drift: no alert over {n_rows} rows (largest: {top.label} at {top.score:.2f} of its threshold)"
    drifted = [i for i in items if i.score > 1]
    named = ", ".join(f"{i.label} ({i.score:.1f}x)" for i in drifted[:3])
    more = f" and {len(drifted) - 3} more" if len(drifted) > 3 else ""
    return f"DRIFT ALERT over {n_rows} rows: {named}{more}"
