"""`oanet layout suggest` from detected reads: keys, boxes, dtypes, ranges, the object box."""
from __future__ import annotations

import pytest

from oanet.ingest.engine import Read
from oanet.ingest.parse import parse_read
from oanet.ingest.suggest import (
    SuggestError,
    decimal_mark,
    draft,
    field_name,
    generalise,
    moving_lines,
    needs_full_charset,
    numeric_range,
    object_box,
    plain_numbers,
    printed_fields,
    split_line,
    suggest_from_reads,
    unclaimed_lines,
)
from oanet.layout import layout_from_dict


@pytest.mark.parametrize("text, key, value, unit, first", [
    ("Temp(C) = 1187.8", "Temp(C)", "1187.8", None, False),
    ("GrayAvg 85.7", "GrayAvg", "85.7", None, False),
    ("Gray.Avg: 85.7", "Gray.Avg", "85.7", None, False),
    ("Gray Avg 85.7", "Gray Avg", "85.7", None, False),
    ("Exp/ms -> 12.5", "Exp/ms", "12.5", None, False),
    ("Line : B1", "Line", "B1", None, False),
    ("STN: AOI-01", "STN", "AOI-01", None, False),
    ("Thk_mm 3.512 mm", "Thk_mm", "3.512", "mm", False),
    ("DARK: 12.34%", "DARK", "12.34", "%", False),
    ("Press: MPa 45.20", "Press", "45.20", "MPa", True),
    ("Gain -> +6.5 dB", "Gain", "+6.5", "dB", False),
    ("Offset -3.5", "Offset", "-3.5", None, False),
    ("[LOT]L2611-0001", "[LOT]", "L2611-0001", None, False),              # the space lost by the recogniser
    ("Press 1,232.5 kPa", "Press", "1,232.5", "kPa", False),               # numbers as other locales print them
    ("Leistung: 1.232,5 W", "Leistung", "1.232,5", "W", False),
    ("Mass = 1'232.50 g", "Mass", "1'232.50", "g", False),
    ("Temp: 12,5 C", "Temp", "12,5", "C", False),
    ("Cost: $ 15.69", "Cost", "15.69", "$", True),                        # signs print before the value
    ("Price € 17.30", "Price", "17.30", "€", True),
    ("Dia: ∅ 3.93", "Dia", "3.93", "∅", True),
])
def test_split_line(text, key, value, unit, first):
    part = split_line(text, (0, 0, 10, 10))
    assert (part.key, part.value, part.unit, part.unit_first) == (key, value, unit, first)


@pytest.mark.parametrize("text", ["1187.8", "hello world", "", "A B C 1 2 3"])
def test_lines_without_key_and_value_are_ignored(text):
    assert split_line(text, (0, 0, 10, 10)) is None


def test_generalise():
    assert generalise(["U633262", "U000042"]) == r"U\d{6}"
    assert generalise(["L2611-0001", "L2611-0002"]) == r"L\d{4}\-\d{4}"
    assert generalise(["AOI-01", "AOI-03"]) == r"AOI\-\d{2}"
    assert generalise(["A0I-04", "AOI-01", "AOl-02"]) == r"AOI\-\d{2}"    # the recogniser's 0 and l for O and I
    assert generalise(["B1", "A12"]) == r"[A-Za-z]{1}\d+"
    assert generalise(["x-1", "x1"]) == r"\S+"              # different shapes: anything without spaces


def test_numeric_range_is_wide_but_catches_a_tenfold_misread():
    lo, hi = numeric_range([1187.8, 1121.0, 1150.2], 1)
    assert lo <= 1000 and hi >= 1300                        # values the few images did not show
    assert not lo <= 118.78 <= hi and not lo <= 11878 <= hi  # a dropped digit or point
    assert numeric_range([0.02, 0.5], 4)[0] == 0.0          # non-negative values stay non-negative
    assert numeric_range([-1.0, 6.5], 1)[0] < -1.0


def test_numeric_range_of_two_digit_values_stops_a_dropped_digit_unless_they_are_near_ten():
    lo, hi = numeric_range([45.12, 51.0, 49.25], 2)
    assert (lo, hi) == (10.0, 99.99) and not lo <= 9.25 <= hi          # 49.25 read 9.25 (a probe's draft)
    assert numeric_range([12.5, 15.0], 1)[0] == 0.0                    # 12 may fall to 9.8 on another day


