"""The layout contract: file round trip, rejection of broken layouts, printed value format."""
from __future__ import annotations

import copy

import pytest
import yaml

from oanet.layout import Field, Layout, LayoutError, layout_from_dict, load_layout
from oanet.synth.aoi_layout import aoi_v1_layout


@pytest.fixture
def raw() -> dict:
    """A valid layout as the YAML mapping a user writes."""
    return copy.deepcopy(aoi_v1_layout().to_dict())


def _field(raw: dict, name: str) -> dict:
    return next(f for f in raw["fields"] if f["name"] == name)


# --- round trip ----------------------------------------------------------------------

@pytest.mark.parametrize("with_boxes", [True, False])
def test_save_load_round_trip(tmp_path, with_boxes):
    layout = aoi_v1_layout(with_boxes=with_boxes)
    path = tmp_path / "layout.yaml"
    layout.save(path)
    loaded = load_layout(path)
    assert loaded == layout
    assert all(isinstance(f.range, tuple) or f.range is None for f in loaded.fields)
    assert all((f.roi is None) != with_boxes for f in loaded.fields)
    # The file is plain YAML a person can edit: lists, not Python tuples, and no nulls.
    text = path.read_text()
    assert "!!python" not in text and "null" not in text
    assert yaml.safe_load(text)["size"] == [640, 480]


def test_design_md_example_parses():
    raw = yaml.safe_load("""
name: aoi-v1
size: [640, 480]
object_roi: [0, 160, 320, 480]
fields:
  - name: sinter_temp_c
    key: TEMP
    dtype: float
    unit: C
    range: [900, 1400]
    role: feature
    roi: [330, 300, 630, 324]
""")
    layout = layout_from_dict(raw)
    f = layout.fields[0]
    assert (f.name, f.key, f.dtype, f.unit, f.role) == ("sinter_temp_c", "TEMP", "float", "C", "feature")
    assert f.range == (900.0, 1400.0) and f.roi == (330, 300, 630, 324)
    assert layout.size == (640, 480) and layout.object_roi == (0, 160, 320, 480)


def test_defaults_and_roles():
    layout = layout_from_dict({"name": "x", "size": [64, 48], "object_roi": [0, 0, 10, 10],
                               "fields": [{"name": "a", "key": "A"},
                                          {"name": "u", "key": "UNIT", "dtype": "str", "role": "id"}]})
    a = layout.fields[0]
    assert (a.dtype, a.role, a.unit, a.range, a.roi) == ("float", "feature", None, None, None)
    assert layout.by_role("id").name == "u"
    assert layout.by_role("group") is None
    assert [f.name for f in layout.feature_fields] == ["a"]


def test_aoi_v1_roles():
    layout = aoi_v1_layout()
    assert layout.by_role("id").key == "UNIT"
    assert layout.by_role("group").key == "LOT"
    assert len(layout.feature_fields) == len(layout.fields) - 2


# --- broken layouts: LayoutError whose message names the field and the rule -----------

@pytest.mark.parametrize("edit, words", [
    (lambda r: _field(r, "sinter_temp_c").update(dtype="double"), ["sinter_temp_c", "dtype", "'double'"]),
    (lambda r: _field(r, "station").update(role="label"), ["station", "role", "'label'"]),
    (lambda r: _field(r, "press_mpa").update(roi=[330, 300, 300, 324]), ["press_mpa", "x0 < x1"]),
    (lambda r: _field(r, "press_mpa").update(roi=[330, 324, 550, 300]), ["press_mpa", "y0 < y1"]),
    (lambda r: _field(r, "press_mpa").update(roi=[330, 300, 550]), ["press_mpa", "[x0, y0, x1, y1]"]),
    (lambda r: _field(r, "press_mpa").update(roi=[330.5, 300, 550, 324]), ["press_mpa", "roi"]),
    (lambda r: _field(r, "press_mpa").update(roi=330), ["press_mpa", "roi"]),
    (lambda r: r.update(object_roi=[0, 160, 320]), ["object_roi"]),
    (lambda r: _field(r, "gain_db").update(range=[20, -5]), ["gain_db", "range"]),
    (lambda r: _field(r, "gain_db").update(range=5), ["gain_db", "range"]),
    (lambda r: _field(r, "gain_db").update(colour="red"), ["gain_db", "unknown", "colour"]),
    (lambda r: _field(r, "gain_db").pop("key"), ["name and a key"]),
    (lambda r: r["fields"].append(dict(_field(r, "gain_db"), key="GAIN2")), ["duplicate", "gain_db"]),
    (lambda r: r.pop("size"), ["missing", "size"]),
    (lambda r: r.update(size="640x480"), ["size"]),
    (lambda r: r.update(size=[640, 0]), ["size"]),
    (lambda r: r.update(fields=[]), ["no fields"]),
    (lambda r: r.update(fields=["TEMP"]), ["field", "TEMP"]),
    # a field is a column of the OCR table: it must not overwrite the labels, digests or ingest's own columns
    (lambda r: _field(r, "light").update(name="label"), ["'label'", "none of image, label"]),
    (lambda r: _field(r, "light").update(name="sha256"), ["'sha256'"]),
    (lambda r: _field(r, "light").update(name="image"), ["'image'"]),
    (lambda r: _field(r, "light").update(name="exposure_ms__text"), ["'exposure_ms__text'", "'__'"]),
    (lambda r: _field(r, "light").update(name="Temp (C)"), ["'Temp (C)'", "letters, digits"]),
    (lambda r: _field(r, "light").update(name="2nd_temp"), ["'2nd_temp'"]),
    (lambda r: r.update(name=None), ["layout's name", "None"]),
    (lambda r: r.update(name=""), ["layout's name"]),
])
def test_broken_layout_raises_layout_error(raw, edit, words):
    edit(raw)
    with pytest.raises(LayoutError) as err:
        layout_from_dict(raw)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "hello"])
