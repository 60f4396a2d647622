"""oanet synth: files, layout consistency, determinism, label model, object sources, stats."""
from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from oanet.config import LabelModelConfig, ProcessConfig, SynthConfig
from oanet.layout import load_layout
from oanet.synth import labels, objects, stats
from oanet.synth.aoi_layout import aoi_v1_layout
from oanet.synth.panel import PanelStyle, compose
from oanet.synth.stage import run
from oanet.synth.tiles import tile_groups

N = 24
LM, PC = LabelModelConfig(), ProcessConfig()
DECIMALS = {"exposure_ms": 1, "gain_db": 1, "sinter_temp_c": 1, "press_mpa": 2, "thickness_mm": 3}


def _synth(out: Path, **kw) -> Path:
    run(SynthConfig(n=kw.pop("n", N), **kw), out, progress=False)
    return out


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory.mktemp("synth") / "a", seed=5)


# --- the data set on disk -------------------------------------------------------------

def test_files_and_image_format(data):
    lab = _read(data / "labels.csv")
    assert list(lab.columns) == ["image", "label", "defect_type", "lot"]
    assert len(lab) == N and len(list((data / "images").glob("*.png"))) == N
    for name in lab.image:
        with Image.open(data / name) as im:
            assert (im.format, im.size, im.mode) == ("PNG", (640, 480), "L")
    assert load_layout(data / "layout.yaml") == aoi_v1_layout()


def test_labels_and_truth_follow_the_layout(data):
    layout, lab, truth = aoi_v1_layout(), _read(data / "labels.csv"), _read(data / "truth.csv")
    assert list(truth.columns) == ["image"] + [f.name for f in layout.fields]
    assert list(truth.image) == list(lab.image)
    for f in layout.fields:
        assert truth[f.name].str.fullmatch(f.value_regex()).all(), f.name
        if f.dtype == "float":
            assert all(f.format_value(float(v)) == v for v in truth[f.name]), f.name
    ids = [int(u[1:]) for u in truth.unit_id]
    assert ids == list(range(ids[0], ids[0] + N))
    assert list(lab.image) == [f"images/{u}.png" for u in truth.unit_id]
    assert (truth.lot == lab.lot).all() and set(lab.lot) == {"L2611-0001"}
    assert ((lab.label == "1") == (lab.defect_type != "")).all()


def test_printed_panel_equals_truth(data):
    """Clean preset: redrawing the panel from truth.csv reproduces the saved image exactly."""
    layout, truth = aoi_v1_layout(), _read(data / "truth.csv")
    x0, y0, x1, y1 = layout.object_roi
    for _, row in truth.head(4).iterrows():
        saved = np.asarray(Image.open(data / row.image))
        lines = {f.name: f.line(row[f.name]) for f in layout.fields}
        redrawn = compose(layout, saved[y0:y1, x0:x1].copy(), lines, PanelStyle(), np.random.default_rng(0))
        assert np.array_equal(np.asarray(redrawn), saved)


def test_same_seed_same_bytes_other_seed_differs(data, tmp_path):
    again = _synth(tmp_path / "b", seed=5)
    for name in ("labels.csv", "truth.csv", "layout.yaml"):
        assert (again / name).read_bytes() == (data / name).read_bytes()
    first = _read(data / "labels.csv").image[0]
    assert (again / first).read_bytes() == (data / first).read_bytes()
    other = _synth(tmp_path / "c", seed=6, n=4)
    assert (other / "truth.csv").read_bytes() != (data / "truth.csv").read_bytes()


def test_lots_noisy_preset_and_rerun_clears_old_images(tmp_path):
    out = _synth(tmp_path / "d", seed=1, n=10, units_per_lot=4, preset="noisy")
    assert list(_read(out / "labels.csv").lot) == ["L2611-0001"] * 4 + ["L2611-0002"] * 4 + ["L2611-0003"] * 2
    result = run(SynthConfig(n=3, seed=2), out, progress=False)
    assert len(list((out / "images").glob("*.png"))) == 3
    assert "3 images" in result.summary() and result.defects == sum(result.by_type.values())


