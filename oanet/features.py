"""The tabular modality: the layout's feature fields as a numeric matrix.

Numeric fields stay numbers with NaN for missing; category fields become one-hot
columns (a missing category is all zeros). The schema is derived from the layout and
travels with every model, so training and inference build the same columns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from oanet.layout import Layout


@dataclass(frozen=True)
class TabularSchema:
    numeric: tuple[str, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...]   # (field, its categories)

    @classmethod
    def from_layout(cls, layout: Layout) -> TabularSchema:
        feats = layout.feature_fields
        return cls(
            numeric=tuple(f.name for f in feats if f.dtype in ("float", "int")),
            categories=tuple((f.name, f.categories or ()) for f in feats if f.dtype in ("str", "category")),
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names in column order; masking acts on fields, not columns."""
        return self.numeric + tuple(name for name, _ in self.categories)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + tuple(f"{name}={c}" for name, cats in self.categories for c in cats)

    def field_of_column(self) -> np.ndarray:
        """(n_columns,) index into `fields` of the field each column encodes."""
        index = list(range(len(self.numeric)))
        for j, (_, cats) in enumerate(self.categories):
            index += [len(self.numeric) + j] * len(cats)
        return np.asarray(index, dtype=np.int64)

    def matrix(self, table: pd.DataFrame) -> np.ndarray:
        """(n_rows, n_columns) float32; NaN marks a missing numeric value."""
        missing = [c for c in self.fields if c not in table.columns]
        if missing:
            raise KeyError(f"table lacks the feature columns {missing}")
        parts = [table[list(self.numeric)].astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)]
        for name, cats in self.categories:
            values = table[name].astype("string")
            parts.append(np.stack([(values == c).fillna(False).to_numpy(dtype=bool) for c in cats], axis=1)
                         if cats else np.zeros((len(table), 0)))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def missing_fields(self, table: pd.DataFrame) -> np.ndarray:
        """(n_rows, n_fields) bool: which fields were not read."""
        return table[list(self.fields)].isna().to_numpy()
