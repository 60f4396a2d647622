"""Stage `data`: the raw AOI dataset, and the intake of new images into it.

`data/raw` (images/, labels.csv, layout.yaml, truth.csv when synthetic) is the one
dataset every later stage reads. It grows; it is never regenerated behind a user's back:

- An empty raw dataset starts as the synthetic demo set (`synth` params) when
  `data.seed_demo` is on, so a fresh clone has something to run on. While it holds
  only that demo set, byte for byte (source.json lists the demo's files and their
  digests), a change of the `synth` params regenerates it. Anything else in it, an
  image or a label row intake delivered, keeps the generator away for good.
- New images arrive in the incoming folder by the delivery protocol of
  incoming/README.md: `images/*` plus label rows in `labels*.csv` (`image,label[,...]`).
  An image is taken when it has not changed for `data.settle_s` seconds and a label row
  names it; only the rows of the images taken leave the label files. Symlinks, special
  files and files over the size limits are refused with a reason and left where they are,
  never read. Bad image contents are not judged here: ingest quarantines them.

Crash safety (the caller holds the project lock, oanet.runlock): images are copied to
temporary names and renamed, then labels.csv is replaced, then the batch is recorded in
source.json, and only then are the rows and images removed from incoming. A re-run after
a crash at any point finds the copies, recognises them by content, and finishes the move
without duplicating a row.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd

from oanet.config import DataConfig, PathsConfig, SynthConfig
from oanet.csvsafe import escape_formula
from oanet.errors import OanetError
from oanet.ingest.inventory import IMAGE_SUFFIXES

SOURCE_FILE = "source.json"      # what the raw dataset is made of: the demo set and/or intake batches
LABEL_COLUMNS = ["image", "label", "defect_type", "lot"]
TEMP_PREFIX = ".oanet-tmp-"      # our half-written files: hidden and never image-named, so no stage reads them
MB = 1 << 20


class IntakeError(OanetError, ValueError):
    """Incoming data that cannot be merged (another layout, bad limits)."""


class Refused(Exception):
    """A file intake will not read; the message is the reason."""


@dataclass(frozen=True)
class IntakeResult:
    raw: Path
    moved: int             # images moved from incoming into the raw dataset
    renamed: int           # of those, renamed because the raw dataset had another image of that name
    duplicates: int        # incoming images already in the raw dataset (same name, same bytes): dropped
    raw_images: int        # images in the raw dataset afterwards
    seeded: str = ""       # "demo" when the demo set was (re)generated this run
    waiting: tuple[str, ...] = ()    # left in incoming for a later night: "name (why)"
    rejected: tuple[str, ...] = ()   # refused and left in incoming: "path: reason"
    taken: tuple[str, ...] = ()      # images/<name> of the label rows this run took in (a duplicate: the raw copy)

    @property
    def new_data(self) -> bool:
        return self.moved > 0 or bool(self.seeded)

    def summary(self) -> str:
        head = f"data: {self.raw_images} images in {self.raw}"
        if self.seeded:
            head += " (synthetic demo set generated)"
        lines = [head, f"  intake: {self.moved} new images moved in ({self.renamed} renamed), "
                       f"{self.duplicates} duplicates dropped"]
        for title, items in (("waiting in incoming", self.waiting), ("refused, left in incoming", self.rejected)):
            if items:
                shown = "; ".join(items[:10]) + (f"; ... {len(items) - 10} more" if len(items) > 10 else "")
                lines.append(f"  {title}: {len(items)}: {shown}")
        return "\n".join(lines)


# ---- files: read only what is a regular file, write only by rename --------------------------------------

def _kind(mode: int) -> str | None:
    """Why a file of this mode is refused (None: a regular file)."""
    kinds = [(stat.S_ISLNK, "a symbolic link (never followed)"), (stat.S_ISDIR, "a directory"),
             (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")]
    return next((why for test, why in kinds if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def _refusal(st: os.stat_result, max_bytes: int, limit_name: str) -> str | None:
    if (kind := _kind(st.st_mode)) is not None:
        return kind
    if st.st_nlink > 1:      # another name of a file that may live anywhere on this disk
        return "a hard link (the file has other names)"
    if st.st_size > max_bytes:
        return f"{st.st_size / MB:.1f} MB, over {limit_name} = {max_bytes / MB:g}"
    return None


def _read_regular(path: Path, max_bytes: int, limit_name: str) -> bytes:
    """The bytes of a regular file, checked again on the open descriptor (it may have been swapped)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Refused("a symbolic link (never followed)") from None
        raise
    with os.fdopen(fd, "rb") as f:
        if (why := _refusal(os.fstat(fd), max_bytes, limit_name)) is not None:
            raise Refused(why)
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Refused(f"grew past {limit_name} while read")
    return data


