"""From one OCR read to a typed value or a reason code: never a silently wrong number."""
from __future__ import annotations

import pytest

from oanet.ingest.parse import (
    LOW_CONFIDENCE,
    NOT_FOUND,
    OUT_OF_RANGE,
    REASONS,
    UNCONFIRMED,
    UNPARSED,
    Parsed,
    parse_read,
    parse_stored,
)
from oanet.layout import Field
from oanet.synth.aoi_layout import aoi_v1_layout

LAYOUT = aoi_v1_layout()
F = {f.name: f for f in LAYOUT.fields}
TEMP, PRESS, THICK, DARK, EDGE = F["sinter_temp_c"], F["press_mpa"], F["thickness_mm"], F["dark_pct"], F["edge_frac"]
MIN_CONF = 0.8


def parse(field: Field, text: str | None, score: float | None = 0.99) -> Parsed:
    return parse_read(field, text, score, MIN_CONF)


def test_reason_codes_are_the_issues_four_and_the_second_reads():
    assert set(REASONS) == {"not_found", "low_confidence", "unparsed", "out_of_range", "unconfirmed"}


# --- a doubtful read and its check (a second read of the whole line) ---------------------

@pytest.mark.parametrize("check, expected", [
    ("TEMP: 1124.7 C", Parsed(1124.7, None)),          # the check repeats the value: it stands
    ("TEMP: 1124.7C", Parsed(1124.7, None)),
    ("TEMP: 1124.1 C", Parsed(None, UNCONFIRMED)),     # another value: neither can be trusted
    ("TEMP: 124.7 C", Parsed(1124.7, None)),           # an implausible check (out of range) says nothing
    ("TEMP; 1l24.7 C", Parsed(1124.7, None)),          # lookalikes are mapped in the check as in the read
    ("TEMP: 1124 C", Parsed(1124.7, None)),            # a check that does not parse says nothing either way
    ("", Parsed(1124.7, None)),
])
def test_a_check_that_parses_to_another_value_voids_the_read(check, expected):
    assert parse_read(TEMP, "1124.7 C", 0.9, MIN_CONF, check=check) == expected


def test_a_dropped_digit_fits_the_format_and_only_the_check_catches_it():
    mean = F["gray_mean"]
    assert parse_read(mean, "13.6", 0.85, MIN_CONF) == Parsed(13.6, None)           # printed 133.6
    assert parse_read(mean, "13.6", 0.85, MIN_CONF, check="MEAN: 133.6") == Parsed(None, UNCONFIRMED)


def test_a_check_never_rescues_a_read_that_failed_and_stored_reads_carry_it():
    assert parse_read(TEMP, "1124.7 C", 0.5, MIN_CONF, check="TEMP: 1124.7 C") == Parsed(None, LOW_CONFIDENCE)
    assert parse_read(TEMP, "112.47 C", 0.9, MIN_CONF, check="TEMP: 1124.7 C") == Parsed(None, UNPARSED)
    assert parse_stored(TEMP, ["1124.7 C", 0.9, "TEMP: 1124.1 C"], MIN_CONF) == Parsed(None, UNCONFIRMED)
    assert parse_stored(TEMP, ["1124.7 C", 0.9], MIN_CONF) == Parsed(1124.7, None)
    assert parse_stored(TEMP, None, MIN_CONF) == Parsed(None, NOT_FOUND)


# --- every reason code ----------------------------------------------------------------

@pytest.mark.parametrize("text, score", [(None, None), ("", 0.99), ("   ", 0.99), (None, 0.99)])
def test_not_found(text, score):
    assert parse(TEMP, text, score) == Parsed(None, NOT_FOUND)


@pytest.mark.parametrize("score", [0.79, 0.0, None])
def test_low_confidence(score):
    assert parse(TEMP, "1121.8 C", score) == Parsed(None, LOW_CONFIDENCE)


def test_confidence_threshold_is_inclusive():
    assert parse(TEMP, "1121.8 C", MIN_CONF) == Parsed(1121.8, None)


