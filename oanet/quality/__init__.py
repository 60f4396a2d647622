"""Data quality: expectation suites as plain data, derived from the layout and params.

This package never imports Great Expectations; `flows/validate.py` turns these dicts into
GX objects and runs them.
"""
from oanet.quality.expectations import (
    FailedExpectation,
    ValidationFailed,
    batch_suite,
    field_suite,
    load_suite,
    write_field_suite,
)

__all__ = ["FailedExpectation", "ValidationFailed", "batch_suite", "field_suite", "load_suite",
           "write_field_suite"]