def _settled(st: os.stat_result, settle_s: float) -> bool:
    """Unchanged for settle_s: ctime also moves when the file is renamed into place or its times are set."""
    return time.time() - max(st.st_mtime, st.st_ctime) >= settle_s


@cache
def _file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target under a temporary name, flush to disk, rename: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())     # mkstemp's 0600 would hide the dataset from other users
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make the renames in `folder` durable before the originals they replace are deleted."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_temp_files(raw: Path, incoming: Path) -> None:
    """Half-written files and demo folders of a run that was killed (we hold the project lock: none is live)."""
    found = [*raw.parent.glob(f"{TEMP_PREFIX}demo-*"), *raw.rglob(f"{TEMP_PREFIX}*"), *incoming.glob(f"{TEMP_PREFIX}*")]
    for leftover in found:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _read_csv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


# ---- source.json and the demo set ------------------------------------------------------------------------

def _read_source(raw: Path) -> dict:
    path = raw / SOURCE_FILE
    source = json.loads(path.read_text()) if path.is_file() else {}
    return {"demo": None, "demo_files": [], "batches": [], **source}


def _write_source(raw: Path, source: dict) -> None:
    _write_atomic(raw / SOURCE_FILE, (json.dumps(source, indent=1, sort_keys=True) + "\n").encode())


def synth_fingerprint(cfg: SynthConfig) -> str:
    return hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _content(raw: Path) -> set[str]:
    """'path digest' of every image and of labels.csv: what decides whether the dataset is only a demo set."""
    files = [*_images(raw / "images"), *([raw / "labels.csv"] if (raw / "labels.csv").is_file() else [])]
    return {f"{p.relative_to(raw).as_posix()} {_digest(p.read_bytes())}" for p in files}


def _is_empty(raw: Path) -> bool:
    labels = raw / "labels.csv"
    has_rows = labels.is_file() and labels.stat().st_size > 0 and len(_read_csv(labels.read_bytes())) > 0
    return not _images(raw / "images") and not has_rows


def _demo_may_be_replaced(raw: Path, fingerprint: str) -> bool:
    """Empty, or exactly a demo set made by other synth params: every image and labels.csv byte for byte.

    Decided on content, not on the batch list alone: a batch record lost to a crash, or a
    source.json from before the demo's file list was kept, must not open delivered data to the
    generator. A demo set without that list is left alone (delete data/raw to regenerate it).
    """
    if _is_empty(raw):
        return True
    source = _read_source(raw)
    if source["demo"] == fingerprint or source["batches"] or not source["demo_files"]:
        return False
    return _content(raw) <= set(source["demo_files"])


def _replace_demo(raw: Path, synth: SynthConfig, fingerprint: str, progress: bool) -> None:
    """Build the new demo set aside, then move it in. Until it is complete, source.json lists the old and the
    new demo files, so a run killed half-way leaves a dataset the next run regenerates."""
    from oanet.synth.stage import run as synth_run

    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}demo-", dir=raw.parent) as tmp:
        new = Path(tmp)
        synth_run(synth, new, progress=progress)
        new_files = _content(new)
        old_files = set(_read_source(raw)["demo_files"])
        _write_source(raw, {"demo": "replacing", "demo_files": sorted(old_files | new_files), "batches": []})
        for name in ("images", "labels.csv", "truth.csv", "layout.yaml"):
            target = raw / name
            if target.is_dir():
                shutil.rmtree(target)
            target.unlink(missing_ok=True)
            if (new / name).exists():
                shutil.move(str(new / name), str(target))
    _write_source(raw, {"demo": fingerprint, "demo_files": sorted(new_files), "batches": []})


def _seed_demo(raw: Path, synth: SynthConfig, progress: bool) -> str:
    """(Re)generate the demo set when the raw dataset is empty or is exactly an older demo set."""
    fingerprint = synth_fingerprint(synth)
    if not _demo_may_be_replaced(raw, fingerprint):
        return ""
    _replace_demo(raw, synth, fingerprint, progress)
    return "demo"


