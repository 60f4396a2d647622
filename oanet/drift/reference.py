"""The drift reference: what a clean night looks like, and how far a clean night of n rows strays.

Histograms come from the gate's reference code (oanet.gate.reference): numeric values
binned at training quantiles plus a bin for missing, categories by value plus "other"
and missing. So an OCR field that stops being read moves mass into its missing bin,
and a shifted value moves mass into the edge bins; both raise one divergence,

    D = KL(h || r)        h: the night's smoothed histogram, r: the reference's.

An alert threshold cannot be one number: the KL of a clean batch shrinks with its
size (about (B - 1) / 2n for B bins). So the reference keeps, for every field and
image statistic, the bin of each held-out clean row (the validation rows, which the
histograms never saw), and `thresholds(n)` draws clean nights of n rows from them:

    T(n) = max(floor, factor * quantile_q(D of `draws` bootstrap nights of n clean rows))

the same "usual range times a factor" rule the gate calibrates (gate.quantile). Each OCR
field also gets the same rule on its read-or-missing histogram (compare.py says why). The floor
serves a field or statistic that never varied in the clean rows (a fixed station, an
object that always fills its box): its clean spread is zero, and without a floor one
unusual row would alert. 0.05 nats is about 3% of the rows moving into a bin never seen.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.drift.statistics import IMAGE_STATISTICS
from oanet.errors import OanetError
from oanet.files import write_text_atomic
from oanet.gate.reference import OcrReference, smoothed_kl

FORMAT = "oanet-drift-reference/1"


class DriftError(OanetError, ValueError):
    """A drift reference or a night that cannot be compared."""


@dataclass(frozen=True)
class DriftReference:
    ocr: OcrReference                         # per OCR feature field
    image: OcrReference                       # per image statistic (numeric "fields" of statistics.py)
    calibration: dict[str, list[int]]         # item -> bin of each held-out clean row
    missing_rate: dict[str, float]            # OCR field -> share missing in the reference rows
    confidence: dict[str, float]              # OCR field -> median read confidence (fields read with one)
    object_roi: tuple[int, int, int, int]
    box_size: int                             # object boxes are resized to this square for the statistics
    n_rows: int
    source: str = ""                          # what it was fitted on (for the report)
    decisions: dict = field(default_factory=dict)   # the champion's defect rate / mean probability on clean rows

    def field_reference(self, item: str):
        modality, name = item.split(":", 1)
        ref = self.ocr if modality == "ocr" else self.image
        return next(f for f in ref.fields if f.name == name)

    @property
    def items(self) -> tuple[str, ...]:
        return tuple(f"ocr:{f.name}" for f in self.ocr.fields) + tuple(f"image:{f.name}" for f in self.image.fields)

    def missing_probs(self, item: str) -> np.ndarray:
        """(2,) [read, missing] of an OCR field in the reference: its histogram's missing bin (smoothed)."""
        missing = float(self.field_reference(item).probs[-1])
        return np.array([1.0 - missing, missing])

    def thresholds(self, n: int, quantile: float, factor: float, draws: int = 400, seed: int = 0,
                   floor: float = 0.05) -> dict[str, float]:
        """item -> alert threshold for a night of `n` rows (module docstring); for each OCR field also
        `<item>#missing`, the threshold of its read-or-missing test (compare.py)."""
        if n < 1:
            raise DriftError("a night needs at least one row")
        rng = np.random.default_rng(seed)

        def threshold(bins: np.ndarray, probs: np.ndarray) -> float:
            picks = bins[rng.integers(0, len(bins), size=(draws, n))]                  # (draws, n)
            counts = np.stack([np.bincount(p, minlength=len(probs)) for p in picks])
            return float(max(floor, factor * np.quantile(smoothed_kl(counts, probs), quantile)))

        out = {}
        for item in self.items:
            probs = np.asarray(self.field_reference(item).probs)
            bins = np.asarray(self.calibration[item], dtype=np.int64)
            out[item] = threshold(bins, probs)
            if item.startswith("ocr:"):
                out[f"{item}#missing"] = threshold((bins == len(probs) - 1).astype(np.int64), self.missing_probs(item))
        return out

    def save(self, path: str | Path) -> Path:
        raw = {"format": FORMAT, "ocr": self.ocr.to_dict(), "image": self.image.to_dict(),
               "calibration": self.calibration, "missing_rate": self.missing_rate, "confidence": self.confidence,
               "object_roi": list(self.object_roi), "box_size": self.box_size, "n_rows": self.n_rows,
               "source": self.source, "decisions": self.decisions}
        return write_text_atomic(path, json.dumps(raw) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DriftReference:
        from oanet.jsonsafe import read_artifact

        raw = read_artifact(path, FORMAT, "drift reference", DriftError, "run the drift stage (`oanet drift`)")
        return cls(OcrReference.from_dict(raw["ocr"]), OcrReference.from_dict(raw["image"]), raw["calibration"],
                   raw["missing_rate"], raw["confidence"], tuple(raw["object_roi"]), int(raw["box_size"]),
                   int(raw["n_rows"]), raw.get("source", ""), raw.get("decisions", {}))


def _median_confidence(table: pd.DataFrame, name: str) -> float:
    column = f"{name}__conf"
    if column not in table:
        return float("nan")
    values = pd.to_numeric(table[column], errors="coerce").dropna()
    return float(values.median()) if len(values) else float("nan")


def fit_reference(schema, reference: pd.DataFrame, reference_stats: pd.DataFrame, held_out: pd.DataFrame,
                  held_out_stats: pd.DataFrame, object_roi, box_size: int, bins: int = 10,
                  source: str = "") -> DriftReference:
    """The reference from clean rows (`reference`, e.g. the training rows) and their image statistics;
    `held_out` clean rows (e.g. validation) calibrate the thresholds. schema: oanet.features.TabularSchema."""
    if len(reference) < 2 or len(held_out) < 2:
        raise DriftError(f"a drift reference needs clean rows to fit and to calibrate on; got {len(reference)} "
                         f"and {len(held_out)}")
    ocr = OcrReference.fit(reference, schema.numeric, schema.categories, bins)
    image = OcrReference.fit(reference_stats, IMAGE_STATISTICS, (), bins)
    calibration = {f"ocr:{f.name}": f.bins(held_out[f.name]).tolist() for f in ocr.fields}
    calibration |= {f"image:{f.name}": f.bins(held_out_stats[f.name]).tolist() for f in image.fields}
    return DriftReference(
        ocr, image, calibration,
        missing_rate={name: float(reference[name].isna().mean()) for name in schema.fields},
        confidence={name: c for name in schema.fields if np.isfinite(c := _median_confidence(reference, name))},
        object_roi=tuple(int(v) for v in object_roi), box_size=int(box_size), n_rows=len(reference), source=source)
