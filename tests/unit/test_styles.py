"""Panel styles (`oanet synth --style`): the corpus, its files, legibility, determinism, aoi-v1 unchanged."""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from oanet.config import SynthConfig
from oanet.layout import load_layout
from oanet.synth import panel
from oanet.synth.aoi_layout import aoi_v1_layout
from oanet.synth.panel import PanelStyle, compose, draw_style
from oanet.synth.stage import run
from oanet.synth.styles import BUILTIN, STYLE_DIR, STYLES, StyleError, extreme_values, load_style, overflows, overlap

AOI_V1 = aoi_v1_layout()
FILE_STYLES = [s for s in STYLES if s != BUILTIN]
# Digest of labels.csv, truth.csv, layout.yaml and the decoded pixels of `SynthConfig(n=3, seed=11)`,
# taken with the renderer as it was before styles existed (the same files, byte for byte).
AOI_V1_DIGEST = {
    "clean": "48b91128477f20169088642bc66a6dd23c0f4e83d9641ba2578f2e4f91dbfe2c",
    "noisy": "a1cb229bdce49b3d5d428afc76acfb61eadb59fe0b762f5be57d056a7cc78180",
}


def _digest(out: Path) -> str:
    h = hashlib.sha256()
    for name in ("labels.csv", "truth.csv", "layout.yaml"):
        h.update((out / name).read_bytes())
    for p in sorted((out / "images").iterdir()):
        with Image.open(p) as im:
            h.update(f"{p.name} {im.format} {im.mode} {im.size}".encode())
            h.update(np.asarray(im).tobytes())
    return h.hexdigest()


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _lines(style) -> list[str]:
    """Every line the style prints for the extreme values of its fields."""
    return [style.render.line(f, v, i) for i, f in enumerate(style.layout.fields) for v in extreme_values(f)]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """Every style, 2 units, seed 3."""
    root = tmp_path_factory.mktemp("styles")
    return {name: _out(root / name, name) for name in STYLES}


def _out(out: Path, style: str, **kw) -> Path:
    run(SynthConfig(n=kw.pop("n", 2), seed=kw.pop("seed", 3), style=style, **kw), out, progress=False)
    return out


# --- the corpus -----------------------------------------------------------------------------

def test_at_least_six_styles_besides_aoi_v1_and_all_load():
    assert STYLES[0] == BUILTIN and len(FILE_STYLES) >= 6
    assert sorted(FILE_STYLES) == sorted(p.stem for p in STYLE_DIR.glob("*.yaml"))
    for name in STYLES:
        style = load_style(name)
        assert style.name == name and isinstance(style.seed, int)
        assert sorted(f.name for f in style.layout.fields) == sorted(f.name for f in AOI_V1.fields)
    assert load_style(BUILTIN).layout == AOI_V1
    assert load_style(STYLE_DIR / f"{FILE_STYLES[0]}.yaml") == load_style(FILE_STYLES[0])   # by path too


def test_the_corpus_varies_what_it_promises():
    styles = [load_style(n) for n in STYLES]
    renders = [s.render for s in styles]
    assert {r.font for r in renders} == {"builtin", "dejavu-sans", "dejavu-sans-mono", "dejavu-serif"}
    assert {np.mean(r.ink) > np.mean(r.background) for r in renders} == {True, False}      # both polarities
    assert {r.mode for r in renders} == {"L", "RGB"} and {r.image_format for r in renders} == {"png", "jpeg"}
    assert len({s.layout.size for s in styles}) >= 4
    assert any(r.noise_sd > 0 and r.blur_radius > 0 and r.image_format == "jpeg" and r.jpeg_quality <= 85
               for r in renders)
    assert any(abs(np.mean(r.ink) - np.mean(r.background)) < 100 for r in renders)          # low contrast
    assert any(r.signed for r in renders)
    assert any(f.format for s in styles for f in s.layout.fields)
    assert all(16 <= r.font_size <= 22 for r in renders)
    lines = [line for s in styles for line in _lines(s)]
    for sep in (" = ", " : ", ": ", " -> ", "：", " - ", " >> "):
        assert any(sep in line for line in lines), sep
    assert any(re.fullmatch(r"\S+=\S+", line) for line in lines)                  # '=' without spaces
    assert any(re.fullmatch(r"\S+ \d[\d.]*", line) for line in lines)             # a bare space
    assert any(re.fullmatch(r"\S+ (ms|dB|MPa|mm|C|degC) [\d.]+", line) for line in lines)   # unit before value
    assert any(re.search(r"\d(ms|dB|%|MPa|mm)$", line) for line in lines)         # unit glued to the value
    keys = {f.key for s in styles for f in s.layout.fields}
    assert {"Temp(C)", "Press[MPa]", "Thk_mm", "Gray.Avg", "Exp/ms", "Gray Avg"} <= keys
    assert any(k.islower() for k in keys) and any(k != k.upper() and k != k.lower() for k in keys)