# ---- what incoming holds ---------------------------------------------------------------------------------

@dataclass
class Incoming:
    images: dict[str, Path] = field(default_factory=dict)         # settled, regular, within the limit
    labels: dict[Path, pd.DataFrame] = field(default_factory=dict)  # settled label files and their rows
    waiting: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"new": 0, "renamed": 0, "duplicate": 0})
    taken: list[str] = field(default_factory=list)                # images/<name> of the rows taken in, as labelled


def _entries(folder: Path, keep) -> list[tuple[Path, os.stat_result]]:
    """(path, lstat) of the folder's visible entries whose name passes `keep`; hidden names are producers'
    temporary files."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    return [(Path(e.path), e.stat(follow_symlinks=False)) for e in sorted(os.scandir(folder), key=lambda e: e.name)
            if not e.name.startswith(".") and keep(e.name)]


def _scan(incoming: Path, cfg: DataConfig) -> Incoming:
    found = Incoming()
    if (incoming / "images").is_symlink():
        found.rejected.append("images/: a symbolic link (point data.incoming at the real folder)")
    for path, st in _entries(incoming / "images", lambda n: Path(n).suffix.lower() in IMAGE_SUFFIXES):
        if (why := _refusal(st, int(cfg.max_image_mb * MB), "data.max_image_mb")) is not None:
            found.rejected.append(f"images/{path.name}: {why}")
        elif not _settled(st, cfg.settle_s):
            found.waiting.append(f"{path.name} (still arriving)")
        else:
            found.images[path.name] = path
    for path, st in _entries(incoming, lambda n: n.startswith("labels") and n.endswith(".csv")):
        try:
            if (why := _refusal(st, int(cfg.max_labels_mb * MB), "data.max_labels_mb")) is not None:
                raise Refused(why)
            if not _settled(st, cfg.settle_s):
                found.waiting.append(f"{path.name} (still arriving)")
                continue
            found.labels[path] = _label_rows(path, cfg)
        except Refused as why:
            found.rejected.append(f"{path.name}: {why}")
    return found


def _label_rows(path: Path, cfg: DataConfig) -> pd.DataFrame:
    try:
        rows = _read_csv(_read_regular(path, int(cfg.max_labels_mb * MB), "data.max_labels_mb"))
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise Refused(f"not a readable UTF-8 CSV ({str(err).splitlines()[0][:80]})") from None
    missing = {"image", "label"} - set(rows.columns)
    if missing:
        raise Refused(f"missing column(s) {sorted(missing)}; found {list(rows.columns)}")
    return rows


def _base(cell: str) -> str:
    return Path(cell).name    # labels name images relative to the delivery folder: images/X.png or X.png


def _check_layout(incoming: Path, raw: Path, cfg: DataConfig) -> None:
    new, old = incoming / "layout.yaml", raw / "layout.yaml"
    if not new.exists() and not new.is_symlink():
        return
    try:
        text = _read_regular(new, int(cfg.max_labels_mb * MB), "data.max_labels_mb")
    except Refused as why:
        raise IntakeError(f"{new}: refused, {why}") from None
    if old.is_file() and text != old.read_bytes():
        raise IntakeError(f"{new} differs from {old}: images with another panel layout are another dataset; "
                          "ingest them with their own layout (oanet ingest --data ... --layout ...)")
    if not old.is_file():
        raw.mkdir(parents=True, exist_ok=True)
        _write_atomic(old, text)


# ---- the move ---------------------------------------------------------------------------------------------

def _target_name(name: str, data: bytes, raw_images: Path) -> tuple[str, str]:
    """(name in the raw dataset, 'new' | 'renamed' | 'duplicate'); a renamed twin of the same bytes is a duplicate."""
    digest = _digest(data)
    stem, suffix = Path(name).stem, Path(name).suffix
    for candidate, kind in ((name, "new"), (f"{stem}_{digest[:8]}{suffix}", "renamed")):
        target = raw_images / candidate
        if not target.exists():
            return candidate, kind
        if _digest(target.read_bytes()) == digest:
            return candidate, "duplicate"
    raise IntakeError(f"{raw_images}: both {name} and its renamed twin exist with other bytes")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _escape_formulas(rows: pd.DataFrame) -> pd.DataFrame:
    """Cells a spreadsheet would run as a formula get a leading ' (oanet.csvsafe), in every column but `image`
    (always images/NAME). Numbers are left as delivered: a label " 1" or a truth value -0.25 is no formula."""
    def safe(cell: str) -> str:
        return cell if _is_number(cell) else escape_formula(cell)

    return rows.assign(**{c: rows[c].map(safe) for c in rows.columns if c != "image"})


def _append_rows(csv_path: Path, rows: pd.DataFrame, columns: list[str]) -> None:
    """Append rows whose image is not there yet; atomic replace so a crash leaves the old file."""
    old = _read_csv(csv_path.read_bytes()) if csv_path.is_file() else pd.DataFrame(columns=columns)
    rows = rows[~rows["image"].isin(set(old["image"]))]
    merged = pd.concat([old, rows.reindex(columns=old.columns if len(old.columns) else columns, fill_value="")],
                       ignore_index=True)
    _write_atomic(csv_path, _csv_bytes(merged))


def _copy_images(found: Incoming, names: list[str], raw_images: Path, cfg: DataConfig) -> tuple[dict, dict]:
    """Copy the named incoming images in: ({incoming name: raw name}, counts by kind)."""
    raw_images.mkdir(parents=True, exist_ok=True)
    targets, counts = {}, {"new": 0, "renamed": 0, "duplicate": 0}
    for name in names:
        try:
            data = _read_regular(found.images[name], int(cfg.max_image_mb * MB), "data.max_image_mb")
        except Refused as why:         # swapped for something else since the scan
            found.rejected.append(f"images/{name}: {why}")
            continue
        target, kind = _target_name(name, data, raw_images)
        if kind != "duplicate":
            _write_atomic(raw_images / target, data)
        targets[name], counts[kind] = target, counts[kind] + 1
    return targets, counts


def _taken_rows(found: Incoming, targets: dict[str, str], batch: str) -> pd.DataFrame:
    frames = [rows[rows["image"].map(_base).isin(targets)] for rows in found.labels.values()]
    rows = pd.concat(frames, ignore_index=True).fillna("") if frames else pd.DataFrame(columns=LABEL_COLUMNS)
    rows = rows.assign(image=rows["image"].map(lambda cell: f"images/{targets[_base(cell)]}"))
    if "lot" not in rows.columns or (rows["lot"] == "").all():
        rows = rows.assign(lot=batch)    # lots keep units of one night together in the grouped split
    return _escape_formulas(rows)


def _append_truth(incoming: Path, raw: Path, targets: dict[str, str], cfg: DataConfig) -> None:
    """Synthetic deliveries carry truth.csv (the printed values); it follows the images into a synthetic set."""
    truth = incoming / "truth.csv"
    if not (truth.is_file() and (raw / "truth.csv").is_file()):
        return
    try:
        rows = _read_csv(_read_regular(truth, int(cfg.max_labels_mb * MB), "data.max_labels_mb"))
    except Refused:
        return
    if "image" not in rows.columns:
        return
    rows = rows[rows["image"].map(_base).isin(targets)]
    rows = rows.assign(image=rows["image"].map(lambda cell: f"images/{targets[_base(cell)]}"))
    _append_rows(raw / "truth.csv", _escape_formulas(rows), [])


def _remove_taken_rows(path: Path, taken: set[str], cfg: DataConfig) -> None:
    """Drop the taken images' rows from an incoming CSV, re-read now so rows added since the scan stay."""
    try:
        rows = _read_csv(_read_regular(path, int(cfg.max_labels_mb * MB), "data.max_labels_mb"))
    except (FileNotFoundError, Refused):
        return
    if "image" not in rows.columns:
        return
    left = rows[~rows["image"].map(_base).isin(taken)]
    if left.empty:
        path.unlink()
    elif len(left) < len(rows):
        _write_atomic(path, _csv_bytes(left))


