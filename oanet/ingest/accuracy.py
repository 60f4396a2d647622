"""Field exact match of an ingested table against the printed truth of a synthetic set.

`truth.csv` (written by `oanet synth`) holds, per image, the exact printed value string
of every field of the layout it printed from. The table may come from another layout of
the same panel (keys only, or a draft from `oanet layout suggest` whose field names and
dtypes differ): its fields are matched to the printed ones by key. A value is exact when
it equals the printed one (numbers compared as numbers), wrong when present but
different, missing otherwise.
"""
from __future__ import annotations

import re

import pandas as pd

from oanet.layout import Field, Layout


def _norm(key: str) -> str:
    """Letters and digits of any script, in lower case: `[LOT]` is lot, `烧结温度` stays itself."""
    return re.sub(r"[\W_]+", "", key.lower())


def match_fields(read: Layout, printed: Layout) -> dict[str, Field]:
    """{printed field name: the field of `read` with the same key}; a key that the draft
    extended (`Thk_mm mm` for `Thk_mm` with its unit first, `TEMP >>` for `TEMP`) matches by
    prefix; punctuation and case are ignored (`[LOT]` is LOT)."""
    out = {}
    for p in printed.fields:
        same = [f for f in read.fields if _norm(f.key) == _norm(p.key)] or \
            [f for f in read.fields if _norm(f.key).startswith(_norm(p.key))]
        if same:
            out[p.name] = same[0]
    return out


def _equal(got, printed: str, numeric: bool) -> bool:
    """Numbers as numbers (a draft may read a printed category `3` as the int 3)."""
    if numeric or isinstance(got, (int, float)):
        try:
            return float(got) == float(printed)
        except (TypeError, ValueError):
            return False
    return str(got) == printed


def score_fields(table: pd.DataFrame, truth: pd.DataFrame, read: Layout, printed: Layout) -> pd.DataFrame:
    """One row per printed field: n, exact, wrong and missing shares, missing counts by reason.
    A printed field the read layout lacks counts as missing (`no_field`) on every image."""
    merged = truth.merge(table, on="image", how="inner", suffixes=("__truth", ""))
    matched = match_fields(read, printed)
    rows = []
    for p in printed.fields:
        f = matched.get(p.name)
        want = merged[f"{p.name}__truth" if f"{p.name}__truth" in merged else p.name].astype(str)
        if f is None:
            rows.append({"field": p.name, "n": len(merged), "exact": 0.0, "wrong": 0.0, "missing": 1.0,
                         "missing:no_field": len(merged)})
            continue
        got = merged[f.name]
        present = got.notna()
        numeric = p.dtype in ("float", "int")
        exact = pd.Series([bool(ok) and _equal(g, w, numeric) for g, w, ok in zip(got, want, present, strict=True)],
                          index=merged.index)
        reasons = merged[f"{f.name}__reason"].value_counts().to_dict()
        rows.append({"field": p.name, "n": len(merged), "exact": float(exact.mean()),
                     "wrong": float((present & ~exact).mean()), "missing": float((~present).mean()),
                     **{f"missing:{k}": v for k, v in reasons.items()}})
    return pd.DataFrame(rows).fillna(0)


def overall(scores: pd.DataFrame) -> dict[str, float]:
    """Exact, wrong and missing shares over every field read, weighted by rows."""
    cells = scores["n"].sum()
    return {k: float((scores[k] * scores["n"]).sum() / cells) if cells else 0.0 for k in ("exact", "wrong", "missing")} \
        | {"fields": int(cells)}