def _line(y: float, x: float = 400, h: float = 20, w: float = 160) -> tuple:
    return (x, y, x + w, y + h)


def test_steady_lines_do_not_move_even_with_print_jitter_or_set_tight():
    jittered = [[_line(y + d) for d in (-3, 0, 2, 4)] for y in (20, 50, 80)]
    assert moving_lines(jittered) == [False, False, False]
    tight = [[_line(y + d, h=19) for d in (0, 1)] for y in (20, 37, 54)]       # 19 px boxes on a 17 px pitch
    assert moving_lines(tight) == [False, False, False]


def test_a_line_left_out_moves_the_lines_below_into_its_place():
    """Temp2 absent on some panels: Temp3 and Temp4 move up a line there."""
    boxes = [[_line(20)] * 4, [_line(50)] * 3, [_line(80)] * 3 + [_line(50)], [_line(110)] * 3 + [_line(80)]]
    assert moving_lines(boxes) == [False, True, True, True]


def test_a_tilt_that_varies_moves_a_line():
    """Each image turned its own way (a probe's 1-2 degrees): where the value is, the line is up to half
    a line higher or lower than in the image before, and its boxes span twice its height."""
    swung = [[(400, 50 + d, 560, 76 + d) for d in (-12, -4, 5, 12)], [_line(120)] * 4]
    assert moving_lines(swung) == [True, False]


def test_fields_whose_lines_move_get_no_box_and_say_why():
    def panel(with_temp2: bool, i: int) -> list[Read]:
        keys = ["Temp1", "Temp2", "Temp3", "Press"] if with_temp2 else ["Temp1", "Temp3", "Press"]
        return [Read(f"{k}: {1100 + i + 7 * n}.{i} C" if k != "Press" else f"Press: 4{i}.50 MPa", 0.99, _line(20 + 30 * n))
                for n, k in enumerate(keys)]
    drafted = draft([panel(i % 3 != 0, i) for i in range(1, 9)], (640, 480))
    boxed = {f.key: f.roi is not None for f in drafted.layout.fields}
    assert boxed == {"Temp1": True, "Temp2": False, "Temp3": False, "Press": False}
    assert set(drafted.unboxed) == {"temp2", "temp3", "press"} and "moves" in drafted.unboxed["temp3"]


def test_field_names_are_snake_case_and_unique():
    taken: set[str] = set()
    assert [field_name(k, taken) for k in ("Temp(C)", "Press[MPa]", "GrayAvg", "temp c", "2nd")] == \
        ["temp_c", "press_mpa", "gray_avg", "temp_c_2", "f_2nd"]


def test_object_box_is_the_largest_empty_corner():
    lines = [(340, 20, 600, 50), (340, 60, 600, 90), (10, 20, 300, 50)]
    assert object_box(lines, (640, 480)) == (0, 90, 640, 480)
    assert object_box([(0, 0, 640, 100)], (640, 480)) == (0, 100, 640, 480)


def _image_reads(temp: float, unit_id: str, station: str, dx: int = 0) -> list[Read]:
    return [
        Read(f"Temp(C) = {temp:.1f}", 0.99, (400 + dx, 20, 560 + dx, 40)),
        Read("Thk_mm", 0.99, (400, 60, 460, 80)), Read("4.012 mm", 0.98, (470, 60, 540, 80)),   # cut at the gap
        Read(f"ID: {unit_id}", 0.99, (400, 100, 520, 120)),
        Read(f"Line : {station}", 0.99, (400, 140, 500, 160)),
        Read("noise", 0.4, (50, 300, 90, 320)),               # texture in the object: seen once, no value
    ]