@pytest.mark.parametrize("name", STYLES)
def test_layout_keeps_aoi_v1_semantics_and_boxes_are_apart(name):
    style = load_style(name)
    ref = {f.name: f for f in AOI_V1.fields}
    width, height = style.layout.size
    boxes = [f.roi for f in style.layout.fields]
    for f in style.layout.fields:
        for attr in ("dtype", "role", "range", "decimals", "pattern", "categories"):
            assert getattr(f, attr) == getattr(ref[f.name], attr), (f.name, attr)
        x0, y0, x1, y1 = f.roi
        assert 0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height and y1 - y0 >= 28, f.name
        assert not overlap(f.roi, style.layout.object_roi), f.name
    assert not any(overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert len({f.key for f in style.layout.fields}) == len(boxes)


@pytest.mark.parametrize("name", STYLES)
def test_every_line_fits_its_box_for_extreme_values(name):
    style = load_style(name)
    assert overflows(style) == []
    if name == BUILTIN:
        return                                   # aoi-v1's boxes are as they always were
    # Independent of the measuring: render the widest value of every field on a blank object and
    # find no ink outside the line boxes and the object box.
    render = style.render
    font = panel.load_font(render.font, render.font_size)
    widest = {f.name: max(extreme_values(f), key=lambda v, f=f, i=i: font.getlength(render.line(f, v, i)))
              for i, f in enumerate(style.layout.fields)}
    x0, y0, x1, y1 = style.layout.object_roi
    clean = dataclasses.replace(render.panel_style(), noise_sd=0.0, blur_radius=0.0)
    obj = np.full((y1 - y0, x1 - x0), 128, np.uint8)
    img = np.asarray(compose(style.layout, obj, render.lines(style.layout, widest), clean, np.random.default_rng(0)))
    background = np.array(render.background)
    ink = np.abs(img.astype(int) - background).reshape(img.shape[0], img.shape[1], -1).max(axis=2) > 8
    inside = np.zeros_like(ink)
    for bx0, by0, bx1, by1 in [f.roi for f in style.layout.fields] + [style.layout.object_roi]:
        inside[by0:by1, bx0:bx1] = True
    assert ink[~inside].sum() == 0
    for f in style.layout.fields:                 # and every box holds its line
        bx0, by0, bx1, by1 = f.roi
        assert ink[by0:by1, bx0:bx1].any(), f.name


# --- rendering ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", STYLES)
def test_style_renders_files_that_match_it(rendered, name):
    style, out = load_style(name), rendered[name]
    labels, truth = _read(out / "labels.csv"), _read(out / "truth.csv")
    assert load_layout(out / "layout.yaml") == style.layout
    assert list(truth.columns) == ["image"] + [f.name for f in style.layout.fields]
    suffix = {"png": ".png", "jpeg": ".jpg"}[style.render.image_format]
    assert list(labels.image) == [f"images/{u}{suffix}" for u in truth.unit_id]
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(Path(i).name for i in labels.image)
    for image in labels.image:
        with Image.open(out / image) as im:
            assert im.format == {"png": "PNG", "jpeg": "JPEG"}[style.render.image_format]
            assert (im.size, im.mode) == (style.layout.size, style.render.mode)
    for f in style.layout.fields:                 # truth is the plain printed value, no '+'
        assert truth[f.name].str.fullmatch(f.value_regex()).all(), f.name
        assert not truth[f.name].str.startswith("+").any(), f.name


def test_style_changes_the_print_not_the_units(rendered):
    base = _read(rendered[BUILTIN] / "truth.csv").drop(columns="image")
    for name in FILE_STYLES:
        truth = _read(rendered[name] / "truth.csv").drop(columns="image")
        pd.testing.assert_frame_equal(truth[base.columns], base)
        pd.testing.assert_frame_equal(_read(rendered[name] / "labels.csv").drop(columns="image"),
                                      _read(rendered[BUILTIN] / "labels.csv").drop(columns="image"))


@pytest.mark.parametrize("name", FILE_STYLES)
def test_same_seed_same_bytes(rendered, tmp_path, name):
    again = _out(tmp_path / "again", name)
    for p in sorted(rendered[name].rglob("*")):
        if p.is_file():
            assert (again / p.relative_to(rendered[name])).read_bytes() == p.read_bytes(), p.name


def test_aoi_v1_output_is_unchanged(tmp_path):
    for preset, digest in AOI_V1_DIGEST.items():
        assert _digest(_out(tmp_path / preset, BUILTIN, n=3, seed=11, preset=preset)) == digest, preset
    assert SynthConfig().style == BUILTIN


def test_signed_fields_print_a_plus_but_truth_does_not(rendered):
    style = next(load_style(n) for n in FILE_STYLES if load_style(n).render.signed)
    name = style.render.signed[0]
    i, f = next((i, f) for i, f in enumerate(style.layout.fields) if f.name == name)
    assert f"+{f.format_value(3)}" in style.render.line(f, 3, i)
    assert f"-{f.format_value(3)}" in style.render.line(f, -3, i) and "+" not in style.render.line(f, -3, i)
    other = next((j, g) for j, g in enumerate(style.layout.fields) if g.name not in style.render.signed
                 and g.dtype == "float")
    assert style.render.line(other[1], 3, other[0]) == other[1].line(3, style.render.template(other[0]))


def test_a_locale_style_prints_its_numbers_its_way_but_truth_stays_plain(tmp_path):
    style = load_style("de-comma")
    f = {g.name: (i, g) for i, g in enumerate(style.layout.fields)}
    assert style.render.line(f["sinter_temp_c"][1], 1124.7, f["sinter_temp_c"][0]).endswith(" 1.124,7 °C")
    assert style.render.line(f["thickness_mm"][1], 3.5, f["thickness_mm"][0]).endswith(" 3,500 mm")
    assert style.render.line(f["lot"][1], "L2611-0001", f["lot"][0]).endswith(" L2611-0001")    # text as it is
    truth = pd.read_csv(_out(tmp_path / "de", "de-comma", n=2, seed=3) / "truth.csv", dtype=str)
    assert truth["sinter_temp_c"].str.fullmatch(r"\d{4}\.\d").all()


def test_noisy_preset_keeps_a_style_polarity():
    rng = np.random.default_rng(0)
    for name in STYLES:
        base = load_style(name).render.panel_style()
        for _ in range(20):
            s = draw_style("noisy", rng, base)
            assert (np.mean(s.ink) > np.mean(s.background)) == (np.mean(base.ink) > np.mean(base.background))
            assert s.font == base.font and s.mode == base.mode
    assert draw_style("clean", rng, base) == base


def test_object_is_resized_to_the_object_box():
    layout = load_style("dim-square").layout
    img = compose(layout, np.full((320, 320), 200, np.uint8), {}, PanelStyle(background=0), np.random.default_rng(0))
    x0, y0, x1, y1 = layout.object_roi
    arr = np.asarray(img)
    assert (x1 - x0, y1 - y0) != (320, 320) and (arr[y0:y1, x0:x1] == 200).all() and arr[y1:, x1:].max() == 0


def test_rerun_clears_images_of_both_suffixes(tmp_path):
    out = _out(tmp_path / "x", "serif-grab", n=2, seed=1)
    assert len(list((out / "images").glob("*.jpg"))) == 2
    _out(out, BUILTIN, n=1, seed=2)
    assert [p.suffix for p in (out / "images").iterdir()] == [".png"]


# --- errors ---------------------------------------------------------------------------------

def test_unknown_style_lists_the_known_ones(tmp_path):
    with pytest.raises(StyleError, match="unknown style 'nope'.*aoi-v1.*sans-paper"):
        load_style("nope")
    with pytest.raises(StyleError, match="style file not found"):
        load_style(tmp_path / "missing.yaml")
    with pytest.raises(StyleError, match="unknown style"):
        run(SynthConfig(n=1, style="nope"), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()          # failed before any file was touched


def _broken(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((STYLE_DIR / "sans-paper.yaml").read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _field(raw, name):
    return next(f for f in raw["layout"]["fields"] if f["name"] == name)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["layout"]["fields"].pop(), "needs exactly the aoi-v1 fields"),
    (lambda r: _field(r, "press_mpa").update(decimals=1), "press_mpa: decimals must stay 2"),
    (lambda r: _field(r, "lot").update(roi=[440, 20, 600, 50]), "overlaps"),
    (lambda r: _field(r, "lot").update(roi=[20, 560, 300, 620]), "not inside the 800x600 canvas"),
    (lambda r: _field(r, "unit_id").update(key="Lot"), "same key"),
    (lambda r: r["render"].update(font="comic-sans"), "font 'comic-sans' is not one of"),
    (lambda r: r["render"].update(colour=3), r"render: unknown keys \['colour'\]"),
    (lambda r: r["render"].update(background=[1, 2, 3]), "background is a gray level"),
    (lambda r: r["render"].update(templates=["{key} = {val}"]), "must hold {value}"),
    (lambda r: r["render"].update(signed=["lot"]), "signed lists numeric fields"),
    (lambda r: r["render"].update(image_format="gif"), "image_format 'gif'"),
    (lambda r: r["render"].update(decimal_mark=";"), "decimal_mark is one of"),
    (lambda r: r["render"].update(decimal_mark=",", thousands=","), "not the same mark"),
    (lambda r: r.pop("seed"), "missing \\['seed'\\]"),
    (lambda r: r["layout"].pop("size"), "layout: layout is missing the key 'size'"),
])
def test_bad_style_files_fail_clearly(tmp_path, edit, message):
    with pytest.raises(StyleError, match=message):
        load_style(_broken(tmp_path, edit))


def test_a_missing_font_file_is_named(monkeypatch, tmp_path):
    import matplotlib

    monkeypatch.setattr(matplotlib, "get_data_path", lambda: str(tmp_path))
    with pytest.raises(panel.FontError, match="dejavu-serif.*DejaVuSerif.ttf not found"):
        panel.font_file("dejavu-serif")
    with pytest.raises(StyleError, match="serif-grab.*DejaVuSerif.ttf not found"):
        load_style("serif-grab")


# --- command line ---------------------------------------------------------------------------

def test_cli_style_option_uses_the_style_seed(tmp_path):
    from typer.testing import CliRunner

    from oanet.cli import app

    params = Path(__file__).resolve().parents[2] / "params.yaml"
    runner = CliRunner()
    assert all(name in " ".join(runner.invoke(app, ["synth", "--help"], terminal_width=400).output.split())
               for name in STYLES)
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "cli"), "--n", "2", "--style", "mono-term",
                                 "--params", str(params)])
    assert result.exit_code == 0, result.output
    direct = _out(tmp_path / "direct", "mono-term", seed=load_style("mono-term").seed)
    for name in ("labels.csv", "truth.csv", "layout.yaml"):
        assert (tmp_path / "cli" / name).read_bytes() == (direct / name).read_bytes()
