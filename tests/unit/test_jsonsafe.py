"""One rule for strict JSON: NaN and infinities as null, numpy scalars as plain numbers."""
from __future__ import annotations

import json

import numpy as np

from oanet.jsonsafe import plain, strict_json


def test_nan_and_infinities_become_null_at_any_depth():
    value = {"a": float("nan"), "b": [1.0, float("inf"), (np.float64("nan"), -np.inf)], 3: {"c": 0.5}}
    out = strict_json(value)
    assert out == {"a": None, "b": [1.0, None, [None, None]], "3": {"c": 0.5}}
    json.dumps(out, allow_nan=False)


def test_numpy_scalars_become_plain_values_and_the_rest_is_kept():
    out = strict_json({"n": np.int64(3), "f": np.float32(0.5), "ok": np.bool_(True), "s": "text", "none": None})
    assert out == {"n": 3, "f": 0.5, "ok": True, "s": "text", "none": None}
    assert type(out["n"]) is int and type(out["f"]) is float and type(out["ok"]) is bool
    assert plain(np.int32(7)) == 7 and type(plain(np.int32(7))) is int
    assert plain("x") == "x" and plain(None) is None