def test_suggest_from_reads_drafts_a_layout_that_reads_its_lines():
    reads = [_image_reads(1187.8, "U000123", "B1", 0), _image_reads(1121.0, "U000456", "B2", 3),
             _image_reads(1150.2, "U000789", "A1", -2)]
    layout = suggest_from_reads(reads, (640, 480))
    layout_from_dict(layout.to_dict())                        # a valid layout contract
    f = {x.name: x for x in layout.fields}
    assert set(f) == {"temp_c", "thk_mm", "id", "line"}
    assert (f["temp_c"].dtype, f["temp_c"].decimals) == ("float", 1)
    assert (f["thk_mm"].unit, f["thk_mm"].decimals) == ("mm", 3)
    assert f["id"].role == "id" and f["id"].pattern == r"U\d{6}"
    assert f["line"].dtype == "str" and f["line"].role == "feature"
    x0, y0, x1, y1 = f["temp_c"].roi
    assert x0 <= 398 and x1 >= 563 and y0 < 20 and y1 > 40     # the union over images, padded
    assert f["thk_mm"].roi[2] > 540                             # the two pieces make one line
    for a in layout.fields:                                     # boxes never overlap
        for b in layout.fields:
            if a is not b:
                assert a.roi[2] <= b.roi[0] or b.roi[2] <= a.roi[0] or a.roi[3] <= b.roi[1] or b.roi[3] <= a.roi[1]
    assert layout.object_roi[2] <= min(x.roi[0] for x in layout.fields) or \
        layout.object_roi[1] >= max(x.roi[3] for x in layout.fields)
    assert parse_read(f["temp_c"], "Temp(C) = 1201.3", 0.99, 0.8).value == 1201.3
    assert parse_read(f["line"], "Line : C7", 0.99, 0.8).value == "C7"


def test_suggest_needs_a_key_in_half_the_images_and_names_those_it_could_not_read():
    reads = [[Read("noise", 0.5, (0, 0, 5, 5))], [Read("TEMP: 1124.7", 0.9, (0, 0, 90, 20))],
             [Read("blur", 0.3, (0, 0, 5, 5))], [Read("x", 0.3, (0, 0, 5, 5))]]
    with pytest.raises(SuggestError) as err:
        suggest_from_reads(reads, (640, 480), names=["a.png", "b.png", "c.png", "d.png"])
    message = str(err.value)
    assert "no key showed in 2 of the 4 images (found: 'TEMP' in 1)" in message
    assert "no `KEY VALUE` line was read in a.png, c.png, d.png" in message and "IMAGE IMAGE" in message


def _panel(operator: str, shift: str, lot: str, fan: int) -> list[Read]:
    return [Read(f"Operator: {operator}", 0.95, (400, 20, 520, 40)), Read(f"Shift = {shift}", 0.99, (400, 60, 520, 80)),
            Read(f"Lot {lot}", 0.99, (400, 100, 520, 120)), Read(f"Fan 3 {fan} rpm", 0.99, (400, 140, 560, 160))]


def test_a_few_repeated_words_are_a_category_and_a_lot_field_keeps_its_lot_whole():
    reads = [_panel("A", "DAY", "L0041", 1254), _panel("C", "NIGHT", "L0041", 1301),
             _panel("c", "DAY", "L0042", 1222), _panel("C", "DAY", "L0042", 1275)]
    layout = suggest_from_reads(reads, (640, 480))
    f = {x.name: x for x in layout.fields}
    assert (f["operator"].dtype, f["operator"].categories) == ("category", ("A", "C"))    # `c` is C misread
    assert parse_read(f["operator"], "Operator: c", 0.99, 0.8).value == "C"
    assert (f["shift"].dtype, f["shift"].categories) == ("category", ("DAY", "NIGHT"))
    assert f["lot"].role == "group" and f["lot"].dtype == "str"
    assert unclaimed_lines(reads, layout) == [("Fan 3 1254 rpm", 4)]         # `Fan 3` splits nowhere: shown


@pytest.mark.parametrize("values, decimal, plain", [
    (["1,232.5", "999.5", "12,345.0"], ".", ["1232.5", "999.5", "12345.0"]),    # a comma groups, a point is decimal
    (["1.232,5", "12,5"], ",", ["1232.5", "12.5"]),                             # a point groups, a comma is decimal
    (["1’232.50", "1'232.50"], ".", ["1232.50", "1232.50"]),
    (["12,690", "88,416"], ".", ["12690", "88416"]),                            # comma groups of three: thousands
    (["3,998", "4,023"], ",", ["3.998", "4.023"]),                              # ... unless the panel's decimals are commas
    (["1.232", "12.5"], ".", ["1.232", "12.5"]),                                # plain numbers stay as they are
])
def test_plain_numbers_reads_every_value_by_one_convention(values, decimal, plain):
    assert plain_numbers(values, decimal) == plain