@pytest.mark.parametrize("field, text", [
    (TEMP, "1121 C"),          # dropped decimal point: 1121 would be a wrong number
    (TEMP, "11218 C"),         # dropped point, digits kept
    (TEMP, "1121.85 C"),       # one digit too many
    (PRESS, "4641 MPa"),
    (THICK, "4000 mm"),
    (THICK, "4.00 mm"),
    (EDGE, "00216"),
    (DARK, "0.0 %"),
    (TEMP, "abc"),
    (TEMP, "1,21.8 C"),        # a thousands group that lost a digit is no group: not 121.8 or 1.218
    (TEMP, "1.121.8 C"),       # one mark both groups and decimal: which is which is unknowable
    (TEMP, "1121.8 C 7"),      # trailing junk after the unit
    (F["unit_id"], "U63326"),
    (F["lot"], "L2611-001"),
    (F["station"], "AOI-05"),
    (F["light"], "7"),
    (F["light"], "L7"),
])
def test_unparsed(field, text):
    assert parse(field, text) == Parsed(None, UNPARSED)


@pytest.mark.parametrize("field, text", [
    (TEMP, "1500.0 C"), (TEMP, "899.9 C"), (TEMP, "-1121.8 C"),
    (THICK, "5.000 mm"), (EDGE, "1.0001"), (DARK, "100.01 %"),
])
def test_out_of_range(field, text):
    assert parse(field, text) == Parsed(None, OUT_OF_RANGE)


def test_range_bounds_are_inclusive():
    assert parse(TEMP, "900.0 C") == Parsed(900.0, None)
    assert parse(TEMP, "1400.0 C") == Parsed(1400.0, None)
    assert parse(EDGE, "0.0000") == Parsed(0.0, None)


def test_no_range_accepts_any_number():
    f = Field("x", "X", "float", decimals=1)
    assert parse(f, "-99999.5") == Parsed(-99999.5, None)


# --- accepted values, lookalikes, key and unit -----------------------------------------

@pytest.mark.parametrize("field, text, value", [
    (TEMP, "1121.8 C", 1121.8),
    (TEMP, "1121.8C", 1121.8),
    (TEMP, "1121.8 c", 1121.8),
    (TEMP, " 1121.8  C ", 1121.8),
    (TEMP, "TEMP: 1121.8 C", 1121.8),       # the whole line was read
    (TEMP, "temp:1121.8 C", 1121.8),
    (TEMP, "TEMP; 1121.8 C", 1121.8),
    (TEMP, "TEMP 1121.8 C", 1121.8),
    (TEMP, "11 21.8 C", 1121.8),            # a space inside a number is not a separator
    (PRESS, "46.41 MPa", 46.41),
    (PRESS, "46.41 mpa", 46.41),
    (PRESS, "PRESS: 46.41MPa", 46.41),
    (THICK, "4.000 mm", 4.0),
    (DARK, "0.00 %", 0.0),
    (DARK, "12.34%", 12.34),
    (EDGE, "0.0216", 0.0216),
    (F["gain_db"], "6.6 dB", 6.6),
    (F["exposure_ms"], "13.6 ms", 13.6),
])
def test_accepted_numbers(field, text, value):
    assert parse(field, text) == Parsed(value, None)
    assert field.format_value(parse(field, text).value) == field.format_value(value)


@pytest.mark.parametrize("field, text, value", [
    (TEMP, "1O21.8 C", 1021.8),             # O -> 0
    (TEMP, "1o21.8 C", 1021.8),
    (TEMP, "1D21.8 C", 1021.8),             # D -> 0
    (TEMP, "1l21.8 C", 1121.8),             # l -> 1
    (TEMP, "1I21.8 C", 1121.8),             # I -> 1
    (TEMP, "1|21.8 C", 1121.8),             # | -> 1
    (TEMP, "1121,8 C", 1121.8),             # , -> .
    (THICK, "4.OOO mm", 4.0),
    (EDGE, "O.O216", 0.0216),
])
def test_digit_lookalikes_in_numbers(field, text, value):
    assert parse(field, text) == Parsed(value, None)


def test_lookalike_fix_does_not_rescue_a_dropped_point():
    assert parse(TEMP, "1O21 C") == Parsed(None, UNPARSED)


# name, dtype, decimals: a machine set for another locale prints the same values its own way
COUNT, DEC3, DEC1, DEC2 = (Field(n, n.upper(), dt, decimals=d) for n, dt, d in
                           [("count", "int", None), ("dec3", "float", 3), ("dec1", "float", 1), ("dec2", "float", 2)])


