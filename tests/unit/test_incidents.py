"""Simulated incidents (`oanet synth --incident`): each changes what it says and nothing else."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from oanet.config import IngestConfig, ProcessConfig, SynthConfig
from oanet.errors import OanetError
from oanet.ingest.parse import REASONS
from oanet.synth import incidents
from oanet.synth.aoi_layout import aoi_v1_layout
from oanet.synth.incidents import INCIDENTS, IncidentError, IncidentSpec
from oanet.synth.labels import PROCESS_FIELDS
from oanet.synth.objects import ObjectSample
from oanet.synth.panel import PanelStyle
from oanet.synth.stage import run, with_lot_prefix
from oanet.synth.styles import STYLES, load_style, overflows

ROOT = Path(__file__).resolve().parents[2]
N, SEED = 8, 11
LAYOUT = aoi_v1_layout()
STATS = ("gray_mean", "gray_std", "dark_pct", "edge_frac")
X0, Y0, X1, Y1 = LAYOUT.object_roi


def _night(out: Path, incident=None, n: int = N, **kw) -> Path:
    run(SynthConfig(n=n, seed=SEED, **kw), out, progress=False, incident=incident)
    return out


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _pixels(night: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(night / name)) for name in _read(night / "labels.csv").image]


def _object(img: np.ndarray) -> np.ndarray:
    return img[Y0:Y1, X0:X1]


def _panel(img: np.ndarray, skip: tuple[str, ...] = ()) -> np.ndarray:
    """The image outside the object box, with the line boxes of the `skip` fields blanked."""
    out = img.copy()
    out[Y0:Y1, X0:X1] = 0
    for f in LAYOUT.fields:
        if f.name in skip:
            x0, y0, x1, y1 = f.roi
            out[y0:y1, x0:x1] = 0
    return out


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> dict[str, Path]:
    """The clean night (no option) and one night per registered incident, seed 11, 8 units."""
    root = tmp_path_factory.mktemp("nights")
    return {"clean": _night(root / "clean"), **{name: _night(root / name, name) for name in INCIDENTS}}


# --- what each incident changes, and what it leaves alone -----------------------------

def test_none_is_the_clean_night_byte_for_byte(nights):
    clean, none = nights["clean"], nights["none"]
    files = sorted(p.relative_to(clean) for p in clean.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(none) for p in none.rglob("*") if p.is_file() and p.name != "incident.json")
    for rel in files:
        assert (none / rel).read_bytes() == (clean / rel).read_bytes(), rel
    assert json.loads((none / "incident.json").read_text()) == {"incident": "none"}
    assert not (clean / "incident.json").exists()


@pytest.mark.parametrize("name", [n for n in INCIDENTS if n != "none"])
def test_every_incident_keeps_the_contract_and_records_itself(nights, name):
    night, clean = nights[name], nights["clean"]
    assert (night / "layout.yaml").read_bytes() == (clean / "layout.yaml").read_bytes()
    record = json.loads((night / "incident.json").read_text())
    assert record["incident"] == name and len(record) > 1
    assert list(_read(night / "labels.csv").columns) == ["image", "label", "defect_type", "lot"]
    assert list(_read(night / "labels.csv").image) == list(_read(clean / "labels.csv").image)


def test_exposure_scales_the_object_and_the_printed_statistics_follow(nights):
    night, clean = nights["exposure"], nights["clean"]
    factor = json.loads((night / "incident.json").read_text())["factor"]
    assert factor == incidents.EXPOSURE_FACTOR
    for lit, dim in zip(_pixels(night), _pixels(clean), strict=True):
        assert np.array_equal(_object(lit), incidents.scale_gray(_object(dim), factor))
        assert np.array_equal(_panel(lit, STATS), _panel(dim, STATS))
    t, c = _read(night / "truth.csv"), _read(clean / "truth.csv")
    ratio = t.gray_mean.astype(float) / c.gray_mean.astype(float)
    assert np.allclose(ratio, factor, rtol=0.02)
    assert (t.gray_std != c.gray_std).any() and (t.edge_frac != c.edge_frac).any()
    others = [col for col in c.columns if col not in STATS]
    assert t[others].equals(c[others])
    assert _read(night / "labels.csv").equals(_read(clean / "labels.csv"))


def test_font_changes_the_panel_print_only(nights):
    night, clean = nights["font"], nights["clean"]
    record = json.loads((night / "incident.json").read_text())
    assert record == {"incident": "font", "font": incidents.FONT, "font_size": 15, "was": "builtin", "was_size": 18}
    for new, old in zip(_pixels(night), _pixels(clean), strict=True):
        assert np.array_equal(_object(new), _object(old))
        assert not np.array_equal(_panel(new), _panel(old))
    for name in ("labels.csv", "truth.csv"):
        assert (night / name).read_bytes() == (clean / name).read_bytes()


def test_process_shifts_the_named_field_only(nights, tmp_path):
    night, clean = nights["process"], nights["clean"]
    record = json.loads((night / "incident.json").read_text())
    mean, sd = getattr(ProcessConfig(), incidents.PROCESS_FIELD)
    assert record["field"] == incidents.PROCESS_FIELD and record["shift"] == pytest.approx(3.5 * sd)
    assert record["mean"] == pytest.approx(mean + 3.5 * sd)
    t, c = _read(night / "truth.csv"), _read(clean / "truth.csv")
    diff = t.sinter_temp_c.astype(float) - c.sinter_temp_c.astype(float)
    assert np.median(diff) == pytest.approx(3.5 * sd, abs=0.11)
    others = [col for col in c.columns if col != "sinter_temp_c"]
    assert t[others].equals(c[others])
    for new, old in zip(_pixels(night), _pixels(clean), strict=True):
        assert np.array_equal(_object(new), _object(old))
    lab, clab = _read(night / "labels.csv"), _read(clean / "labels.csv")
    changed = lab.label != clab.label      # the label model still applies: only more out-of-spec units
    assert (lab.label[changed] == "1").all() and (lab.defect_type[changed] == "param").all()

    other = _night(tmp_path / "press", IncidentSpec("process", field="press_mpa", magnitude=-3.0))
    t = _read(other / "truth.csv")
    assert np.median(t.press_mpa.astype(float) - c.press_mpa.astype(float)) == pytest.approx(-3.6, abs=0.011)
    assert t.drop(columns="press_mpa").equals(c.drop(columns="press_mpa"))


def _centroid(obj: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(obj > 25)        # tile pixels; the background is 3-12
    return np.array([xs.mean(), ys.mean()])


def test_camera_moves_the_object_inside_its_box(nights):
    night, clean = nights["camera"], nights["clean"]
    assert json.loads((night / "incident.json").read_text())["shift"] == incidents.CAMERA_SHIFT
    side = X1 - X0
    for moved, still in zip(_pixels(night), _pixels(clean), strict=True):
        dx, dy = _centroid(_object(moved)) - _centroid(_object(still))
        assert 0.1 * side < dx < 0.21 * side and 0.1 * side < dy < 0.21 * side   # the cut-off part pulls it back
        assert np.count_nonzero(_object(moved) > 25) < np.count_nonzero(_object(still) > 25)   # part cut off
        assert np.array_equal(_panel(moved, STATS), _panel(still, STATS))
    t, c = _read(night / "truth.csv"), _read(clean / "truth.csv")
    assert (t.gray_mean != c.gray_mean).any()
    others = [col for col in c.columns if col not in STATS]
    assert t[others].equals(c[others])


# --- the pure pieces ---------------------------------------------------------------------

def test_shift_image_and_box():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = incidents.shift_image(img, 1, 2, fill=99)
    assert (out[:2] == 99).all() and (out[:, 0] == 99).all() and np.array_equal(out[2:, 1:], img[:2, :3])
    assert np.array_equal(incidents.shift_image(img, -1, 0, 7)[:, :3], img[:, 1:])
    assert incidents.shift_box((1, 1, 4, 4), 2, -2, (4, 4)) == (3, 0, 4, 2)


def test_move_camera_keeps_the_tile_box_on_the_tile():
    img = np.full((100, 100), 5, np.uint8)
    img[20:80, 30:70] = 100
    moved = incidents.move_camera(ObjectSample(img, None, 1, "procedural", (30, 20, 70, 80)), 0.25)
    assert moved.tile_box == (55, 45, 95, 100)
    assert (moved.tile == 100).all() and moved.image[:45].max() == 5


def test_scale_gray_clips_and_shift_mean_moves_one_field():
    assert incidents.scale_gray(np.array([0, 100, 200], np.uint8), 1.5).tolist() == [0, 150, 255]
    pc = incidents.shift_mean(ProcessConfig(), "press_mpa", 2.0)
    assert pc.press_mpa == (48.0 + 2.4, 1.2)
    assert all(getattr(pc, f) == getattr(ProcessConfig(), f) for f in PROCESS_FIELDS if f != "press_mpa")


def test_the_font_incident_changes_the_font_of_any_style_and_fits_its_boxes():
    for base in (PanelStyle(), PanelStyle(font="dejavu-serif", font_size=19), PanelStyle(font="stix", font_size=16)):
        new = IncidentSpec("font").build(ProcessConfig(), base).panel(base)
        assert new.font != base.font and new.font_size == max(15, base.font_size - 3)
    for name in STYLES:
        style = load_style(name)
        new = IncidentSpec("font").build(ProcessConfig(), style.render.panel_style()).panel(style.render.panel_style())
        render = dataclasses.replace(style.render, font=new.font, font_size=new.font_size)
        assert overflows(dataclasses.replace(style, render=render)) == [], name


# --- errors, registry, lots, CLI ---------------------------------------------------------

def test_unknown_incident_is_a_clear_error_listing_the_known_ones(tmp_path):
    with pytest.raises(IncidentError) as err:
        run(SynthConfig(n=2, seed=SEED), tmp_path / "x", progress=False, incident="lamp")
    assert "'lamp'" in str(err.value) and all(name in str(err.value) for name in INCIDENTS)
    assert not (tmp_path / "x").exists()
    assert isinstance(err.value, OanetError)


@pytest.mark.parametrize("spec", [dict(name="exposure", field="press_mpa"), dict(name="font", magnitude=2.0),
                                  dict(name="none", magnitude=1.0)])
def test_options_an_incident_does_not_take_are_refused(spec):
    with pytest.raises(IncidentError):
        IncidentSpec(**spec)


@pytest.mark.parametrize("spec", [dict(name="process", field="gray_mean"), dict(name="exposure", magnitude=1.0),
                                  dict(name="camera", magnitude=0.6)])
def test_bad_field_or_magnitude_fails_before_writing(spec, tmp_path):
    with pytest.raises(IncidentError):
        run(SynthConfig(n=2), tmp_path / "x", progress=False, incident=IncidentSpec(**spec))
    assert not (tmp_path / "x").exists()


def test_the_registry_refuses_a_second_incident_of_one_name():
    with pytest.raises(ValueError, match="already registered"):
        incidents.register("font")(lambda *a: None)
    assert set(INCIDENTS) == {"none", "exposure", "font", "process", "camera"}


def test_a_clean_rerun_removes_the_incident_record(tmp_path):
    out = _night(tmp_path / "n", "exposure", n=2)
    assert (out / "incident.json").exists()
    _night(out, n=2)
    assert not (out / "incident.json").exists()


def test_lot_prefix_from_the_seed_or_given():
    assert with_lot_prefix(SynthConfig(seed=11), "seed").lot_yymm == "0011"
    assert with_lot_prefix(SynthConfig(seed=12), "seed").lot_yymm == "0012"
    assert with_lot_prefix(SynthConfig(), "2703").lot_yymm == "2703"
    assert with_lot_prefix(SynthConfig(), None) == SynthConfig()
    with pytest.raises(OanetError, match="4 digits"):
        with_lot_prefix(SynthConfig(), "12")


def test_cli_writes_a_night_with_its_incident_and_lots(tmp_path):
    from typer.testing import CliRunner

    from oanet.cli import app

    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "night"), "--n", "2", "--seed", "12",
                                   "--incident", "process", "--incident-field", "press_mpa",
                                   "--lot-prefix", "seed", "--params", str(ROOT / "params.yaml")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "night" / "incident.json").read_text())["field"] == "press_mpa"
    assert set(_read(tmp_path / "night" / "labels.csv").lot) == {"L0012-0001"}


# --- OCR on the font incident ---------------------------------------------------------------

def _missing(table: pd.DataFrame) -> dict[str, float]:
    return {f.name: float(table[f.name].isna().mean()) for f in LAYOUT.fields}


@pytest.mark.slow
def test_the_font_incident_loses_some_ocr_fields_and_keeps_most(tmp_path, ocr):
    from oanet.ingest.stage import run as ingest

    cfg = IngestConfig(cache=None)
    night = _night(tmp_path / "font", "font", n=24)
    tables = {}
    for name, data in (("font", night), ("clean", _night(tmp_path / "clean", n=24))):
        out = tmp_path / f"{name}.parquet"
        ingest(cfg, data, out, tmp_path / f"{name}_q.parquet", ocr=ocr)
        tables[name] = pd.read_parquet(out)
    font, clean = _missing(tables["font"]), _missing(tables["clean"])
    assert max(clean.values()) == 0.0
    assert max(font.values()) >= 0.1                                   # one field noticeably
    assert sum(share <= 0.05 for share in font.values()) >= 10          # most still read
    reasons = {r for f in LAYOUT.fields for r in tables["font"][f"{f.name}__reason"].dropna()}
    assert reasons and reasons <= set(REASONS)