def _leftovers(found: Incoming, labelled: set[str], raw_images: Path, cfg: DataConfig) -> list[str]:
    """Unlabelled incoming images whose bytes are already in raw under that name: a killed intake took them and
    their rows but had not deleted them yet."""
    left = []
    for name in sorted(set(found.images) - labelled):
        if (raw_images / name).is_file():
            try:
                data = _read_regular(found.images[name], int(cfg.max_image_mb * MB), "data.max_image_mb")
            except Refused:
                continue
            if _target_name(name, data, raw_images)[1] == "duplicate":
                left.append(name)
    return left


def merge_incoming(incoming: Path, raw: Path, batch: str, cfg: DataConfig = DataConfig()) -> Incoming:
    """Take settled, labelled images and their rows into `raw`; record the batch; then clear them from incoming."""
    found = _scan(incoming, cfg)
    labelled = {_base(cell) for rows in found.labels.values() for cell in rows["image"]}
    take = [name for name in found.images if name in labelled]
    leftovers = _leftovers(found, labelled, raw / "images", cfg)
    found.waiting += [f"{name} (no label row yet)" for name in found.images
                      if name not in labelled and name not in leftovers]
    found.counts["duplicate"] = len(leftovers)
    if not take and not leftovers:
        return found
    _check_layout(incoming, raw, cfg)
    targets, counts = _copy_images(found, take, raw / "images", cfg)
    _fsync_dir(raw / "images")
    found.counts = {**counts, "duplicate": counts["duplicate"] + len(leftovers)}
    _append_rows(raw / "labels.csv", _taken_rows(found, targets, batch), LABEL_COLUMNS)
    found.taken = [f"images/{name}" for name in targets.values()]
    _append_truth(incoming, raw, targets, cfg)
    source = _read_source(raw)          # every batch is recorded, also one that only finishes a killed run's
    record = {"batch": batch, "images": counts["new"] + counts["renamed"], "duplicates": found.counts["duplicate"]}
    _write_source(raw, {**source, "batches": [*source["batches"], record]})
    _fsync_dir(raw)                     # what is in raw is on disk before incoming lets go of it
    _clear_taken(incoming, found, [*targets, *leftovers], cfg)
    return found


