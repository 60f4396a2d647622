"""The general path: detected pieces joined into lines, lines matched to fields by key."""
from __future__ import annotations

import numpy as np

from oanet.ingest.engine import Read
from oanet.ingest.reading import find_by_key, match_lines, merge_fragments, panel_only
from oanet.layout import Field, Layout

LAYOUT = Layout("m", (640, 480), (0, 240, 320, 480), (
    Field("temp", "Temp", "float", decimals=1), Field("temp_max", "TempMax", "float", decimals=1),
    Field("gray", "Gray Avg", "float", decimals=1), Field("line", "line", "str"),
))


def test_pieces_cut_at_wide_gaps_join_into_one_line_but_columns_stay_apart():
    reads = [Read("GrayAvg", 0.99, (10, 10, 80, 28)), Read("= 85.7", 0.95, (100, 11, 150, 29)),
             Read("Temp: 1187.8", 0.99, (400, 10, 520, 28))]
    lines = merge_fragments(reads)
    assert [(r.text, r.score, r.box) for r in lines] == [
        ("GrayAvg = 85.7", 0.95, (10, 10, 150, 29)), ("Temp: 1187.8", 0.99, (400, 10, 520, 28))]


def test_longest_key_first_any_case_and_spaces_optional():
    reads = [Read("TEMPMAX = 1200.1", 0.99, (10, 10, 150, 28)), Read("temp : 1187.8", 0.99, (10, 40, 150, 58)),
             Read("GrayAvg -> 85.7", 0.99, (10, 70, 150, 88)), Read("Line B1", 0.99, (10, 100, 150, 118)),
             Read("Temperature 3", 0.99, (10, 130, 150, 148))]
    found = find_by_key(LAYOUT, reads)
    assert found == {"temp_max": ["TEMPMAX = 1200.1", 0.99], "temp": ["temp : 1187.8", 0.99],
                     "gray": ["GrayAvg -> 85.7", 0.99], "line": ["Line B1", 0.99]}
    assert match_lines(LAYOUT, reads)["gray"].box == (10, 70, 150, 88)


def test_panel_only_fills_the_object_with_the_panels_background_wherever_it_sits():
    img = np.full((100, 100), 230, np.uint8)      # a light panel
    img[:50, 50:] = 10                             # the object, top-right
    layout = Layout("t", (100, 100), (50, 0, 100, 50), (Field("a", "A"),))
    assert (panel_only(img, layout) == 230).all()


def test_a_format_that_prints_before_the_key_still_matches():
    layout = Layout("f", (640, 480), (0, 240, 320, 480), (
        Field("lot", "LOT", "str", pattern=r"L\d{4}-\d{4}", format="[{key}] {value}"),))
    found = find_by_key(layout, [Read("[LOT] L2611-0001", 0.99, (10, 10, 150, 28))])
    assert found == {"lot": ["[LOT] L2611-0001", 0.99]}
