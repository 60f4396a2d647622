"""Stage `drift`: a night's rows against the reference of the data the models learned on.

    oanet drift                              the stage: fit the reference on the split's train rows
                                             (val calibrates the thresholds), report the test rows
    oanet drift --data NIGHT_DIR             a night's folder, read by the OCR (nights.py)
    oanet drift --data RAW --table T [--lot L] [--night NAME]   rows already read

Writes, under paths.drift_reports/<night>/: index.html (one self-contained file), summary.json and
histograms.png; and paths.drift_reports/history.jsonl + history.png across nights (the test rows are
reported but are no night of the history).
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import DriftConfig, PathsConfig
from oanet.drift.compare import compare, headline, rank
from oanet.drift.reference import DriftError, DriftReference, fit_reference
from oanet.drift.statistics import image_statistics
from oanet.jsonsafe import strict_json

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def night_name(raw: str) -> str:
    """A night's name as a folder name: letters, digits, dot, dash and underscore only."""
    return _UNSAFE.sub("-", raw).strip("-.") or "night"


@dataclass(frozen=True)
class Night:
    name: str
    table: pd.DataFrame          # the night's OCR rows (column image: paths under data_dir)
    data_dir: Path


@dataclass(frozen=True)
class DriftResult:
    summary: dict
    page: Path
    summary_path: Path
    figures: dict[str, Path]

    @property
    def alert(self) -> bool:
        return bool(self.summary["alert"])

    def line(self) -> str:
        return self.summary["headline"]


def object_boxes(data_dir: str | Path, images: list[str], object_roi, size: int) -> np.ndarray:
    """(N, size, size) uint8: each image's whole object box (not cut tight: see statistics.py)."""
    from oanet.fusion.data import load_rois

    return load_rois(data_dir, images, tuple(object_roi), size, tight=False).numpy()[:, 0]


def _champion(paths: PathsConfig, table: pd.DataFrame, data_dir, object_roi) -> dict:
    """What the project's gate and models (paths.bag_models, fusion_models, gate) did, if they exist."""
    from oanet.drift.champion import champion_view

    models = (paths.bag_models, paths.fusion_models, paths.gate)
    if not all(Path(p).exists() for p in models):
        return {}
    return champion_view(*models, table, data_dir, object_roi)


def fit_project_reference(cfg: DriftConfig, paths: PathsConfig, layout_path: str | Path) -> DriftReference:
    """The reference from the split's train rows; the val rows (never fitted on) calibrate the thresholds."""
    from oanet.features import TabularSchema
    from oanet.layout import load_layout
    from oanet.split import load_parts

    layout = load_layout(layout_path)
    parts = load_parts(paths.clean, paths.split)
    train, val = parts["train"], parts["val"]
    if len(val) < 2:
        raise DriftError("the split has no val rows to calibrate the drift thresholds on (split.val_fold)")
    stats = {name: image_statistics(object_boxes(paths.raw, rows["image"].tolist(), layout.object_roi, cfg.box_size))
             for name, rows in (("train", train), ("val", val))}
    reference = fit_reference(TabularSchema.from_layout(layout), train, stats["train"], val, stats["val"],
                              layout.object_roi, cfg.box_size, cfg.ocr_bins,
                              source=f"the train rows of {paths.split} ({paths.clean})")
    return dataclasses.replace(reference, decisions=_champion(paths, val, paths.raw, layout.object_roi))


def _thumbnails(stats: pd.DataFrame, boxes: np.ndarray, images: list[str], reference: DriftReference,
                items: list, k: int) -> tuple[str, list[tuple[str, str]]]:
    """The k objects rarest under the most drifted image statistic: (statistic, [(caption, data URI)])."""
    from oanet.drift.page import png_data_uri
    from oanet.gate.reference import smoothed_kl

    image_items = [i for i in items if i.modality == "image"]
    if not image_items or not len(boxes) or k <= 0:
        return "", []
    stat = image_items[0].name
    ref = reference.field_reference(f"image:{stat}")
    per_row = smoothed_kl(ref.counts(stats[stat]), np.asarray(ref.probs))                      # (N,)
    order = np.argsort(-per_row, kind="stable")[:k]
    return stat, [(f"{Path(images[j]).name}: {stat} {stats[stat].iloc[j]:.3g}", png_data_uri(boxes[j]))
                  for j in order]