@pytest.mark.parametrize("field, text, value", [
    (DEC1, "1,232.5", 1232.5), (DEC1, "1.232,5", 1232.5), (DEC2, "1'232.50", 1232.5), (DEC2, "1’232.50", 1232.5),
    (DEC1, "-1,232.5", -1232.5), (DEC1, "DEC1: 12,345,678.9", 12345678.9), (DEC1, "DEC1 = 1.232,5", 1232.5),
    (COUNT, "12,690", 12690), (COUNT, "12.690", 12690), (COUNT, "1,232,400", 1232400), (COUNT, "COUNT: 12'690", 12690),
    (COUNT, "COUNT 12 690", 12690),            # a space groups too, where the key shows the value's start
    (DEC1, "1, 232.5", 1232.5),                # OCR's space after a mark
    (DEC3, "1,232", 1.232), (DEC3, "1.232", 1.232),   # three decimals: the same text is a decimal comma
    (DEC1, "12,5", 12.5), (DEC3, "0,770", 0.77),       # a decimal comma
])
def test_grouped_thousands_and_decimal_commas_read_as_the_field_prints_them(field, text, value):
    assert parse(field, text) == Parsed(value, None)


@pytest.mark.parametrize("field, text", [
    (COUNT, "1,23"), (COUNT, "12,6900"), (DEC1, "1,23.5"), (DEC1, "1,2345.5"),   # a group lost or gained a digit
    (COUNT, "0,690"),                          # a group never starts the number with 0: a decimal comma
    (DEC1, "1,232,5"), (DEC1, "1.232.5"),      # the same mark twice: no telling groups from decimals
    (COUNT, "1,232.400"), (COUNT, "1,232 400"),
])
def test_a_broken_group_is_unparsed_never_a_number_off_by_a_thousand(field, text):
    assert parse(field, text) == Parsed(None, UNPARSED)


@pytest.mark.parametrize("text", ["Press.....: 62.00 MPa", "....: 62.00 MPa", "Press ........ 62.00 MPa",
                                  "Press __ 62.00 MPa", "Press……62.00 MPa"])
def test_leader_dots_between_key_and_value(text):
    assert parse(Field("press", "Press", "float", unit="MPa", decimals=2), text) == Parsed(62.0, None)


@pytest.mark.parametrize("text", ["TEMP: 1072.2 CHI", "TEMP: 1072.2 C HI", "TEMP:1072.2 C LO", "1072.2 C ▲",
                                  "TEMP: 1072.2 C !!", "TEMP: 1072.2 ALM"])
def test_an_alarm_flag_after_a_number_is_dropped(text):
    assert parse(Field("temp", "TEMP", "float", unit="C", decimals=1), text) == Parsed(1072.2, None)


def test_an_alarm_flag_is_no_part_of_text_values_and_a_longer_word_is_no_flag():
    assert parse(Field("s", "STATUS", "str", pattern="[A-Z]+"), "STATUS: HALO") == Parsed("HALO", None)
    assert parse(Field("temp", "TEMP", "float", unit="C", decimals=1), "TEMP: 1072.2 C HIX") == Parsed(None, UNPARSED)


def test_a_gauges_exponent_is_read():
    leak = Field("leak", "LEAK", "float", unit="mbar", range=(0.0, 1.0))
    assert parse(leak, "LEAK: 3.1e-2 mbar") == Parsed(0.031, None)
    assert parse(leak, "8.1E-04mbar") == Parsed(0.00081, None)
    assert parse(leak, "LEAK: 8.1E+02 mbar") == Parsed(None, OUT_OF_RANGE)     # 810: the range still holds
    assert parse(leak, "LEAK: 3.1e mbar") == Parsed(None, UNPARSED)


def test_a_pipe_before_the_digits_is_a_divider_never_a_1():
    gray = Field("gray", "GRAY", "float", decimals=1, range=(0.0, 255.0))
    assert parse(gray, "GRAY | 65.6") == Parsed(65.6, None)           # a printed `KEY | value`
    assert parse(gray, "| 65.6") == Parsed(65.6, None)                # its value crop
    assert parse(gray, "GRAY:|79.1") == Parsed(None, UNPARSED)        # a grid line: was 179.1, in range
    assert parse(gray, "|38.4") == Parsed(None, UNPARSED)
    assert parse(gray, "1|9.1") == Parsed(119.1, None)                # after a digit it is still a 1