@pytest.mark.parametrize("values", [["1,232.5", "1.232,5"], ["1,23.5"], ["AB", "1"], ["1 232"], ["0,770", "1,232"]])
def test_values_of_no_one_convention_are_no_numbers(values):
    assert plain_numbers(values) is None


def test_the_decimal_mark_is_the_panels_shown_by_the_values_that_can_only_be_decimals():
    assert decimal_mark(["7,1", "0,65", "3,998", "1.127,5"]) == ","       # 3,998 alone would be 3998
    assert decimal_mark(["1,232.5", "7.12", "3,998"]) == "."
    assert decimal_mark(["3,998", "12,690", "1.232"]) == "."                # no telling: the point


def test_a_panel_with_decimal_commas_drafts_three_decimals_not_thousands():
    def panel(thick: str, dark: str) -> list[Read]:
        return [Read(f"Dicke: {thick} mm", 0.99, (400, 20, 560, 40)), Read(f"Dunkel: {dark} %", 0.99, (400, 60, 560, 80))]

    f = {x.name: x for x in suggest_from_reads([panel("3,998", "0,65"), panel("4,023", "1,20"),
                                                 panel("4,011", "0,07")], (640, 480)).fields}
    assert (f["dicke"].dtype, f["dicke"].decimals) == ("float", 3)
    assert parse_read(f["dicke"], "Dicke: 4,105 mm", 0.99, 0.8).value == 4.105


def test_a_draft_from_grouped_numbers_reads_them_back_at_ingest():
    def panel(press: str, count: str) -> list[Read]:
        return [Read(f"Press {press} kPa", 0.99, (400, 20, 560, 40)), Read(f"Count: {count}", 0.99, (400, 60, 560, 80))]

    layout = suggest_from_reads([panel("1,232.5", "12,690"), panel("1,504.0", "88,416"), panel("1,187.9", "50,002")],
                                (640, 480))
    f = {x.name: x for x in layout.fields}
    assert (f["press"].dtype, f["press"].decimals, f["press"].unit) == ("float", 1, "kPa")
    assert f["count"].dtype == "int"
    assert parse_read(f["press"], "1,301.7 kPa", 0.99, 0.8).value == 1301.7
    assert parse_read(f["count"], "Count: 61,250", 0.99, 0.8).value == 61250


@pytest.mark.parametrize("text, pieces", [
    ("Temp: 1127.4 C Press: 45.40 MPa", ["Temp: 1127.4 C", "Press: 45.40 MPa"]),
    ("X:-4.59 Y:3.25", ["X:-4.59", "Y:3.25"]),
    ("Shift = DAY Mode -> A", ["Shift = DAY", "Mode -> A"]),
    ("Temp Max: 3.5 C", ["Temp Max: 3.5 C"]),          # no key and value before `Max:`: one field
    ("Time: 12:30:00", ["Time: 12:30:00"]),             # a key starts with a letter
    ("Fan 3 1254 rpm", ["Fan 3 1254 rpm"]),
])
def test_printed_fields_cuts_a_line_before_each_further_key_and_separator(text, pieces):
    assert [r.text for r in printed_fields(Read(text, 0.9, (0, 0, 300, 20)))] == pieces


def test_fields_that_share_a_line_are_drafted_without_a_box_and_read_by_key():
    def panel(x: str, y: str, speed: str) -> list[Read]:
        return [Read(f"X: {x} Y: {y}", 0.99, (400, 20, 560, 40)), Read(f"Speed: {speed} m/s", 0.99, (400, 60, 560, 80))]

    layout = suggest_from_reads([panel("1.64", "-3.95", "3.2"), panel("-4.59", "3.25", "4.1"),
                                 panel("0.19", "3.83", "8.0")], (640, 480))
    f = {x.name: x for x in layout.fields}
    assert set(f) == {"x", "y", "speed"}
    assert f["x"].roi is None and f["y"].roi is None and f["speed"].roi is not None
    assert (f["y"].dtype, f["y"].decimals) == ("float", 2)
    layout_from_dict(layout.to_dict())
    assert unclaimed_lines([panel("1.64", "-3.95", "3.2")], layout) == []