def run(cfg: DriftConfig, night: Night, reference: DriftReference, paths: PathsConfig,
        history: bool = True, against: str = "") -> DriftResult:
    """Compare, write the page, the JSON summary and (`history`: a night, not the test rows) the history,
    under paths.drift_reports; the page shows what the gate and models of `paths` did with the rows.
    `against` names the baseline in the report (e.g. "the champion's bundle, v3")."""
    from oanet.drift.history import plot_history, read_history, record
    from oanet.drift.page import file_data_uri, histogram_figure, png_data_uri, render
    from oanet.files import write_text_atomic

    table = night.table.reset_index(drop=True)
    if not len(table):
        raise DriftError(f"night {night.name}: no rows to compare")
    name = night_name(night.name)
    reports = Path(paths.drift_reports)
    out = reports / name
    boxes = object_boxes(night.data_dir, table["image"].tolist(), reference.object_roi, reference.box_size)
    stats = image_statistics(boxes)
    thresholds = reference.thresholds(len(table), cfg.quantile, cfg.factor, cfg.draws, cfg.seed, cfg.min_divergence)
    items = rank(compare(reference, table, stats, thresholds), cfg.image_derived)
    alert = len(table) >= cfg.min_rows and any(i.score > 1 for i in items)
    stat, thumbs = _thumbnails(stats, boxes, table["image"].tolist(), reference, items, cfg.thumbnails)
    summary = strict_json({
        "night": name, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": len(table),
        "alert": alert, "headline": headline(items, alert, len(table)) + (
            "" if len(table) >= cfg.min_rows else f" (under drift.min_rows = {cfg.min_rows}: no alert)"),
        "drifted": [i.label for i in items if i.score > 1],
        "items": [i.to_dict() for i in items], "thumbnail_statistic": stat,
        "reference": {"source": reference.source, "rows": reference.n_rows, "decisions": reference.decisions,
                      "against": against},
        "champion": _champion(paths, table, night.data_dir, reference.object_roi),
        "settings": {"quantile": cfg.quantile, "factor": cfg.factor, "min_rows": cfg.min_rows,
                     "image_derived": list(cfg.image_derived)}})
    out.mkdir(parents=True, exist_ok=True)
    figures = {"histograms": out / "histograms.png", "history": reports / "history.png"}
    fig = histogram_figure(summary["items"][:cfg.plots])
    fig.savefig(figures["histograms"], dpi=100)
    histograms = png_data_uri(fig)
    entries = record(reports, summary) if history else read_history(reports)
    if entries:
        plot_history(entries, figures["history"])
    else:
        del figures["history"]
    history_uri = file_data_uri(figures["history"]) if entries else None
    page = write_text_atomic(out / "index.html", render(summary, histograms, thumbs, history_uri))
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    return DriftResult(summary, page, summary_path, figures)


TEST_ROWS = "test-rows"


def pipeline_stage(cfg: DriftConfig, paths: PathsConfig, layout_path: str | Path) -> tuple[DriftReference, DriftResult]:
    """The DVC stage: fit the reference (train rows; val calibrates) and report the test rows against it.

    The test rows are what the challenger is judged on: when they drift past the threshold from
    the rows it learned on, its test numbers do not describe its own data, and register does not
    promote it (flows/register.py reads the alert from paths.drift_reports/test-rows/summary.json)."""
    from oanet.split import load_parts

    reference = fit_project_reference(cfg, paths, layout_path)
    reference.save(paths.drift_reference)
    test = load_parts(paths.clean, paths.split)["test"]
    return reference, run(cfg, Night(TEST_ROWS, test, Path(paths.raw)), reference, paths, history=False)


def test_rows_alert(paths: PathsConfig) -> tuple[bool, str]:
    """(alert, headline) of the last pipeline run's test-row report; (False, why) when there is none."""
    path = Path(paths.drift_reports) / TEST_ROWS / "summary.json"
    if not path.is_file():
        return False, f"no drift report of the test rows at {path} (drift stage not run)"
    summary = json.loads(path.read_text())
    return bool(summary.get("alert")), str(summary.get("headline", ""))
