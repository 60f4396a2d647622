"""Turn one OCR read into a typed value, or into missing with a reason code.

A value is accepted only when the read is confident, matches the field's printed
format (digits and decimals, pattern or category) and lies in its physical range:
a dropped decimal point or a misread letter ends as missing, never as a wrong number.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from oanet.layout import Field

NOT_FOUND, LOW_CONFIDENCE, UNPARSED, OUT_OF_RANGE = "not_found", "low_confidence", "unparsed", "out_of_range"
REASONS = (NOT_FOUND, LOW_CONFIDENCE, UNPARSED, OUT_OF_RANGE)

# Letters a recogniser confuses with digits; applied only where digits are expected.
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", ",": "."})


class Parsed(NamedTuple):
    value: float | str | None
    reason: str | None


def strip_key(field: Field, text: str) -> str:
    """Drop a leading `KEY:` when the read covers the whole line."""
    m = re.match(rf"\s*{re.escape(field.key)}\s*[:;.]?\s*", text, flags=re.IGNORECASE)
    return text[m.end():] if m else text


def strip_unit(field: Field, text: str) -> str:
    if field.unit and text.lower().endswith(field.unit.lower()):
        return text[: -len(field.unit)]
    return text


def _candidates(field: Field, raw: str) -> list[str]:
    text = re.sub(r"\s+", "", strip_unit(field, strip_key(field, raw).strip()).strip())
    if field.dtype in ("float", "int"):
        return [text.translate(_DIGIT_LOOKALIKES)]
    first_digit = next((i for i, ch in enumerate(text) if ch.isdigit()), len(text))
    return [text, text[:first_digit] + text[first_digit:].translate(_DIGIT_LOOKALIKES)]


def _canonical(text: str) -> str:
    return text.upper().replace("O", "0").replace("I", "1").replace("L", "1").replace("|", "1")


def match_category(categories: tuple[str, ...], text: str) -> str | None:
    """The one category that equals the read once O/0 and I/l/1 are merged, if exactly one does."""
    hits = [c for c in categories if _canonical(c) == _canonical(text)]
    return hits[0] if len(hits) == 1 else None


def parse_read(field: Field, text: str | None, score: float | None, min_confidence: float) -> Parsed:
    if text is None or not text.strip():
        return Parsed(None, NOT_FOUND)
    if score is None or score < min_confidence:
        return Parsed(None, LOW_CONFIDENCE)
    pattern = field.value_regex()
    candidates = _candidates(field, text)
    match = next((c for c in candidates if pattern.fullmatch(c)), None)
    if match is None and field.categories:
        match = match_category(field.categories, candidates[0])
    if match is None:
        return Parsed(None, UNPARSED)
    if field.dtype in ("str", "category"):
        return Parsed(match, None)
    value = float(match)
    if field.range is not None and not field.range[0] <= value <= field.range[1]:
        return Parsed(None, OUT_OF_RANGE)
    return Parsed(value, None)
