"""Reference distributions of the two modalities and the KL divergence of new data from them.

One formula serves a batch and a single image. For a histogram with counts c over B
bins (n observations) and a reference distribution r (fitted on training rows, with a
pseudo-count of one in each bin so no bin is impossible):

    h = (c + s * r) / (n + s)          s = 1: one pseudo-observation drawn from r
    KL(h || r) = sum_b h_b * log(h_b / r_b)

For a single row (n = 1) h is half the row's one-hot bin and half the reference, so
a value in a common bin costs little and a value in a rare bin (or a missing one,
when training data had none missing) costs up to about log(1 / (2 r_b)) / 2. For a
batch, h tends to the batch histogram and KL to the usual divergence of the batch.

- OCR: per field, numeric values are binned at training quantiles (plus one bin for
  missing), categories by value (plus "other" and missing); the divergence of a row
  or batch is the mean over fields.
- Image: the object region's gray-level histogram (32 equal bins) and the histogram
  of its gradient magnitude (bins at training quantiles). Occlusion (GridMask), sensor
  noise, a failed light or a wrong object all move one or both; the divergence is the
  mean of the two KLs. It needs no model, so it is the same for every image member.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PSEUDO_COUNT = 1.0
GRAY_BINS = 32


def _probs(counts: np.ndarray) -> np.ndarray:
    """Reference probabilities from training counts, add-one smoothed: (..., B) -> (..., B)."""
    counts = np.asarray(counts, dtype=np.float64) + 1.0
    return counts / counts.sum(axis=-1, keepdims=True)


def smoothed_kl(counts: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """KL(h || ref) of count histograms (..., B) against ref (B,), h = (c + s r) / (n + s)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=-1, keepdims=True)
    h = (counts + PSEUDO_COUNT * ref) / (n + PSEUDO_COUNT)
    return np.sum(h * np.log(h / ref), axis=-1)


@dataclass(frozen=True)
class FieldReference:
    name: str
    kind: str                        # "numeric" | "category"
    edges: tuple[float, ...]         # numeric: inner bin edges (B-1 values); category: ()
    categories: tuple[str, ...]      # category: known values; numeric: ()
    probs: tuple[float, ...]         # reference probability of each bin; the last bin is "missing"

    def bins(self, values: pd.Series) -> np.ndarray:
        """(N,) bin index of each value; the last index means missing."""
        missing = values.isna().to_numpy()
        if self.kind == "numeric":
            idx = np.searchsorted(np.asarray(self.edges), values.astype("float64").to_numpy(), side="right")
        else:
            lookup = {c: i for i, c in enumerate(self.categories)}
            other = len(self.categories)                                 # a value never seen in training
            idx = np.array([lookup.get(str(v), other) for v in values.astype("object")], dtype=np.int64)
        return np.where(missing, len(self.probs) - 1, idx)

    def counts(self, values: pd.Series) -> np.ndarray:
        """(N, B) one-hot counts of each value's bin."""
        out = np.zeros((len(values), len(self.probs)))
        out[np.arange(len(values)), self.bins(values)] = 1.0
        return out


@dataclass(frozen=True)
class OcrReference:
    """Per-field histograms of the training OCR table."""
    fields: tuple[FieldReference, ...]

    @classmethod
    def fit(cls, table: pd.DataFrame, numeric: Sequence[str], categories: Sequence[tuple[str, Sequence[str]]],
            n_bins: int = 10) -> OcrReference:
        refs = []
        for name in numeric:
            values = table[name].astype("float64").dropna().to_numpy()
            qs = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]) if len(values) else np.zeros(0)
            edges = tuple(float(e) for e in np.unique(qs))
            ref = FieldReference(name, "numeric", edges, (), (0.0,) * (len(edges) + 2))
            refs.append(FieldReference(name, "numeric", edges, (),
                                       tuple(_probs(ref.counts(table[name]).sum(0)))))
        for name, cats in categories:
            ref = FieldReference(name, "category", (), tuple(map(str, cats)), (0.0,) * (len(cats) + 2))
            refs.append(FieldReference(name, "category", (), ref.categories,
                                       tuple(_probs(ref.counts(table[name]).sum(0)))))
        return cls(tuple(refs))

    def field_divergences(self, table: pd.DataFrame) -> np.ndarray:
        """(N, F) smoothed KL of each row's value of each field."""
        return np.stack([smoothed_kl(f.counts(table[f.name]), np.asarray(f.probs)) for f in self.fields], axis=1)

    def divergence(self, table: pd.DataFrame) -> np.ndarray:
        """(N,) per-row OCR divergence: the mean over fields."""
        if not len(table):
            return np.zeros(0)
        return self.field_divergences(table).mean(axis=1)

    def batch_divergence(self, table: pd.DataFrame) -> float:
        """KL of the whole batch's histograms, mean over fields."""
        return float(np.mean([smoothed_kl(f.counts(table[f.name]).sum(0), np.asarray(f.probs))
                              for f in self.fields]))

    def to_dict(self) -> dict:
        return {"fields": [dict(name=f.name, kind=f.kind, edges=list(f.edges), categories=list(f.categories),
                                probs=list(f.probs)) for f in self.fields]}

    @classmethod
    def from_dict(cls, raw: dict) -> OcrReference:
        return cls(tuple(FieldReference(r["name"], r["kind"], tuple(r["edges"]), tuple(r["categories"]),
                                        tuple(r["probs"])) for r in raw["fields"]))


