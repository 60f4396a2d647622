"""Values fit for strict JSON: one rule for every file and record the project writes.

NaN and infinities become null (strict JSON has no NaN: `json.dumps` would write a token
other readers reject), numpy scalars become plain Python numbers, tuples become lists and
dict keys become strings.
"""
from __future__ import annotations

import math


def plain(value):
    """A numpy scalar (as pandas, scikit-learn and GX leave in their results) as a plain Python value."""
    return value.item() if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)) else value


def strict_json(value):
    """`value` with NaN/inf as None, numpy scalars plain, recursively through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_artifact(path, fmt: str, what: str, error: type[Exception], missing_hint: str) -> dict:
    """The JSON of a `what` file whose "format" must be `fmt`; `error` (a message naming the file) when
    it is absent (`missing_hint` says what writes it), not JSON, or of another format."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise error(f"no {what} at {path}: {missing_hint}")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path} is not a {what} (not JSON: {err})") from None
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise error(f"{path} is not a {what} ({fmt}), format {found!r}")
    return raw
