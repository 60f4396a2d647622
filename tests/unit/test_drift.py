"""Drift: reference, thresholds at the night's size, comparison, ranking, history and the page."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from oanet.config import DriftConfig
from oanet.drift.compare import DriftItem, compare, headline, rank
from oanet.drift.history import read_history, record
from oanet.drift.page import render
from oanet.drift.reference import DriftError, DriftReference, fit_reference
from oanet.drift.statistics import IMAGE_STATISTICS, image_statistics
from oanet.features import TabularSchema

SCHEMA = TabularSchema(numeric=("temp", "press"), categories=(("station", ("A", "B")),))


def rows(n: int, seed: int, temp_shift: float = 0.0, missing_press: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    press = rng.normal(48, 1.2, n)
    press[rng.random(n) < missing_press] = np.nan
    reason = np.where(np.isnan(press), "low_confidence", None)
    return pd.DataFrame({"image": [f"images/{seed}_{k}.png" for k in range(n)],
                         "temp": rng.normal(1120 + temp_shift, 8, n), "press": press, "press__reason": reason,
                         "press__conf": np.where(np.isnan(press), 0.5, 0.99), "station": rng.choice(["A", "B"], n)})


def boxes(n: int, seed: int, gain: float = 1.0, shift: int = 0) -> np.ndarray:
    """(n, 64, 64) a bright square object on a dark box, textured; `shift` moves it right."""
    rng = np.random.default_rng(seed)
    out = np.full((n, 64, 64), 20.0) + rng.normal(0, 2, (n, 64, 64))
    for k in range(n):
        x0, y0 = 16 + shift + rng.integers(-2, 3), 16 + rng.integers(-2, 3)
        out[k, y0:y0 + 32, x0:x0 + 32] = rng.normal(120, 15, (32, 32))
    return np.clip(out * gain, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def reference() -> DriftReference:
    return fit_reference(SCHEMA, rows(400, 0), image_statistics(boxes(400, 0)), rows(200, 1),
                         image_statistics(boxes(200, 1)), (0, 0, 64, 64), 64, bins=10, source="test")


def drift(reference, table, images, factor=1.5):
    thresholds = reference.thresholds(len(table), 0.99, factor, draws=300, seed=3)
    return rank(compare(reference, table, image_statistics(images), thresholds), image_derived=("temp",))


def test_image_statistics_follow_brightness_and_position():
    base, bright, moved = (image_statistics(boxes(20, 5, gain=g, shift=s)) for g, s in ((1, 0), (1.5, 0), (1, 12)))
    assert list(base.columns) == list(IMAGE_STATISTICS)
    assert bright["brightness"].mean() == pytest.approx(1.5 * base["brightness"].mean(), rel=0.05)
    assert moved["centre_x"].mean() - base["centre_x"].mean() == pytest.approx(12 / 64, abs=0.03)
    assert moved["centre_y"].mean() == pytest.approx(base["centre_y"].mean(), abs=0.02)


def test_thresholds_shrink_as_nights_grow_down_to_the_floor(reference):
    small, large = reference.thresholds(20, 0.99, 1.5, 300), reference.thresholds(200, 0.99, 1.5, 300)
    assert set(small) == set(reference.items) | {f"{i}#missing" for i in reference.items if i.startswith("ocr:")}
    varied = [item for item in small if small[item] > 0.05]
    assert len(varied) >= 6 and all(large[item] < small[item] for item in varied)
    assert min(large.values()) == 0.05          # dark_share never varied here: it sits at the floor


@pytest.mark.parametrize("seed", range(5))
def test_clean_nights_raise_no_alert(reference, seed):
    items = drift(reference, rows(60, 100 + seed), boxes(60, 100 + seed))
    assert max(i.score for i in items) < 1, [(i.label, i.score) for i in items[:3]]


def test_a_process_shift_names_its_field_first(reference):
    items = drift(reference, rows(60, 7, temp_shift=30), boxes(60, 7))
    assert items[0].label == "ocr:temp" and items[0].score > 1
    assert all(i.score < 1 for i in items[1:])


def test_fields_going_missing_alert_with_their_reason(reference):
    items = drift(reference, rows(60, 8, missing_press=0.4), boxes(60, 8))
    top = items[0]
    assert top.label == "ocr:press" and top.score > 1
    assert top.missing_rate > 0.2 and top.reference_missing_rate == 0
    assert top.reasons["low_confidence"] == int(round(top.missing_rate * 60))


def test_a_field_losing_a_few_reads_alerts_even_where_its_values_vary_from_lot_to_lot():
    """A new font breaks 15% of one field's reads. Its values vary between the train and val lots, so the
    whole-histogram test has a wide threshold and misses it; the read-or-missing test does not."""
    train = rows(400, 20)
    val = pd.concat([rows(100, 21, temp_shift=-12.0), rows(100, 22, temp_shift=12.0)], ignore_index=True)
    lots = fit_reference(SCHEMA, train, image_statistics(boxes(400, 20)), val, image_statistics(boxes(200, 21)),
                         (0, 0, 64, 64), 64, bins=10, source="lots")
    night = rows(80, 23, temp_shift=8.0)
    night.loc[night.index[:12], "temp"] = np.nan                         # 15% of the reads lost
    items = drift(lots, night, boxes(80, 23))
    top = items[0]
    assert top.label == "ocr:temp" and top.values_score < 1 < top.missing_score == top.score
    clean = drift(lots, rows(80, 24, temp_shift=8.0), boxes(80, 24))       # the same lot, every read made
    assert not any(i.score > 1 for i in clean), [(i.label, i.score) for i in clean[:3]]


def test_among_alerting_image_statistics_a_cause_goes_before_its_echoes():
    """Position, then brightness, then the rest: a moved object changes every pixel statistic of its box,
    a gain change scales contrast and sharpness with the brightness."""
    def item(name, score):
        return DriftItem("image", name, divergence=score, threshold=1.0)
    camera = [item("sharpness", 5.0), item("centre_x", 4.6), item("centre_y", 3.4), item("dark_share", 2.2)]
    assert [i.name for i in rank(camera)] == ["centre_x", "centre_y", "sharpness", "dark_share"]
    exposure = [item("contrast", 2.2), item("sharpness", 2.0), item("brightness", 1.7), item("centre_x", 0.5)]
    assert [i.name for i in rank(exposure)][:3] == ["brightness", "contrast", "sharpness"]
    focus = [item("sharpness", 3.0), item("brightness", 0.9), item("centre_x", 0.4)]
    assert rank(focus)[0].name == "sharpness"                            # no cause alerting: the score leads
    mixed = [DriftItem("ocr", "temp", 6.0, 1.0), item("sharpness", 5.0), item("centre_x", 4.0)]
    assert [i.label for i in rank(mixed)] == ["ocr:temp", "image:centre_x", "image:sharpness"]


def test_an_image_statistic_goes_before_the_printed_field_derived_from_it():
    def item(modality, name, score):
        return DriftItem(modality, name, divergence=score, threshold=1.0)
    items = [item("ocr", "temp", 9.0), item("image", "brightness", 3.0), item("ocr", "press", 0.5)]
    assert [i.label for i in rank(items, image_derived=("temp",))][:2] == ["image:brightness", "ocr:temp"]
    assert rank(items, image_derived=())[0].label == "ocr:temp"          # not derived: the larger score leads
    calm_image = [item("ocr", "temp", 9.0), item("image", "brightness", 0.5)]
    assert rank(calm_image, image_derived=("temp",))[0].label == "ocr:temp"   # no image drift to blame


def test_a_moved_camera_is_named_by_position(reference):
    items = drift(reference, rows(60, 9), boxes(60, 9, shift=12))
    assert items[0].label == "image:centre_x"
    assert not any(i.score > 1 for i in items if i.modality == "ocr")


def test_headline_names_the_drifted_items_or_the_largest_calm_one(reference):
    items = drift(reference, rows(60, 7, temp_shift=30), boxes(60, 7))
    assert headline(items, True, 60).startswith("DRIFT ALERT over 60 rows: ocr:temp")
    assert "no alert" in headline(items, False, 60)


def test_the_reference_round_trips_and_refuses_foreign_files(reference, tmp_path):
    path = reference.save(tmp_path / "ref.json")
    assert DriftReference.load(path) == reference
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DriftError, match="not a drift reference"):
        DriftReference.load(tmp_path / "bad.json")
    with pytest.raises(DriftError, match="no drift reference"):
        DriftReference.load(tmp_path / "absent.json")


def test_a_night_with_another_layout_is_refused_with_what_to_do(reference):
    """A DriftError (the CLI prints it as one line, exit 2), naming the field and the way out."""
    with pytest.raises(DriftError, match=r"lack the reference's OCR fields \['press'\].*another layout.*--against"):
        compare(reference, rows(10, 3).drop(columns="press"), image_statistics(boxes(10, 3)),
                reference.thresholds(10, 0.99, 1.5, 50))


def test_history_keeps_one_line_per_night_in_time_order(tmp_path):
    def summary(night, created, score):
        return {"night": night, "created": created, "rows": 50, "alert": score > 1,
                "items": [{"modality": "ocr", "label": "ocr:temp", "score": score}]}
    record(tmp_path, summary("n2", "2026-11-02", 0.4))
    record(tmp_path, summary("n1", "2026-11-01", 0.3))
    entries = record(tmp_path, summary("n2", "2026-11-02", 2.0))        # reported again: replaced
    assert [e["night"] for e in entries] == ["n1", "n2"] and entries[1]["alert"]
    (tmp_path / "history.jsonl").write_text((tmp_path / "history.jsonl").read_text() + '{"cut by a cra')
    assert len(read_history(tmp_path)) == 2


def test_the_page_is_one_file_with_nothing_to_fetch(reference):
    items = drift(reference, rows(60, 7, temp_shift=30), boxes(60, 7))
    summary = {"night": "n<1>", "created": "2026-11-30T00:00:00Z", "rows": 60, "alert": True,
               "headline": headline(items, True, 60), "items": [i.to_dict() for i in items],
               "reference": {"source": "test", "rows": 400, "decisions": {}}, "champion": {},
               "settings": {"quantile": 0.99, "factor": 1.5}}
    page = render(summary, "data:image/png;base64,AAAA", [("a.png", "data:image/png;base64,BBBB")], None)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "n&lt;1&gt;" in page and "DRIFT ALERT" in page and page.count("<tr class=hot>") == 1


def test_the_stage_config_rejects_a_non_positive_factor():
    from oanet.config import ConfigError, from_dict
    with pytest.raises(ConfigError, match="factor"):
        from_dict(DriftConfig, {"factor": 0})