def _gradient(images: np.ndarray) -> np.ndarray:
    """|dx| + |dy| of (N,1,S,S) uint8 images: (N, S-1, S-1) float32."""
    x = images[:, 0].astype(np.float32)
    return np.abs(np.diff(x, axis=2)[:, :-1, :]) + np.abs(np.diff(x, axis=1)[:, :, :-1])


@dataclass(frozen=True)
class ImageReference:
    """Gray-level and gradient-magnitude histograms of the training object regions."""
    gray_probs: tuple[float, ...]
    grad_edges: tuple[float, ...]
    grad_probs: tuple[float, ...]

    @classmethod
    def fit(cls, images, n_grad_bins: int = 16) -> ImageReference:
        arr = _as_numpy(images)
        grad = _gradient(arr)
        qs = np.quantile(grad[:, ::2, ::2], np.linspace(0, 1, n_grad_bins + 1)[1:-1])   # a subsample is plenty
        edges = tuple(float(e) for e in np.unique(qs))
        gray, grads = _gray_counts(arr), _grad_counts(grad, np.asarray(edges))
        return cls(tuple(_probs(gray.sum(0))), edges, tuple(_probs(grads.sum(0))))

    def counts(self, images) -> tuple[np.ndarray, np.ndarray]:
        arr = _as_numpy(images)
        return _gray_counts(arr), _grad_counts(_gradient(arr), np.asarray(self.grad_edges))

    def divergence(self, images) -> np.ndarray:
        """(N,) per-image divergence: mean of the gray-level and gradient KLs."""
        gray, grad = self.counts(images)
        return 0.5 * (smoothed_kl(gray, np.asarray(self.gray_probs)) + smoothed_kl(grad, np.asarray(self.grad_probs)))

    def batch_divergence(self, images) -> float:
        gray, grad = self.counts(images)
        return float(0.5 * (smoothed_kl(gray.sum(0), np.asarray(self.gray_probs))
                            + smoothed_kl(grad.sum(0), np.asarray(self.grad_probs))))

    def to_dict(self) -> dict:
        return {"gray_probs": list(self.gray_probs), "grad_edges": list(self.grad_edges),
                "grad_probs": list(self.grad_probs)}

    @classmethod
    def from_dict(cls, raw: dict) -> ImageReference:
        return cls(tuple(raw["gray_probs"]), tuple(raw["grad_edges"]), tuple(raw["grad_probs"]))


def _as_numpy(images) -> np.ndarray:
    arr = images.cpu().numpy() if hasattr(images, "cpu") else np.asarray(images)
    if arr.ndim != 4 or arr.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, S, S), got {arr.shape}")
    return arr


def _gray_counts(arr: np.ndarray) -> np.ndarray:
    """(N, GRAY_BINS) pixel counts of 8-bit gray levels in equal bins."""
    idx = (arr[:, 0].reshape(len(arr), -1).astype(np.int64) * GRAY_BINS) // 256
    return np.stack([np.bincount(row, minlength=GRAY_BINS) for row in idx]).astype(np.float64) \
        if len(arr) else np.zeros((0, GRAY_BINS))


def _grad_counts(grad: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(edges, grad.reshape(len(grad), -1), side="right")
    return np.stack([np.bincount(row, minlength=len(edges) + 1) for row in idx]).astype(np.float64) \
        if len(grad) else np.zeros((0, len(edges) + 1))


@dataclass(frozen=True)
class References:
    """Both modalities' references: what the gate compares incoming rows with."""
    ocr: OcrReference
    image: ImageReference

    @classmethod
    def fit(cls, schema, table: pd.DataFrame, images, ocr_bins: int = 10) -> References:
        return cls(OcrReference.fit(table, schema.numeric, schema.categories, ocr_bins), ImageReference.fit(images))

    def divergences(self, table: pd.DataFrame, images) -> dict[str, np.ndarray]:
        """{"image": (N,), "ocr": (N,)} per-row divergences."""
        return {"image": self.image.divergence(images), "ocr": self.ocr.divergence(table)}

    def batch_divergences(self, table: pd.DataFrame, images) -> dict[str, float]:
        return {"image": self.image.batch_divergence(images), "ocr": self.ocr.batch_divergence(table)}

    def to_dict(self) -> dict:
        return {"ocr": self.ocr.to_dict(), "image": self.image.to_dict()}

    @classmethod
    def from_dict(cls, raw: dict) -> References:
        return cls(OcrReference.from_dict(raw["ocr"]), ImageReference.from_dict(raw["image"]))
