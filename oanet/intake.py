"""Stage `data`: the raw AOI dataset, and the intake of new images into it.

`data/raw` (images/, labels.csv, layout.yaml, truth.csv when synthetic) is the one
dataset every later stage reads. It grows; it is never regenerated behind a user's back:

- An empty raw dataset starts as the synthetic demo set (`synth` params) when
  `data.seed_demo` is on, so a fresh clone has something to run on. While it holds
  only that demo set, a change of the `synth` params regenerates it.
- New images arrive in the incoming folder (`images/` plus `labels.csv` with at least
  `image,label`). Intake moves them into the raw dataset and appends their label rows.
  Bad images are not judged here: the ingest stage quarantines them with a reason.

Crash safety: images are copied first, then labels.csv is replaced atomically, and
only then are the incoming files removed; a re-run after a crash finds the copies,
recognises them by content, and finishes the move without duplicating a row.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from oanet.config import DataConfig, SynthConfig
from oanet.errors import OanetError
from oanet.ingest.inventory import IMAGE_SUFFIXES

SOURCE_FILE = "source.json"      # what the raw dataset is made of: the demo set and/or intake batches
LABEL_COLUMNS = ["image", "label", "defect_type", "lot"]


class IntakeError(OanetError, ValueError):
    """Incoming data that cannot be merged (no labels file, bad columns, another layout)."""


@dataclass(frozen=True)
class IntakeResult:
    raw: Path
    moved: int             # images moved from incoming into the raw dataset
    renamed: int           # of those, renamed because the raw dataset had another image of that name
    duplicates: int        # incoming images already in the raw dataset (same name, same bytes): dropped
    raw_images: int        # images in the raw dataset afterwards
    seeded: str = ""       # "demo" when the demo set was (re)generated this run

    @property
    def new_data(self) -> bool:
        return self.moved > 0 or bool(self.seeded)

    def summary(self) -> str:
        head = f"data: {self.raw_images} images in {self.raw}"
        if self.seeded:
            head += " (synthetic demo set generated)"
        return (f"{head}\n  intake: {self.moved} new images moved in ({self.renamed} renamed), "
                f"{self.duplicates} duplicates dropped")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _read_source(raw: Path) -> dict:
    path = raw / SOURCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"demo": None, "batches": []}


def _write_source(raw: Path, source: dict) -> None:
    (raw / SOURCE_FILE).write_text(json.dumps(source, indent=1, sort_keys=True) + "\n")


def synth_fingerprint(cfg: SynthConfig) -> str:
    return hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _seed_demo(raw: Path, synth: SynthConfig, progress: bool) -> str:
    """(Re)generate the demo set when the raw dataset is empty or holds only an older demo set."""
    source = _read_source(raw)
    fingerprint = synth_fingerprint(synth)
    has_images = bool(_images(raw / "images"))
    if has_images and (source["batches"] or source["demo"] in (None, fingerprint)):
        return ""    # real data, or the same demo set: leave it alone
    from oanet.synth.stage import run as synth_run

    synth_run(synth, raw, progress=progress)
    _write_source(raw, {"demo": fingerprint, "batches": []})
    return "demo"


def _read_incoming_labels(incoming: Path) -> pd.DataFrame:
    path = incoming / "labels.csv"
    if not path.is_file():
        raise IntakeError(f"{incoming} has images but no labels.csv (columns image,label[,defect_type,lot])")
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"image", "label"} - set(labels.columns)
    if missing:
        raise IntakeError(f"{path}: missing column(s) {sorted(missing)}; found {list(labels.columns)}")
    return labels


def _check_layout(incoming: Path, raw: Path) -> None:
    new, old = incoming / "layout.yaml", raw / "layout.yaml"
    if new.is_file() and old.is_file() and new.read_text() != old.read_text():
        raise IntakeError(f"{new} differs from {old}: images with another panel layout are another dataset; "
                          "ingest them with their own layout (oanet ingest --data ... --layout ...)")
    if new.is_file() and not old.is_file():
        raw.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(new, old)


def _target_name(image: Path, raw_images: Path) -> tuple[str, str]:
    """(name in the raw dataset, 'new' | 'renamed' | 'duplicate')."""
    target = raw_images / image.name
    if not target.exists():
        return image.name, "new"
    digest = _digest(image)
    if _digest(target) == digest:
        return image.name, "duplicate"
    return f"{image.stem}_{digest[:8]}{image.suffix}", "renamed"


def _append_rows(csv_path: Path, rows: pd.DataFrame, columns: list[str]) -> None:
    """Append rows whose image is not there yet; atomic replace so a crash leaves the old file."""
    old = (pd.read_csv(csv_path, dtype=str, keep_default_na=False) if csv_path.is_file()
           else pd.DataFrame(columns=columns))
    rows = rows[~rows["image"].isin(set(old["image"]))]
    merged = pd.concat([old, rows.reindex(columns=old.columns if len(old.columns) else columns, fill_value="")],
                       ignore_index=True)
    tmp = csv_path.with_suffix(".csv.tmp")
    merged.to_csv(tmp, index=False)
    tmp.replace(csv_path)


def merge_incoming(incoming: Path, raw: Path, batch: str) -> tuple[int, int, int]:
    """Move incoming images and label rows into `raw`: (moved, renamed, duplicates)."""
    images = _images(incoming / "images")
    if not images:
        return 0, 0, 0
    labels = _read_incoming_labels(incoming)
    _check_layout(incoming, raw)
    (raw / "images").mkdir(parents=True, exist_ok=True)
    names, counts = {}, {"new": 0, "renamed": 0, "duplicate": 0}
    for image in images:
        name, kind = _target_name(image, raw / "images")
        counts[kind] += 1
        names[image.name] = name
        if kind != "duplicate":
            shutil.copyfile(image, raw / "images" / name)

    def raw_path(label_image: str) -> str:     # labels name images relative to the dataset folder
        base = Path(label_image).name
        return f"images/{names.get(base, base)}"

    labels = labels.assign(image=labels["image"].map(raw_path))
    if "lot" not in labels.columns or (labels["lot"] == "").all():
        labels = labels.assign(lot=batch)    # lots keep units of one night together in the grouped split
    _append_rows(raw / "labels.csv", labels, LABEL_COLUMNS)
    truth = incoming / "truth.csv"
    if truth.is_file() and (raw / "truth.csv").is_file():
        rows = pd.read_csv(truth, dtype=str, keep_default_na=False)
        _append_rows(raw / "truth.csv", rows.assign(image=rows["image"].map(raw_path)), [])
    for image in images:
        image.unlink()
    for name in ("labels.csv", "truth.csv", "layout.yaml"):
        (incoming / name).unlink(missing_ok=True)
    return counts["new"] + counts["renamed"], counts["renamed"], counts["duplicate"]


def run(cfg: DataConfig, synth: SynthConfig, *, progress: bool = True) -> IntakeResult:
    raw, incoming = Path(cfg.raw), Path(cfg.incoming)
    seeded = _seed_demo(raw, synth, progress) if cfg.seed_demo else ""
    batch = "night-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    moved, renamed, duplicates = merge_incoming(incoming, raw, batch)
    if moved:
        source = _read_source(raw)
        _write_source(raw, {**source, "batches": [*source["batches"], {"batch": batch, "images": moved}]})
    if not _images(raw / "images"):
        raise IntakeError(f"no images in {raw}/images and none in {incoming}/images "
                          "(set data.seed_demo: true for the synthetic demo set)")
    return IntakeResult(raw=raw, moved=moved, renamed=renamed, duplicates=duplicates,
                        raw_images=len(_images(raw / "images")), seeded=seeded)


def dataset_version(raw: str | Path) -> str:
    """Content hash of the raw dataset (every file's path and bytes): the data version models are tagged with."""
    raw = Path(raw)
    digest = hashlib.sha256()
    for path in sorted(p for p in raw.rglob("*") if p.is_file() and p.name != SOURCE_FILE):
        digest.update(path.relative_to(raw).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