def _clear_taken(incoming: Path, found: Incoming, taken: list[str], cfg: DataConfig) -> None:
    """Rows first, then images: a kill in between leaves images without rows, which the next run finds in raw
    byte for byte (`_leftovers`) and removes; the other order would leave rows waiting for images forever."""
    for path in [*found.labels, incoming / "truth.csv"]:
        _remove_taken_rows(path, set(taken), cfg)
    for name in taken:
        found.images[name].unlink(missing_ok=True)
    if not _images(incoming / "images"):
        (incoming / "layout.yaml").unlink(missing_ok=True)     # equal to raw's (checked above); nothing needs it


def run(cfg: DataConfig, synth: SynthConfig, paths: PathsConfig, *, progress: bool = True) -> IntakeResult:
    """The `data` stage: `paths.incoming` into `paths.raw`. Callers hold the project lock (oanet.runlock):
    intake assumes it is the only writer."""
    if min(cfg.max_image_mb, cfg.max_labels_mb) <= 0 or cfg.settle_s < 0:
        raise IntakeError("data.max_image_mb and data.max_labels_mb must be > 0, data.settle_s >= 0")
    raw, incoming = Path(paths.raw), Path(paths.incoming)
    _remove_temp_files(raw, incoming)
    seeded = _seed_demo(raw, synth, progress) if cfg.seed_demo else ""
    batch = "night-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    found = merge_incoming(incoming, raw, batch, cfg)
    if not _images(raw / "images"):
        raise IntakeError(f"no images in {raw}/images and none taken from {incoming}/images"
                          + (f" ({len(found.waiting)} waiting, {len(found.rejected)} refused)"
                             if found.waiting or found.rejected else "")
                          + " (set data.seed_demo: true for the synthetic demo set)")
    counts = found.counts
    return IntakeResult(raw=raw, moved=counts["new"] + counts["renamed"], renamed=counts["renamed"],
                        duplicates=counts["duplicate"], raw_images=len(_images(raw / "images")), seeded=seeded,
                        waiting=tuple(found.waiting), rejected=tuple(found.rejected), taken=tuple(found.taken))


def dataset_version(raw: str | Path) -> str:
    """Content hash of the raw dataset (every file's path and bytes): the data version models are tagged with."""
    raw = Path(raw)
    digest = hashlib.sha256()
    for path in sorted(p for p in raw.rglob("*") if p.is_file() and p.name != SOURCE_FILE
                       and not p.name.startswith(TEMP_PREFIX)):
        digest.update(path.relative_to(raw).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