# --- label model ----------------------------------------------------------------------

def _draws(defect, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return [labels.draw_unit(defect, LM, PC, rng, DECIMALS) for _ in range(n)]


def test_param_defects_share_and_out_of_spec():
    draws = _draws(None, n=4000)
    params = [d for d in draws if d.defect_type == labels.PARAM]
    assert 0.10 < len(params) / len(draws) < 0.14
    assert all(d.label == 1 and labels.out_of_spec(d.values, LM) for d in params)
    assert all(d.label == 0 and d.defect_type is None and not labels.out_of_spec(d.values, LM)
               for d in draws if d.defect_type != labels.PARAM)
    assert all(v == round(v, DECIMALS[k]) for d in draws[:50] for k, v in d.values.items())


@pytest.mark.parametrize("defect, name, sign", [("Crack", "sinter_temp_c", 1), ("Break", "sinter_temp_c", 1),
                                                ("Blowhole", "press_mpa", -1), ("Fray", "press_mpa", 1)])
def test_object_defect_shifts_its_process_value(defect, name, sign):
    draws = _draws(defect)
    assert all(d.label == 1 and d.defect_type == defect for d in draws)
    normal = getattr(PC, name)[0]
    shift = np.array([d.values[name] for d in draws]) - normal
    expected = {"sinter_temp_c": LM.temp_shift, "press_mpa": LM.press_drop if sign < 0 else LM.press_rise}[name][0]
    assert sign * shift.mean() == pytest.approx(LM.shift_prob * expected, rel=0.15)


def test_uneven_shifts_thickness_both_ways():
    thick = np.array([d.values["thickness_mm"] for d in _draws("Uneven")]) - PC.thickness_mm[0]
    assert (thick > 0.025).mean() > 0.25 and (thick < -0.025).mean() > 0.25
    assert np.abs(thick).mean() > 2 * np.abs(np.array([d.values["thickness_mm"] for d in _draws(None)]) - 4).mean()


def test_shift_process_direction_per_type():
    rng, base = np.random.default_rng(1), labels.normal_process(PC, np.random.default_rng(2))
    for _ in range(200):
        assert labels.shift_process(base, "Crack", LM, rng)["sinter_temp_c"] > base["sinter_temp_c"] - 5
        assert labels.shift_process(base, "Blowhole", LM, rng)["press_mpa"] < base["press_mpa"]
        assert labels.push_out_of_spec(base, LM, rng) != base
    assert labels.shift_process(base, "Scratch", LM, rng) == base   # unknown types shift nothing


# --- statistics -----------------------------------------------------------------------

def test_stats_on_known_images():
    flat = np.full((32, 32), 80, np.uint8)
    assert stats.object_stats(flat, 100.0) == (80.0, 0.0, 0.0, 0.0)
    step = flat.copy()
    step[:, 16:] = 180                      # Sobel magnitude 4 * 100 on the two columns at the step
    assert stats.edge_frac(step, 100.0) == pytest.approx(2 / 32)
    assert stats.edge_frac(step, 500.0) == 0.0
    pits = flat.copy()
    pits[0, :4] = 0                         # 4 of 1024 pixels far below mean - 2 std
    assert stats.dark_pct(pits) == pytest.approx(100 * 4 / 1024)


# --- object sources -------------------------------------------------------------------

def test_procedural_objects_draw_the_weighted_defect():
    src = objects.ProceduralObjects(1.0, {"Crack": 1.0})
    sample = src(0, np.random.default_rng(0))
    assert sample.image.shape == (320, 320) and sample.image.dtype == np.uint8
    assert sample.defect_type == "Crack" and 1 <= sample.light <= 6 and sample.source == "procedural"
    assert objects.ProceduralObjects(0.0, {"Crack": 1.0})(0, np.random.default_rng(0)).defect_type is None
    for defect in objects.DRAWERS:          # every drawer changes the image drawn from the same stream
        clean, _ = objects.render_tile(np.random.default_rng(3), 3, None)
        assert not np.array_equal(objects.render_tile(np.random.default_rng(3), 3, defect)[0], clean), defect
    with pytest.raises(ValueError, match="Scratch"):
        objects.ProceduralObjects(0.5, {"Scratch": 1.0})


def test_procedural_tile_box_and_lots():
    sample = objects.ProceduralObjects(0.0, {"Crack": 1.0})(0, np.random.default_rng(4))
    x0, y0, x1, y1 = sample.tile_box
    outside = np.ones(sample.image.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert sample.tile.shape == (y1 - y0, x1 - x0) and np.ptp(sample.image[outside]) == 0   # flat background
    assert sample.tile.min() > sample.image[outside].max()
    assert [objects.ProceduralObjects(0.3, {"Crack": 1.0}).lot_of(i, 4) for i in range(10)] == [i // 4 for i in range(10)]


def _write_photos(root: Path, specs: dict[str, list[tuple[str, tuple[int, int], int]]]) -> Path:
    """Tiny uniform JPEGs MT_<Class>/Imgs/<stem>.jpg of the given (width, height) and gray, with masks."""
    for cls, items in specs.items():
        (root / cls / "Imgs").mkdir(parents=True)
        for stem, size, gray in items:
            Image.new("L", size, gray).save(root / cls / "Imgs" / f"{stem}.jpg")
            Image.new("L", size, 0).save(root / cls / "Imgs" / f"{stem}.png")   # masks are ignored
    return root


def _fake_tiles(root: Path) -> Path:
    return _write_photos(root, {"MT_Free": [("exp0_num_1", (100, 200), 200), ("exp3_num_2", (400, 250), 200)],
                                "MT_Crack": [("exp2_num_3", (320, 320), 200)],
                                "MT_Uneven": [("num_4", (50, 60), 200)]})


# Five tiles in nine photos; each photo has its own gray, so a unit's MEAN names its photo.
PHOTOS = [("Free", "exp1_num_100", (30, 40), 0), ("Free", "exp2_num_150", (32, 41), 0),
          ("Free", "exp3_num_330", (31, 43), 0),       # 230 frames from the first: chained via the second
          ("Free", "exp1_num_120", (50, 30), 1), ("Free", "exp2_num_200", (52, 30), 1),   # near, other size
          ("Free", "exp1_num_900", (30, 40), 2),
          ("Crack", "exp1_num_100", (30, 40), 3), ("Crack", "exp2_num_110", (30, 40), 3),
          ("Crack", "scratch", (30, 40), 4)]            # no frame number: a tile of its own


def _grouped_tiles(root: Path) -> Path:
    specs: dict[str, list] = {}
    for i, (cls, stem, size, _) in enumerate(PHOTOS):
        specs.setdefault(f"MT_{cls}", []).append((stem, size, 40 + 15 * i))
    return _write_photos(root, specs)


def _tile_of(source: str) -> int:
    return {f"MT_{cls}/Imgs/{stem}.jpg": tile for cls, stem, _, tile in PHOTOS}[source]


def test_tile_groups_of_the_fixture(tmp_path):
    folder = _grouped_tiles(tmp_path / "tiles")
    photos = [(folder / f"MT_{cls}/Imgs/{stem}.jpg", size) for cls, stem, size, _ in PHOTOS]
    assert tile_groups(photos) == [tile for *_, tile in PHOTOS]


def test_tile_folder_source(tmp_path):
    folder = _fake_tiles(tmp_path / "tiles")
    src = objects.TileFolder(folder, np.random.default_rng(0))
    seen = [src(i, np.random.default_rng(i)) for i in range(len(src))]
    assert len(src) == 4 and len({s.source for s in seen}) == 4
    by_name = {Path(s.source).stem: s for s in seen}
    assert by_name["exp0_num_1"].light == 1 and by_name["exp3_num_2"].light == 3
    assert by_name["exp2_num_3"].defect_type == "Crack" and by_name["exp0_num_1"].defect_type is None
    assert 1 <= by_name["num_4"].light <= 6 and by_name["num_4"].defect_type == "Uneven"
    assert src(4, np.random.default_rng(9)).source == seen[0].source      # cycles past the end
    tall = by_name["exp0_num_1"]                                          # 100x200 -> 160x320, centred
    assert tall.tile_box == (80, 0, 240, 320) and tall.tile.min() > 150
    assert tall.image[:, :80].max() == 0 and tall.image[:, 240:].max() == 0


def test_tile_folder_keeps_a_tile_in_one_lot(tmp_path):
    src = objects.TileFolder(_grouped_tiles(tmp_path / "tiles"), np.random.default_rng(1))
    n = len(src)
    tiles = [_tile_of(path.relative_to(src.folder).as_posix()) for path, _ in src.tiles]
    runs = [t for k, t in enumerate(tiles) if k == 0 or t != tiles[k - 1]]
    assert sorted(runs) == [0, 1, 2, 3, 4]                  # siblings consecutive: one run per tile
    lots = [src.lot_of(i, 4) for i in range(2 * n)]
    assert lots[n:] == lots[:n]                             # a re-used photo keeps its first lot
    assert all(len({lot for lot, t in zip(lots[:n], tiles, strict=True) if t == tile}) == 1 for tile in range(5))
    assert lots[:n] == sorted(lots[:n]) and max(Counter(lots[:n]).values()) <= 4


def test_synth_lots_keep_tiles_whole(tmp_path):
    n = 2 * len(PHOTOS)                                     # every photo used twice
    out = _synth(tmp_path / "out", objects=str(_grouped_tiles(tmp_path / "tiles")), n=n, seed=3, units_per_lot=4)
    lab, truth = _read(out / "labels.csv"), _read(out / "truth.csv")
    photo = ((truth.gray_mean.astype(float) - 40) / 15).round().astype(int)   # a uniform photo: MEAN is its gray
    assert sorted(photo) == sorted(list(range(len(PHOTOS))) * 2)
    tile = photo.map(lambda i: PHOTOS[i][3])
    assert (lab.lot.groupby(tile).nunique() == 1).all() and lab.lot.nunique() > 1


def test_stats_describe_the_tile_not_the_padding(tmp_path):
    """One gray in three shapes, so three paddings: the printed statistics are the same."""
    folder = _write_photos(tmp_path / "tiles", {"MT_Free": [
        ("exp1_num_10", (40, 80), 120), ("exp1_num_5000", (60, 60), 120), ("exp1_num_9000", (90, 60), 120)]})
    truth = _read(_synth(tmp_path / "out", objects=str(folder), n=3, seed=0) / "truth.csv")
    printed = truth[["gray_mean", "gray_std", "dark_pct", "edge_frac"]].astype(float)
    assert (printed.nunique() == 1).all()
    assert abs(printed.gray_mean[0] - 120) <= 2 and printed.gray_std[0] == printed.edge_frac[0] == 0


def test_synth_with_tile_folder(tmp_path):
    out = _synth(tmp_path / "out", objects=str(_fake_tiles(tmp_path / "tiles")), n=6, seed=3)
    lab, truth = _read(out / "labels.csv"), _read(out / "truth.csv")
    from_photo = lab.defect_type.isin(["Crack", "Uneven"])                 # 4 photos cycled over 6 units
    assert from_photo[:4].sum() == 2 and list(from_photo[4:]) == list(from_photo[:2])
    assert set(truth.light) <= {"1", "2", "3", "4", "5", "6"}


def test_empty_objects_folder_is_a_clear_error(tmp_path):
    masks_only = tmp_path / "masks" / "MT_Free" / "Imgs"
    masks_only.mkdir(parents=True)
    Image.new("L", (8, 8)).save(masks_only / "exp1_num_1.png")
    for folder in (tmp_path / "masks", tmp_path / "missing"):
        with pytest.raises(FileNotFoundError, match=r"MT_<Class>/Imgs/\*\.jpg"):
            run(dataclasses.replace(SynthConfig(n=2), objects=str(folder)), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [{"preset": "fancy"}, {"n": 0}, {"lot_yymm": "26-11"}])
def test_bad_config_fails_before_writing(tmp_path, bad):
    with pytest.raises(ValueError):
        run(dataclasses.replace(SynthConfig(n=2), **bad), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