def test_a_unit_that_lost_its_first_letter_takes_no_digit_from_the_value():
    flow = Field("flow", "Flow", "int", unit="l/h")
    assert parse(flow, "Flow 75 811 /h") == Parsed(None, UNPARSED)      # was 7581: the last 1 taken for the l
    assert parse(flow, "Flow 75811 1/h") == Parsed(75811, None)         # the l read as a 1, after a space
    assert parse(flow, "75811l/h") == Parsed(75811, None)


def test_int_field():
    n = Field("n", "N", "int", range=(0, 100))
    assert parse(n, "N: 42") == Parsed(42.0, None)
    assert parse(n, "4O") == Parsed(40.0, None)
    assert parse(n, "42.0") == Parsed(None, UNPARSED)
    assert parse(n, "420") == Parsed(None, OUT_OF_RANGE)


# --- strings: categories and patterns -------------------------------------------------

@pytest.mark.parametrize("field, text, value", [
    (F["station"], "AOI-03", "AOI-03"),
    (F["station"], "STN: AOI-01", "AOI-01"),
    (F["station"], "AOI-O4", "AOI-04"),     # lookalikes only from the first digit on
    (F["light"], "3", "3"),
    (F["light"], "LIGHT: 6", "6"),
    (F["unit_id"], "U633262", "U633262"),
    (F["unit_id"], "UNIT: U633262", "U633262"),
    (F["unit_id"], "U63326O", "U633260"),
    (F["lot"], "L2611-0001", "L2611-0001"),
    (F["lot"], "L26l1-O001", "L2611-0001"),
])
def test_accepted_strings(field, text, value):
    parsed = parse(field, text)
    assert parsed == Parsed(value, None)
    assert isinstance(parsed.value, str)


def test_string_letters_before_the_first_digit_are_kept():
    # 'O' in AOI is a letter: mapping it to 0 would make AOI-01 unreadable.
    assert parse(F["station"], "AOI-01").value == "AOI-01"
    assert parse(F["lot"], "L2611-0001").value == "L2611-0001"


@pytest.mark.parametrize("field, text, value", [
    (F["station"], "A0I-01", "AOI-01"),     # category: O/0 and I/l/1 merged when one category fits
    (F["station"], "AOl-02", "AOI-02"),
    (F["light"], "l", "1"),
    (F["light"], "I", "1"),
])
def test_category_lookalikes(field, text, value):
    assert parse(field, text) == Parsed(value, None)


def test_category_lookalike_must_be_unambiguous():
    f = Field("c", "C", "category", categories=("10", "IO"))
    assert parse(f, "lO") == Parsed(None, UNPARSED)      # both categories fit: no guess


def test_free_string_field():
    f = Field("op", "OP", "str")
    assert parse(f, "OP: smith") == Parsed("smith", None)


# --- helpers ----------------------------------------------------------------------------

def test_every_printed_aoi_v1_line_parses_back():
    samples = {"lot": "L2611-0042", "unit_id": "U000042", "station": "AOI-02", "light": "5"}
    for f in LAYOUT.fields:
        value = samples.get(f.name, f.range[0] + (f.range[1] - f.range[0]) / 3 if f.range else 1.0)
        for text in (f.line(value), f.line(value)[len(f.key) + 2:]):
            parsed = parse(f, text)
            assert parsed.reason is None, (f.name, text, parsed)
            got = f.format_value(parsed.value) if f.dtype == "float" else parsed.value
            assert got == f.format_value(value), (f.name, text)


# --- any machine's panel: separators, key punctuation, units, signs, case, format ------------

GRAY = Field("gray_avg", "GrayAvg", "float", decimals=1, range=(0, 255))
TEMP_C = Field("temp", "Temp(C)", "float", decimals=1, range=(900, 1400))
PRESS_B = Field("press", "Press[MPa]", "float", decimals=2, range=(20, 80))
THK = Field("thk", "Thk_mm", "float", unit="mm", decimals=3, range=(3.5, 4.5))
EXPO = Field("expo", "Exp/ms", "float", decimals=1, range=(-40, 40))
LINE = Field("line", "Line", "category", categories=("A1", "B1"))
ZONE = Field("zone", "Zone 2", "float", decimals=1)