def test_layout_file_that_is_not_a_mapping(tmp_path, text):
    path = tmp_path / "layout.yaml"
    path.write_text(text)
    with pytest.raises(LayoutError, match="mapping"):
        load_layout(path)


@pytest.mark.parametrize("write, words", [
    (lambda p: p.write_text("name: x\nsize: [640, 480\n"), "not valid YAML"),
    (lambda p: p.write_text("!!python/object/apply:os.system ['true']\n"), "not valid YAML"),
    (lambda p: p.write_bytes(b"name: \xff\xfe\n"), "cannot be read"),
    (lambda p: p.mkdir(), "cannot be read"),
])
def test_a_layout_file_that_cannot_be_read_is_one_line_naming_it(tmp_path, write, words):
    path = tmp_path / "layout.yaml"
    write(path)
    with pytest.raises(LayoutError, match=words) as err:
        load_layout(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_every_broken_field_is_named_in_one_error(raw):
    _field(raw, "gain_db").update(colour="red")
    _field(raw, "press_mpa").update(decimal=2)
    _field(raw, "light").update(dtype="double")
    with pytest.raises(LayoutError) as err:
        layout_from_dict(raw)
    message = str(err.value)
    assert message.startswith("3 fields break the contract: ")
    assert all(word in message for word in ("gain_db", "'colour'", "press_mpa", "'decimal'", "light", "'double'"))


def test_a_model_number_is_a_layout_name(raw):
    assert layout_from_dict(dict(raw, name=3000)).name == "3000"


def test_missing_layout_file(tmp_path):
    with pytest.raises(LayoutError, match="layout file not found: .*nowhere.yaml"):
        load_layout(tmp_path / "nowhere.yaml")


def test_layout_is_frozen():
    layout = aoi_v1_layout()
    with pytest.raises(AttributeError):
        layout.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        layout.fields[0].key = "X"  # type: ignore[misc]


# --- printed value format -------------------------------------------------------------

@pytest.mark.parametrize("field, good, bad", [
    (Field("t", "TEMP", "float", decimals=1), ["1121.8", "-3.0", "0.5"], ["1121", "1121.80", "1121.", ".5", "1O21.8"]),
    (Field("e", "EDGE", "float", decimals=4), ["0.0216"], ["0.021", "0.02160"]),
    (Field("f", "F", "float"), ["1.5", "12.345"], ["12", "12."]),
    (Field("z", "Z", "float", decimals=0), ["12", "-4"], ["12.0"]),
    (Field("n", "N", "int"), ["12", "-3"], ["12.0", "1e3"]),
    (Field("lot", "LOT", "str", pattern=r"L\d{4}-\d{4}"), ["L2611-0001"], ["L2611-001", "2611-0001"]),
    (Field("s", "STN", "category", categories=("AOI-01", "AOI-02")), ["AOI-01", "AOI-02"], ["AOI-03", "AOI-0", "x"]),
    (Field("c", "C", "category", categories=("a.b",)), ["a.b"], ["axb"]),
    (Field("w", "W", "str"), ["anything-1"], ["two words", ""]),
])
def test_value_regex(field, good, bad):
    pattern = field.value_regex()
    for text in good:
        assert pattern.fullmatch(text), text
    for text in bad:
        assert not pattern.fullmatch(text), text


def test_format_and_line():
    temp = Field("sinter_temp_c", "TEMP", "float", unit="C", decimals=1)
    assert temp.format_value(1121.84) == "1121.8"
    assert temp.line(1121.84) == "TEMP: 1121.8 C"
    assert Field("x", "X", "float").format_value(3) == "3.00"              # no decimals given: two
    assert Field("n", "N", "int").line(7.0) == "N: 7"
    assert Field("u", "UNIT", "str").line("U000123") == "UNIT: U000123"   # no unit, no trailing space
    assert Field("d", "DARK", "float", unit="%", decimals=2).line(0) == "DARK: 0.00 %"


def test_every_aoi_v1_line_matches_its_own_regex():
    """What the synthesiser prints, the parser accepts: format and value_regex agree."""
    samples = {"lot": "L2611-0001", "unit_id": "U000042", "station": "AOI-04", "light": "6"}
    for f in aoi_v1_layout().fields:
        value = samples.get(f.name, (f.range[0] + f.range[1]) / 2 if f.range else 1.0)
        printed = f.format_value(value)
        assert f.value_regex().fullmatch(printed), (f.name, printed)
        assert f.line(value).startswith(f"{f.key}: {printed}")
        assert f.line(value).endswith(f.unit or printed)


def test_layout_equality_and_types():
    layout = aoi_v1_layout()
    assert isinstance(layout, Layout) and len(layout.fields) == 13
    assert len({f.roi for f in layout.fields}) == 13          # every line has its own box
    w, h = layout.size
    for f in layout.fields:
        x0, y0, x1, y1 = f.roi
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, f.name
