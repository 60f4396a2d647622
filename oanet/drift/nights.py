"""A night's rows for the drift report: a folder read by the OCR (`oanet drift --data`), an OCR table
(`--table`), or the images the nightly took in tonight. Kept apart from stage.py, which the DVC
stage runs: that one never reads a panel.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from oanet.drift.reference import DriftError, DriftReference
from oanet.drift.stage import DriftResult, Night, night_name, run


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
                 against: str | Path | None = None, night: str | None = None) -> DriftResult:
    """`oanet drift --data`: a night's folder (OCR-ed here, or its rows from `table`) against a reference.

    p: the loaded Params (drift and ingest sections, paths)."""
    data = Path(data)
    if not data.is_dir():
        raise DriftError(f"night folder not found: {data}")
    reference = DriftReference.load(against or p.paths.drift_reference)
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
    return run(p.drift, rows, reference, p.paths)


def report_taken(p, images: list[str], night: str) -> DriftResult | str:
    """The nightly's step: the rows of the images taken in tonight (the OCR table paths.ocr, images under
    paths.raw) against the reference of the last training. A string says why there is no report."""
    if not images:
        return "drift: no new images tonight, nothing to compare"
    paths = p.paths
    if not Path(paths.drift_reference).is_file():
        return f"drift: no reference yet ({paths.drift_reference}: the first training writes it), nothing to compare"
    table = pd.read_parquet(paths.ocr)
    rows = table[table["image"].isin(set(images))]
    if rows.empty:
        return f"drift: none of tonight's {len(images)} images has a readable row (see the quarantine)"
    return run(p.drift, Night(night, rows, Path(paths.raw)), DriftReference.load(paths.drift_reference), paths)
