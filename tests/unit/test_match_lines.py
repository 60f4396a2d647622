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


SHARED = Layout("s", (640, 480), (0, 240, 320, 480), (
    Field("temp", "Temp", "float", unit="C", decimals=1), Field("press", "Press", "float", unit="MPa", decimals=2),
    Field("x", "X", "float", decimals=2), Field("y", "Y", "float", decimals=2),
    Field("temp_max", "Temp Max", "float", decimals=1), Field("max", "Max", "float", decimals=1),
    Field("c", "C", "float", decimals=1),
))


def test_a_line_printing_several_fields_is_cut_at_their_keys_and_serves_each():
    reads = [Read("Temp: 1127.4 C Press: 45.40 MPa", 0.97, (230, 20, 530, 40)),
             Read("X:-4.59 Y: 3.25", 0.96, (230, 60, 380, 80))]
    found = match_lines(SHARED, reads)
    assert {k: r.text for k, r in found.items()} == {"temp": "Temp: 1127.4 C", "press": "Press: 45.40 MPa",
                                                     "x": "X:-4.59", "y": "Y: 3.25"}
    assert all(r.estimated_box and r.score == 0.97 for k, r in found.items() if k in ("temp", "press"))
    t, p = found["temp"].box, found["press"].box
    assert t[0] == 230 and p[2] == 530 and t[2] > p[0]      # each piece's box reaches past its share: they overlap


def test_a_key_inside_another_key_a_unit_or_a_value_cuts_nothing():
    reads = [Read("Temp Max: 3.5 C", 0.99, (10, 10, 200, 28)), Read("Max = 7.1", 0.99, (10, 40, 200, 58))]
    found = match_lines(SHARED, reads)
    assert found["temp_max"].text == "Temp Max: 3.5 C" and found["max"].text == "Max = 7.1"
    assert not found["temp_max"].estimated_box and "c" not in found      # `C` ends a line: a unit, not a key


def test_a_key_alone_joins_its_value_in_the_next_column_however_far_but_only_once():
    table = Layout("t", (800, 400), (0, 200, 240, 400), (
        Field("press", "Pressure", "float", unit="MPa", decimals=2), Field("gray", "Gray mean", "float", decimals=1),
        Field("mode", "Mode", "str"), Field("shift", "Shift", "category", categories=("DAY", "NIGHT")),
        Field("temp", "TEMP", "float", decimals=1)))
    reads = [Read("Pressure", 0.99, (260, 15, 340, 35)), Read("45.40 MPa", 0.98, (520, 15, 610, 35)),
             Read("Gray", 0.99, (260, 55, 300, 75)), Read("mean", 0.99, (306, 55, 350, 75)),
             Read("62.5", 0.97, (520, 55, 560, 75)),
             Read("Mode", 0.99, (260, 95, 310, 115)), Read("AUTO", 0.99, (520, 95, 570, 115)),
             Read("Shift", 0.99, (620, 95, 670, 115)), Read("DAY", 0.99, (740, 95, 790, 115)),
             Read("Operator", 0.99, (260, 135, 340, 155)), Read("TEMP -> 1124.7", 0.99, (520, 135, 660, 155))]
    lines = [r.text for r in merge_fragments(reads)]
    assert lines == ["Pressure 45.40 MPa", "Gray mean 62.5", "Mode AUTO", "Shift DAY", "Operator",
                     "TEMP -> 1124.7"]
    found = match_lines(table, reads)
    assert found["press"].box == (260, 15, 610, 35) and found["shift"].text == "Shift DAY"


def test_a_header_naming_a_key_loses_to_the_fields_own_line_below_it():
    layout = Layout("h", (640, 480), (0, 240, 320, 480), (
        Field("line", "Line", "int", range=(1, 20)), Field("station", "Station", "int", range=(1, 20)),
        Field("temp", "Temp", "float", decimals=1)))
    reads = [Read("AOI-3000 LINE 8 STATION 6", 0.99, (10, 5, 400, 25)),
             Read("Line: 5", 0.99, (10, 40, 120, 60)), Read("Station: 2", 0.99, (10, 70, 140, 90)),
             Read("Temp: 1124.7", 0.99, (10, 100, 160, 120))]
    found = find_by_key(layout, reads)
    assert found == {"line": ["Line: 5", 0.99], "station": ["Station: 2", 0.99], "temp": ["Temp: 1124.7", 0.99]}


def test_a_tile_key_takes_the_bare_value_below_it_and_never_its_neighbours_key():
    tiles = Layout("t", (800, 600), (540, 330, 780, 570), (
        Field("temp", "Temp", "float", unit="C", decimals=1), Field("press", "Pressure", "float", unit="MPa", decimals=2),
        Field("lot", "LOT", "str", pattern=r"L\d{4}-\d{2}"), Field("speed", "Speed", "float", decimals=1)))
    reads = [Read("Temp", 0.99, (20, 20, 60, 33)), Read("Pressure", 0.99, (270, 20, 334, 33)),
             Read("1072.2 C", 0.98, (20, 50, 148, 72)), Read("62.00 MPa", 0.98, (270, 50, 423, 72)),
             Read("LOT", 0.99, (20, 115, 50, 128)), Read("L2142-00", 0.97, (20, 145, 150, 167)),
             Read("MACHINE STATUS", 0.99, (20, 200, 200, 215)), Read("Speed: 3.5", 0.99, (20, 230, 140, 248))]
    found = match_lines(tiles, reads)
    assert {k: r.text for k, r in found.items()} == {"temp": "Temp 1072.2 C", "press": "Pressure 62.00 MPa",
                                                     "lot": "LOT L2142-00", "speed": "Speed: 3.5"}
    assert found["temp"].box == (20, 50, 148, 72)          # the value's line: its crop reads the value
    assert "MACHINE STATUS" in [r.text for r in merge_fragments(reads)]    # a title keeps the `KEY: VALUE` below it apart
