"""A night's rows for the drift report: a folder read by the OCR (`oanet drift --data`), an OCR table
(`--table`), or the images the nightly took in tonight. Kept apart from stage.py, which the DVC
stage runs: that one never reads a panel.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from oanet.config import PathsConfig
from oanet.drift.reference import DriftError, DriftReference
from oanet.drift.stage import DriftResult, Night, night_name, run

BUNDLE_REFERENCE = "drift_reference.json"       # a model bundle's reference (oanet.serving.package_bundle)


@dataclass(frozen=True)
class Baseline:
    """What a night is compared with: a reference, and the models whose view the report shows."""
    reference: DriftReference
    paths: PathsConfig         # the project's paths with bag_models, fusion_models and gate of those models
    name: str                  # for the printed line: "the champion's bundle ...", "the last training's ..."


def baseline(paths: PathsConfig, against: str | Path | None = None, name: str | None = None) -> Baseline:
    """A model bundle folder (its drift_reference.json and its models), a reference file (with the
    project's models), or None: the last training's reference and models (paths.drift_reference)."""
    if against is not None and Path(against).is_dir():
        folder = Path(against)
        if not (folder / BUNDLE_REFERENCE).is_file():
            raise DriftError(f"{folder} is a folder without {BUNDLE_REFERENCE}: --against takes a drift reference "
                             "file or a model bundle that carries one (bundles registered before the drift stage "
                             "carry none)")
        models = dataclasses.replace(paths, bag_models=str(folder / "bag"), fusion_models=str(folder / "fusion"),
                                     gate=str(folder / "gate.json"))
        return Baseline(DriftReference.load(folder / BUNDLE_REFERENCE), models, name or f"the bundle {folder}")
    path = against or paths.drift_reference
    return Baseline(DriftReference.load(path), paths, name or f"the reference {path}")


def night_from_folder(folder: str | Path, ingest_cfg, work_dir: str | Path, name: str | None = None) -> Night:
    """OCR a night's folder (images/, labels.csv, layout.yaml) into a table under `work_dir`."""
    from oanet.ingest.stage import run as ingest

    folder, work_dir = Path(folder), Path(work_dir)
    result = ingest(ingest_cfg, folder, work_dir / "ocr.parquet", work_dir / "ocr_quarantine.parquet")
    if result.quarantined:
        print(f"drift: {result.quarantined} of the night's images were quarantined ({result.by_reason}); "
              f"the report covers the {result.rows} read")
    return Night(name or folder.name, pd.read_parquet(result.out), folder)


def report_night(p, data: str | Path, table: str | Path | None = None, lot: str | None = None,
                 against: str | Path | None = None, night: str | None = None,
                 against_name: str | None = None) -> DriftResult:
    """`oanet drift --data`: a night's folder (OCR-ed here, or its rows from `table`) against a baseline
    (`against`: see `baseline`).

    p: the loaded Params (drift and ingest sections, paths)."""
    data = Path(data)
    if not data.is_dir():
        raise DriftError(f"night folder not found: {data}")
    base = baseline(p.paths, against, against_name)
    name = night_name(night or lot or data.resolve().name)
    if table is None:
        rows = night_from_folder(data, p.ingest, Path(p.paths.drift_reports) / name, name)
    else:
        frame = pd.read_parquet(table)
        if lot is not None:
            if "lot" not in frame:
                raise DriftError(f"{table} has no lot column to select {lot!r} from")
            frame = frame[frame["lot"].astype(str) == lot]
        rows = Night(name, frame, data)
    return run(p.drift, rows, base.reference, base.paths, against=base.name)


def report_taken(p, images: list[str], night: str, against: str | Path | None = None,
                 against_name: str | None = None) -> DriftResult | str:
    """The nightly's step: the rows of the images taken in tonight (the OCR table paths.ocr, images under
    paths.raw) against `against` (the champion's bundle, when the registry has one) or the reference of
    the last training. A string says why there is no report."""
    if not images:
        return "drift: no new images tonight, nothing to compare"
    paths = p.paths
    if against is None and not Path(paths.drift_reference).is_file():
        return f"drift: no reference yet ({paths.drift_reference}: the first training writes it), nothing to compare"
    base = baseline(paths, against, against_name)
    table = pd.read_parquet(paths.ocr)
    rows = table[table["image"].isin(set(images))]
    if rows.empty:
        return f"drift: none of tonight's {len(images)} images has a readable row (see the quarantine)"
    return run(p.drift, Night(night, rows, Path(paths.raw)), base.reference, base.paths, against=base.name)