def test_keys_and_words_in_other_scripts():
    def panel(lot: str, temp: str, op: str, name: str) -> list[Read]:
        return [Read(f"批次：{lot}", 0.99, (400, 20, 560, 40)), Read(f"烧结温度：{temp} ℃", 0.99, (400, 60, 560, 80)),
                Read(f"操作员：{op}", 0.99, (400, 100, 560, 120)), Read(f"检验员：{name}", 0.99, (400, 140, 560, 160))]

    layout = suggest_from_reads([panel("L2600", "1127.4", "张三", "王五"), panel("L2600", "1029.8", "李四", "赵六"),
                                 panel("L2601", "1144.3", "张三", "钱七")], (640, 480))
    by_key = {f.key: f for f in layout.fields}
    assert by_key["批次"].role == "group"                                           # 批次 is the lot
    assert (by_key["烧结温度"].dtype, by_key["烧结温度"].unit) == ("float", "℃")
    assert (by_key["操作员"].dtype, by_key["操作员"].categories) == ("category", ("张三", "李四"))
    inspector = by_key["检验员"]
    assert inspector.role == "id" and parse_read(inspector, "检验员：孙八", 0.99, 0.8).value == "孙八"
    assert needs_full_charset(layout) == [inspector.name]      # its letters are in no key, unit or category
    layout_from_dict(layout.to_dict())


def test_a_gauge_printing_exponents_is_drafted_as_a_float_without_a_range():
    reads = [[Read(f"LEAK: {v} mbar", 0.99, (400, 20, 560, 40))] for v in ("3.1e-2", "8.4e-3", "1.2e-2")]
    leak = suggest_from_reads(reads, (640, 480)).fields[0]
    assert (leak.dtype, leak.unit, leak.decimals, leak.range) == ("float", "mbar", 1, None)
    assert parse_read(leak, "LEAK: 5.5e-4 mbar", 0.99, 0.8).value == 0.00055


def test_dates_and_times_are_drafted_as_text_and_never_as_the_units_id():
    def panel(i: int) -> list[Read]:
        return [Read(f"Start : 2026/01/0{i} 14:4{i}", 0.99, (400, 20, 600, 40)),
                Read(f"Clock: {i}:48:4{i} {'AM' if i % 2 else 'PM'}", 0.99, (400, 60, 600, 80)),
                Read(f"Date: 2026-11-0{i}", 0.99, (400, 100, 600, 120)), Read(f"Serial: U00012{i}", 0.99, (400, 140, 600, 160))]

    f = {x.name: x for x in suggest_from_reads([panel(i) for i in (1, 2, 3)], (640, 480)).fields}
    assert set(f) == {"start", "clock", "date", "serial"}              # `Start : 2026/01/01 14:41` was not understood
    assert parse_read(f["start"], "Start : 2026/02/11 09:30", 0.99, 0.8).value == "2026/02/11 09:30"
    assert [x.name for x in f.values() if x.role == "id"] == ["serial"]    # the dates were the id before


def test_placeholders_for_a_missing_value_keep_a_number_field_a_number():
    def panel(temp: str, gray: str) -> list[Read]:
        return [Read(f"TEMP: {temp}", 0.99, (400, 20, 560, 40)), Read(f"GRAY: {gray}", 0.99, (400, 60, 560, 80))]

    values = [("1011.6 C", "39.8"), ("N/AC", "****"), ("1212.3 C", "133.1"), ("ERR", "--.-"), ("1100.2 C", "129.1")]
    f = {x.name: x for x in suggest_from_reads([panel(t, g) for t, g in values], (640, 480)).fields}
    assert (f["temp"].dtype, f["temp"].unit, f["temp"].decimals) == ("float", "C", 1)
    assert (f["gray"].dtype, f["gray"].role) == ("float", "feature")         # was text, and the unit's id
    assert parse_read(f["gray"], "GRAY: N/A", 0.99, 0.8).reason == "unparsed"
    mixed = [panel("1011.6 C", v) for v in ("A1", "B2", "C3", "12.5")]        # words with digits: text
    assert {x.name: x for x in suggest_from_reads(mixed, (640, 480)).fields}["gray"].dtype == "str"


def test_all_distinct_words_stay_text_not_categories():
    reads = [_panel(op, "DAY", "L0041", 1) for op in ("Ann", "Bob", "Cy", "Dee")]
    f = {x.name: x for x in suggest_from_reads(reads, (640, 480)).fields}
    assert f["operator"].dtype == "str" and f["operator"].categories is None