@pytest.mark.parametrize("field, text, value", [
    (GRAY, "GrayAvg = 85.7", 85.7), (GRAY, "GrayAvg=85.7", 85.7), (GRAY, "grayavg : 85.7", 85.7),
    (GRAY, "GRAYAVG: 85.7", 85.7), (GRAY, "GrayAvg 85.7", 85.7), (GRAY, "Gray Avg -> 85.7", 85.7),
    (GRAY, "GrayAvg => 85.7", 85.7), (GRAY, "GrayAvg：85.7", 85.7), (GRAY, "GrayAvg - 85.7", 85.7),
    (GRAY, "= 85.7", 85.7), (GRAY, ": 85.7", 85.7), (GRAY, "-> 85.7", 85.7),          # value crops
    (TEMP_C, "Temp(C) = 1187.8", 1187.8), (TEMP_C, "Temp (C): 1187.8", 1187.8), (TEMP_C, "temp(c)=1187.8", 1187.8),
    (PRESS_B, "Press[MPa]: 45.20", 45.2), (PRESS_B, "Press[MPa] 45.20", 45.2),
    (THK, "Thk_mm 3.512 mm", 3.512), (THK, "Thk_mm 3.512mm", 3.512), (THK, "Thk_mm: mm 3.512", 3.512),
    (THK, "Thk_mm: mm3.512", 3.512), (THK, "3.512 MM", 3.512), (THK, "Thk_mm = 3.512 [mm]", 3.512),
    (EXPO, "Exp/ms -12.5", -12.5), (EXPO, "Exp/ms - -12.5", -12.5), (EXPO, "Exp/ms: +12.5", 12.5),
    (EXPO, "Exp/ms −12.5", -12.5), (EXPO, "Exp/ms => - 12.5", -12.5),
    (LINE, "Line : B1", "B1"), (LINE, ": B1", "B1"), (LINE, "line B1", "B1"), (LINE, "Line=A1", "A1"),
    (ZONE, "Zone 2 = 3.5", 3.5), (ZONE, "Zone 2 3.5", 3.5), (ZONE, "3.5", 3.5),
])
def test_any_separator_key_punctuation_unit_placement_and_sign(field, text, value):
    assert parse(field, text) == Parsed(value, None)


@pytest.mark.parametrize("field, text", [
    (ZONE, "2 3.5"),            # a crop that starts inside a key `Zone 2`: never 23.5
    (ZONE, "2 = 3.5"),
    (GRAY, "Avg = 85.7 X"),     # junk after the value
    (LINE, "Line : :B1"),       # the separator never ends up in a category
    (Field("op", "OP", "str"), "Avg = 85.7"),   # a free string takes no stray words
])
def test_reads_that_do_not_fit_stay_missing(field, text):
    assert parse(field, text) == Parsed(None, UNPARSED)


def test_a_category_never_keeps_the_separator():
    """A category printed `Line : B1` was stored as `:B1` before the line grammar."""
    station = Field("s", "Line", "str")
    assert parse(station, "Line : B1").value == "B1"
    assert parse(station, ": B1").value == "B1"


def test_a_layout_format_reads_what_no_rule_covers():
    rate = Field("rate", "Rate", "float", unit="%", decimals=1, format="{key} >> {value}{unit}")
    assert rate.line(12.5) == "Rate >> 12.5%"
    for text in ("Rate >> 12.5%", "rate>>12.5 %", ">> 12.5", "12.5%"):
        assert parse(rate, text) == Parsed(12.5, None), text
    assert parse(rate, "Rate: 12.5") == Parsed(None, UNPARSED)    # the format replaces the separator rules
    bracket = Field("b", "ID", "str", pattern=r"U\d{6}", format="[{key}] {value}")
    assert parse(bracket, "[ID] U000123") == Parsed("U000123", None)


def test_capital_runs_take_back_a_lowercase_l_or_o():
    station = Field("s", "STN", "str", pattern=r"AOI-\d{2}")
    assert parse(station, "AOl-04") == Parsed("AOI-04", None)
    assert parse(station, "AO1-04") == Parsed("AOI-04", None)             # a capital I read as 1
    assert parse(Field("u", "U", "str", pattern=r"U\d{6}"), "U100234") == Parsed("U100234", None)
    assert parse(Field("k", "K", "str", pattern=r"[a-z]+\d"), "lo1") == Parsed("lo1", None)   # not a capital run


def test_keys_read_with_lookalikes_and_a_lost_underscore_still_match():
    expo = Field("e", "EXPO_MS", "float", decimals=1, range=(0, 40))
    for text in ("EXP0_MS 13.0", "EXPO MS 13.0", "EXPOMS 13.0", "expo_ms 13.0"):
        assert parse(expo, text) == Parsed(13.0, None), text
