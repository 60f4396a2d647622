"""Mask learning for the tabular models: train on extra copies of the rows with OCR fields dropped.

The fusion network learns to live with unread fields by masking them in training; the
tabular models need the same, or a field that was never missing in training sends
them down an arbitrary branch at inference (docs/benchmarks.md, "Smaller measurements":
what the models did on MT-AOI with 60% of the values dropped). Each copy drops every
field of every row with probability `prob`, in the feature matrix's own encoding: NaN for
a numeric column, all zeros for a category's one-hot columns (what `TabularSchema.matrix`
gives for a missing value).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FieldMasking:
    field_of_column: tuple[int, ...]     # (C,) field index of each column
    n_numeric: int                       # the first n_numeric columns are numeric, the rest one-hot
    prob: float
    copies: int
    seed: int

    @classmethod
    def from_schema(cls, schema, prob: float, copies: int, seed: int) -> FieldMasking:
        return cls(tuple(int(i) for i in schema.field_of_column()), len(schema.numeric), prob, copies, seed)

    def augment(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) followed by `copies` masked copies: ((1 + copies) N, C), ((1 + copies) N,)."""
        if self.prob <= 0 or self.copies <= 0 or X.shape[1] == 0:
            return X, y
        X = np.asarray(X, dtype=np.float32)
        foc = np.asarray(self.field_of_column)
        numeric = np.arange(X.shape[1]) < self.n_numeric                       # (C,)
        rng = np.random.default_rng(self.seed)
        parts = [X]
        for _ in range(self.copies):
            hit = rng.random((len(X), int(foc.max()) + 1)) < self.prob           # (N, F)
            cols = hit[:, foc]                                                 # (N, C)
            parts.append(np.where(cols, np.where(numeric, np.float32(np.nan), np.float32(0.0)), X))
        return np.concatenate(parts), np.tile(np.asarray(y), self.copies + 1)


def fit_learner(name: str, X: np.ndarray, y: np.ndarray, masking: FieldMasking | None = None, **kwargs):
    """A registry learner fitted on (X, y), with masked copies added when `masking` is given."""
    from oanet.tabular.learners import get_learner

    if masking is not None:
        X, y = masking.augment(X, y)
    return get_learner(name, **kwargs).fit(X, y)
