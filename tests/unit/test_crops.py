"""Cutting a printed `KEY: VALUE UNIT` line down to `VALUE UNIT` (no OCR involved)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from oanet.ingest.crops import MARGIN, ink_mask, one_glyph, pad_to_width, value_span
from oanet.ingest.reading import MIN_CROP_WIDTH, boxed_crops, value_crop
from oanet.synth.aoi_layout import LINE_H, LINE_W, aoi_v1_layout
from oanet.synth.panel import TEXT_INSET, PanelStyle, degrade

LAYOUT = aoi_v1_layout()
SAMPLES = {"lot": "L2611-0007", "unit_id": "U483920", "station": "AOI-03", "light": "4",
           "exposure_ms": 11.8, "gain_db": 6.1, "gray_mean": 118.4, "gray_std": 7.9, "dark_pct": 1.27,
           "edge_frac": 0.0331, "sinter_temp_c": 1121.8, "press_mpa": 47.93, "thickness_mm": 4.011}


def render(text: str, size: int, blur: float = 0.0, background: int = 24, ink: int = 228):
    """One line box as the synthesiser draws it; also the key's ink end and the value's start."""
    font = ImageFont.load_default(size=size)
    img = Image.new("L", (LINE_W, LINE_H), color=background)
    draw = ImageDraw.Draw(img)
    x, y = TEXT_INSET
    draw.text((x, y), text, fill=ink, font=font)
    img = degrade(img, PanelStyle(blur_radius=blur), np.random.default_rng(0))
    key, _, _ = text.partition(": ")
    key_end = x + draw.textbbox((0, 0), key + ":", font=font)[2]          # right edge of the colon
    value_start = x + font.getlength(key + ": ")                          # pen position of the value
    line_end = x + draw.textbbox((0, 0), text, font=font)[2]
    return np.asarray(img), key_end, value_start, line_end


@pytest.mark.parametrize("blur", [0.0, 0.5, 0.7])
@pytest.mark.parametrize("size", [16, 17, 18, 19, 20])
def test_value_span_starts_after_the_key(size, blur):
    for f in LAYOUT.fields:
        line, key_end, value_start, line_end = render(f.line(SAMPLES[f.name]), size, blur)
        mask = ink_mask(line)
        assert mask is not None, f.name
        span = value_span(mask)
        assert span is not None, (f.name, size, blur)
        x0, x1 = span
        assert key_end <= x0 <= value_start + 1, (f.name, size, blur, span, key_end, value_start)
        assert x1 >= min(line_end, LINE_W), (f.name, size, blur, span, line_end)   # unit kept
        assert not mask[:, :x0][:, key_end:].any()      # nothing between the key and the cut


@pytest.mark.parametrize("font", ["dejavu-sans", "dejavu-sans-mono", "dejavu-serif"])
@pytest.mark.parametrize("size", [12, 20, 28])
@pytest.mark.parametrize("key, value", [("Station: ", "8"), ("Station : ", "8"), ("TEMP : ", "1124.7"),
                                        ("TEMP - ", "1124.7"), ("Grade : ", "B"),
                                        ("Mode: ", "i5")])
def test_a_separator_set_apart_is_cut_off_with_the_key(font, size, key, value):
    """A monospaced font sets `Station: 8` with a key gap before the colon; a colon is as tall as
    a lower-case letter, so it is told by its two dots, not its height."""
    from oanet.synth.panel import load_font

    face = load_font(font, size)
    img = Image.new("L", (320, size * 3), 235)
    ImageDraw.Draw(img).text((10, size), key + value, fill=20, font=face)
    span = value_span(ink_mask(np.asarray(img)))
    value_ink = 10 + face.getlength(key) + face.getbbox(value)[0]       # where the value's ink starts
    assert span is not None and value_ink - 1 <= span[0] + MARGIN <= value_ink + 2 + size / 10, (span, value_ink)


@pytest.mark.parametrize("size", [16, 20])
def test_value_span_on_dark_text_on_light_background(size):
    line, key_end, value_start, _ = render("PRESS: 47.93 MPa", size, background=230, ink=30)
    x0, _ = value_span(ink_mask(line))
    assert key_end <= x0 <= value_start + 1


def test_value_span_low_contrast_noisy_line():
    line, key_end, value_start, _ = render("TEMP: 1121.8 C", 17, blur=0.6, background=55, ink=170)
    noisy = np.clip(line + np.random.default_rng(1).normal(0, 5, line.shape), 0, 255).astype(np.uint8)
    x0, _ = value_span(ink_mask(noisy))
    assert key_end <= x0 <= value_start + 1


def test_cut_keeps_margin_around_value():
    line, _, value_start, _ = render("EDGE: 0.0331", 18)
    mask = ink_mask(line)
    x0, x1 = value_span(mask)
    first_value_col = int(np.flatnonzero(mask.any(axis=0)[x0:])[0]) + x0
    assert first_value_col - x0 == MARGIN
    assert x1 <= LINE_W


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("blur", [0.0, 1.0])
def test_a_box_drawn_past_the_panel_edge_keeps_the_edge_out_of_the_value(side, blur):
    """`Humidity 43 %` in a box that reaches 6 px past the panel: the bright strip beyond is no value."""
    line, _, value_start, line_end = render("HUMID: 43 %", 18)
    strip = np.full((line.shape[0], 6), 200, dtype=np.uint8)
    wide = np.hstack([line, strip] if side == "right" else [strip, line])
    if blur:
        wide = np.asarray(Image.fromarray(wide).filter(ImageFilter.GaussianBlur(blur)))
    shift = 0 if side == "right" else strip.shape[1]
    mask = ink_mask(wide)
    assert not mask[:, -3:].any() if side == "right" else not mask[:, :3].any()
    x0, x1 = value_span(mask)
    assert x0 <= value_start + shift <= x0 + MARGIN + 2 and line_end + shift <= x1 <= line_end + shift + MARGIN + 2


def test_a_digit_touching_a_tight_box_is_never_taken_for_an_edge():
    """The box hugs the text (2 px above and below its ink) and ends on the last `1`: it is kept."""
    line, _, _, _ = render("LIGHT: 41", 18)
    ink = ink_mask(line)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    tight = line[rows[0] - 2:rows[-1] + 3, :cols[-1] + 1]
    mask = ink_mask(tight)
    assert mask[:, -1].any() and value_span(mask)[1] == tight.shape[1]


def test_blank_crop_has_no_ink_and_no_span():
    blank = np.full((LINE_H, LINE_W), 24, dtype=np.uint8)
    assert ink_mask(blank) is None
    assert value_span(np.zeros((LINE_H, LINE_W), dtype=bool)) is None
    field = LAYOUT.fields[0]
    image = np.full((480, 640), 24, dtype=np.uint8)
    assert value_crop(image, field, pad=0) is None


def test_sensor_noise_alone_is_not_ink():
    noise = np.clip(np.random.default_rng(0).normal(30, 3, (LINE_H, LINE_W)), 0, 255).astype(np.uint8)
    assert ink_mask(noise) is None


def test_single_word_has_no_key_gap():
    line, *_ = render("U483920", 18)
    assert value_span(ink_mask(line)) is None


def test_value_crop_falls_back_to_the_whole_line_without_a_gap():
    image = np.full((480, 640), 24, dtype=np.uint8)
    field = LAYOUT.fields[0]
    x0, y0, x1, y1 = field.roi
    line, *_ = render("L2611-0007", 18)
    image[y0:y1, x0:x1] = line
    crop = value_crop(image, field, pad=0)
    assert crop.shape == (y1 - y0, x1 - x0)


@pytest.mark.parametrize("size", [16, 18, 20])
@pytest.mark.parametrize("value, alone", [("4", True), ("7", True), ("1", True), ("B", True), ("42", False),
                                          ("11", False), ("4.0", False), ("AB", False), ("-1", False)])
def test_one_glyph_tells_a_one_character_value(value, alone, size):
    line, *_ = render(f"LIGHT: {value}", size)
    mask = ink_mask(line)
    span = value_span(mask)
    assert (span is not None and one_glyph(mask, span)) is alone


def test_value_crop_sends_the_whole_line_for_a_one_character_value():
    """A lone digit has no neighbours to tell the recogniser its size: a 7 read 1 at 0.99 (bench/one_glyph.py)."""
    image = np.full((480, 640), 24, dtype=np.uint8)
    field = next(f for f in LAYOUT.fields if f.name == "light")
    x0, y0, x1, y1 = field.roi
    for value, whole in (("4", True), ("12", False)):
        image[y0:y1, x0:x1] = render(f"LIGHT: {value}", 18)[0]
        assert (value_crop(image, field, pad=0).shape == (y1 - y0, x1 - x0)) is whole


def test_pad_to_width_pads_symmetrically_with_background():
    crop = np.full((30, 11), 24, dtype=np.uint8)
    crop[10:20, 4:7] = 228
    padded = pad_to_width(crop, 32)
    assert padded.shape == (30, 32) and padded.dtype == np.uint8
    assert (padded[:, :10] == 24).all() and (padded[:, 21:] == 24).all()    # 21 columns: 10 left, 11 right
    assert np.array_equal(padded[:, 10:21], crop)


def test_pad_to_width_leaves_wide_crops_alone():
    crop = np.zeros((30, 40), dtype=np.uint8)
    assert pad_to_width(crop, 32) is crop
    assert pad_to_width(crop, 40) is crop


def test_boxed_crops_on_a_synthetic_image(synth_set):
    name = sorted((synth_set / "images").glob("*.png"))[0]
    image = np.asarray(Image.open(name).convert("L"))
    crops = boxed_crops(image, LAYOUT, pad=0)
    assert len(crops) == len(LAYOUT.fields)
    for f, crop in zip(LAYOUT.fields, crops, strict=True):
        assert crop is not None, f.name
        if f.name == "light":            # one character: read with its line
            assert crop.shape == (LINE_H, LINE_W)
        else:
            assert crop.shape[0] == LINE_H and MIN_CROP_WIDTH <= crop.shape[1] < LINE_W, (f.name, crop.shape)
