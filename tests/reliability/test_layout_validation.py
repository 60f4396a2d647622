"""Finding 11: layout.yaml is checked at load; patterns are a bounded language; messages name the field."""
from __future__ import annotations

import copy
import time

import pytest

from oanet.ingest.parse import UNPARSED, parse_read
from oanet.layout import LayoutError, layout_from_dict
from oanet.synth.aoi_layout import aoi_v1_layout


@pytest.fixture
def raw() -> dict:
    return copy.deepcopy(aoi_v1_layout().to_dict())


def _field(raw: dict, name: str) -> dict:
    return next(f for f in raw["fields"] if f["name"] == name)


def _refused(raw: dict, *words: str) -> None:
    with pytest.raises(LayoutError) as err:
        layout_from_dict(raw)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


@pytest.mark.parametrize("pattern", [
    r"B(\d+)+X",              # nested quantifier: about 5x slower per 2 characters
    r"(a|aa)+b",              # alternation under a repeat
    r"L(\d{4}-)*\d{4}",
    r"(\w)\1",                # backreference
    r"(?=L)L\d+",             # lookaround
    r"(?<!X)\d+",
    r"\d*\d*\d*\d*X",         # four open repeats side by side: O(n^4)
    "L" + r"\d" * 60,         # longer than MAX_PATTERN_CHARS
    r"L(\d",                  # not a regex at all
])
def test_layout_refuses_patterns_outside_the_bounded_language(raw, pattern):
    _field(raw, "lot").update(pattern=pattern)
    _refused(raw, "lot", "pattern")


def test_layout_catastrophic_pattern_is_refused_before_any_matching(raw):
    _field(raw, "lot").update(pattern=r"B(\d+)+X")
    start = time.perf_counter()
    _refused(raw, "field lot pattern")
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("pattern", [r"L\d{4}-\d{4}", r"U\d{6}", r"[A-Z]+-?\d+(\.\d+)?", r"(AOI|STN)-\d{2}",
                                     r"(?i)lot\s?\d+"])
def test_layout_keeps_ordinary_patterns(raw, pattern):
    _field(raw, "lot").update(pattern=pattern)
    assert layout_from_dict(raw).fields[[f["name"] for f in raw["fields"]].index("lot")].pattern == pattern


def test_layout_pattern_values_are_capped_before_matching(raw):
    """A value longer than MAX_VALUE_CHARS never reaches the regex: the worst allowed pattern stays fast."""
    _field(raw, "lot").update(pattern=r"\d*\d*\d*\d?\d?\d?\d?X")   # the most backtracking allowed
    lot = next(f for f in layout_from_dict(raw).fields if f.name == "lot")
    start = time.perf_counter()
    parsed = parse_read(lot, "LOT: " + "1" * 500, 0.99, 0.8)          # seconds per candidate, uncapped
    assert parsed.reason == UNPARSED and time.perf_counter() - start < 1.0


@pytest.mark.parametrize("roi", [
    [330, 300, 700, 324],      # past the 640 px wide canvas
    [330, 470, 550, 500],      # past the bottom
    [-10, 300, 550, 324],      # negative
    [True, 300, 550, 324],     # a boolean is an int to Python: refused all the same
    [330, 300, 550.0, 324],
])
def test_layout_refuses_field_boxes_off_the_canvas(raw, roi):
    _field(raw, "press_mpa").update(roi=roi)
    _refused(raw, "press_mpa", "roi")


@pytest.mark.parametrize("edit", [
    lambda r: r.update(object_roi=[0, 160, 320, 481]),
    lambda r: r.update(object_roi=[-1, 160, 320, 480]),
    lambda r: r.update(object_roi=[False, 160, 320, 480]),
])
def test_layout_refuses_an_object_box_off_the_canvas(raw, edit):
    edit(raw)
    _refused(raw, "object_roi")


@pytest.mark.parametrize("size", [[True, 480], [640, True], [640.0, 480]])
def test_layout_refuses_sizes_that_are_not_pixel_counts(raw, size):
    raw["size"] = size
    _refused(raw, "size")


@pytest.mark.parametrize("rng", [[float("nan"), 10], [0, float("nan")], [float("-inf"), 5], ["a", "b"],
                                 [True, 5], [5, 1]])
def test_layout_refuses_ranges_that_are_not_finite_low_high(raw, rng):
    _field(raw, "gain_db").update(range=rng)
    _refused(raw, "gain_db", "range")


@pytest.mark.parametrize("decimals", [-1, 1.5, True, "2"])
def test_layout_refuses_bad_decimals(raw, decimals):
    _field(raw, "gain_db").update(decimals=decimals)
    _refused(raw, "gain_db", "decimals")


@pytest.mark.parametrize("categories", [[], ["AOI-01", ""], [1, 2], "AOI-01"])
def test_layout_refuses_categories_that_are_not_non_empty_strings(raw, categories):
    _field(raw, "station").update(categories=categories)
    _refused(raw, "station", "categories")


def test_layout_refuses_a_unit_that_is_not_text(raw):
    _field(raw, "gain_db").update(unit=5)
    _refused(raw, "gain_db", "unit")
