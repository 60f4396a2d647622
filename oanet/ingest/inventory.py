"""Which images go in: reconcile labels.csv with the files, and check each file.

Every image named by labels.csv or found in the folder ends either as a candidate
for OCR or as a quarantine entry with a reason; nothing is dropped silently.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import posixpath
import re
import warnings
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.errors import OanetError
from oanet.imaging import gray8, upright_size
from oanet.layout import Layout

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MISSING_IMAGE, UNLABELLED, EMPTY_FILE, NOT_AN_IMAGE, TRUNCATED = (
    "missing_image", "unlabelled", "empty_file", "not_an_image", "truncated")
WRONG_SIZE, BLANK_PANEL, DUPLICATE_UNIT, BAD_LABEL = "wrong_size", "blank_panel", "duplicate_unit", "bad_label"
# a labels.csv row judged on its own: no image cell or surplus fields, bytes that are not UTF-8,
# a path that leaves the data folder, the same image labelled both 0 and 1
BAD_ROW, BAD_ENCODING, OUTSIDE_FOLDER, CONFLICTING_LABELS = (
    "bad_row", "bad_encoding", "outside_folder", "conflicting_labels")
# a file (or folder) the system would not give us, or a link to nothing; a file over ingest.max_image_mb
UNREADABLE, TOO_LARGE = "unreadable", "too_large"
QUARANTINE_REASONS = (MISSING_IMAGE, UNLABELLED, BAD_LABEL, BAD_ROW, BAD_ENCODING, OUTSIDE_FOLDER,
                      CONFLICTING_LABELS, UNREADABLE, TOO_LARGE, EMPTY_FILE, NOT_AN_IMAGE, TRUNCATED, WRONG_SIZE,
                      BLANK_PANEL, DUPLICATE_UNIT)
# columns read_labels adds: the row's line in labels.csv, and any fields beyond the header
LINE, SURPLUS = "_line", "_surplus"
# 0 or 1, also as a spreadsheet writes it: "1.0", "0.", "1.00" (whitespace is stripped first)
LABEL_TEXT = re.compile(r"([01])(?:\.0*)?")


class DataError(OanetError, ValueError):
    """A data folder that cannot be ingested at all (no labels.csv, bad columns)."""


@dataclass(frozen=True)
class Rejected:
    image: str
    reason: str
    detail: str = ""


#: The quarantine table's columns (ingest writes it, validate appends its own rejections): a Rejected per row.
QUARANTINE_COLUMNS = [f.name for f in fields(Rejected)]


def shown(text: str) -> str:
    """Text fit to print and to store in parquet: a byte that was not UTF-8 becomes U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def undecodable(text: str) -> bool:
    """True if the text holds a byte that was not UTF-8 (kept as a lone surrogate by read_labels)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_labels(data_dir: Path) -> pd.DataFrame:
    """labels.csv as text: one row per data line, every cell a str, plus LINE and SURPLUS.

    Only the header is judged here; reconcile judges each row on its own, so one bad cell
    cannot change how the others are read (pandas reads a whole column as text for one `maybe`).
    """
    path = data_dir / "labels.csv"
    if not path.exists():
        raise DataError(f"{path} not found: an AOI folder needs labels.csv with columns image,label")
    # utf-8-sig drops an Excel BOM; surrogateescape keeps a stray non-UTF-8 byte in its own
    # cell, where reconcile quarantines that row (BAD_ENCODING) instead of failing the file.
    try:
        text = path.read_bytes().decode("utf-8-sig", "surrogateescape")
    except OSError as err:                   # a folder named labels.csv, no permission, an I/O error
        raise DataError(f"{path} cannot be read: {err.strerror or err}") from None
    # newline="": csv handles CRLF itself; strict: an unclosed quote would swallow the rows after it
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]  # blank lines skipped
    except csv.Error as err:
        raise DataError(f"{path} is not a readable CSV with columns image,label: line {reader.line_num}: {err}"
                        ) from None
    if not rows:
        raise DataError(f"{path} is not a readable CSV with columns image,label: it is empty")
    (_, header), lines = rows[0], rows[1:]
    header = [shown(c.strip()) or f"Unnamed: {i}" for i, c in enumerate(header)]   # pandas' name if blank
    missing = {"image", "label"} - set(header)
    if missing:
        other = next((sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]), None)
        hint = (f": its header looks separated by {other!r} (a spreadsheet export in a locale that writes decimal "
                "commas); save it with commas" if other else "")
        raise DataError(f"{path} lacks the columns {sorted(missing)}; found {header}{hint}")
    if len(set(header)) < len(header):
        raise DataError(f"{path} names a column twice; found {header}")
    width = len(header)
    cells = [row[:width] + [""] * (width - len(row)) for _, row in lines]
    labels = pd.DataFrame(cells, columns=header, dtype=object)
    labels[LINE] = [n for n, _ in lines]
    labels[SURPLUS] = [",".join(c for c in row[width:] if c.strip()) for _, row in lines]
    return labels


def image_files(data_dir: Path) -> list[str]:
    """Every image-like file under the folder that can be taken in, relative, sorted (see `scan`)."""
    return scan(data_dir)[0]


def scan(data_dir: Path) -> tuple[list[str], list[Rejected]]:
    """The image-like files under the folder (relative, sorted), and what was found but cannot be taken in:
    a folder that cannot be listed, a link to nothing, a name that is not UTF-8."""
    files, found = [], []

    def unlisted(err: OSError) -> None:
        name = shown(Path(err.filename).relative_to(data_dir).as_posix()) if err.filename else "."
        found.append(Rejected(name, UNREADABLE, f"folder cannot be listed ({err.strerror}): the images in it, "
                                                "if any, are not counted"))

    for folder, _, names in os.walk(data_dir, onerror=unlisted):
        for entry in names:
            path = Path(folder) / entry
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            name = path.relative_to(data_dir).as_posix()
            if undecodable(name):
                found.append(Rejected(shown(name), BAD_ENCODING, "the file name holds bytes that are not UTF-8: "
                                                                 "rename the file"))
            elif not path.exists():
                found.append(Rejected(name, UNREADABLE, "a link to nothing"))
            elif path.is_file():        # links are followed: the folder's owner placed them (a view of a store)
                files.append(name)
    return sorted(files), sorted(found, key=lambda r: r.image)


def explain_missing(data_dir: Path, rejected: list[Rejected]) -> list[Rejected]:
    """A missing_image whose name is there after all says what it is: a folder, or a file of a type ingest
    does not read (a .gif), rather than "the folder lacks it"."""
    def why(r: Rejected) -> Rejected:
        path = data_dir / r.image
        if r.reason != MISSING_IMAGE or not inside_folder(r.image) or not path.exists():
            return r
        kind = "a folder" if path.is_dir() else f"a {path.suffix or 'suffix-less'} file"
        types = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        return Rejected(r.image, r.reason, f"{r.detail.split(',')[0]}: it is {kind}; ingest reads {types} files")
    return [why(r) for r in rejected]


def set_aside(table: pd.DataFrame, rejected: list[Rejected], unusable: list[Rejected]
              ) -> tuple[pd.DataFrame, list[Rejected]]:
    """`reconcile`'s result, with the files `scan` found but could not take in given their own reason:
    reconcile was told they exist, so each is one entry, labelled or not."""
    names = {r.image for r in unusable}
    kept = [r for r in rejected if not (r.reason == UNLABELLED and r.image in names)]
    return table[~table["image"].isin(names)].reset_index(drop=True), kept + unusable


def inside_folder(name: str) -> bool:
    """A relative path that stays in the data folder: not absolute, not climbing out with `..`."""
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return False
    norm = posixpath.normpath(name)
    return norm != ".." and not norm.startswith("../")


def judge_row(row: dict) -> tuple[str, Rejected | None]:
    """The image a labels.csv row names (its quarantine name), and a Rejected if the row is bad.

    A row with no usable image name is named by its line, so it still appears once.
    """
    line = row[LINE]
    raw = row["image"].strip().replace("\\", "/")          # spreadsheet habits: spaces, Windows paths
    if not raw or undecodable(raw):
        name = f"labels.csv:line {line}"
    else:
        name = posixpath.normpath(raw) if inside_folder(raw) else raw
    if not raw:
        return name, Rejected(name, BAD_ROW, f"line {line} has no image")
    bad = [k for k, v in row.items() if isinstance(v, str) and undecodable(v)]
    if bad:
        cells = ", ".join(f"{k} {row[k].encode('utf-8', 'surrogateescape')!r}" for k in bad)
        return name, Rejected(name, BAD_ENCODING, f"line {line}: bytes that are not UTF-8 in {cells}")
    if not inside_folder(raw):
        return name, Rejected(name, OUTSIDE_FOLDER, f"line {line}: the path leaves the data folder; not opened")
    if row[SURPLUS]:
        return name, Rejected(name, BAD_ROW, f"line {line} has more fields than the header: {row[SURPLUS]!r}")
    if not LABEL_TEXT.fullmatch(row["label"].strip()):
        return name, Rejected(name, BAD_LABEL, f"line {line}: label {row['label']!r} is not 0 or 1")
    return name, None


def settle(name: str, rows: list[tuple[dict, Rejected | None]]) -> dict | Rejected:
    """One verdict for all rows naming one image: its first bad row, a label clash, or the first row."""
    bad = [r for _, r in rows if r is not None]
    if bad:
        return bad[0]
    found = {int(LABEL_TEXT.fullmatch(row["label"].strip()).group(1)) for row, _ in rows}
    if len(found) > 1:
        lines = ", ".join(str(row[LINE]) for row, _ in rows)
        return Rejected(name, CONFLICTING_LABELS, f"lines {lines} label it both 0 and 1")
    return {**rows[0][0], "image": name, "label": found.pop()}


def reconcile(labels: pd.DataFrame, files: list[str]) -> tuple[pd.DataFrame, list[Rejected]]:
    """The label rows (as read_labels returns them) whose image exists and is labelled 0 or 1.

    Every labels.csv name and every file ends once: in the table (label int 0/1) or rejected.
    A row repeated with the same label is kept once and counted in table.attrs["repeated_rows"].
    """
    by_image: dict[str, list[tuple[dict, Rejected | None]]] = {}
    on_disk = same_name_on_disk(files)
    for row in labels.to_dict("records"):
        name, bad = judge_row(row)
        name = on_disk.get(name, name)
        by_image.setdefault(name, []).append((row, bad))
    verdicts = [settle(name, rows) for name, rows in by_image.items()]
    rejected = [v for v in verdicts if isinstance(v, Rejected)]
    kept = [v for v in verdicts if not isinstance(v, Rejected)]
    repeated = sum(len(rows) - 1 for rows, v in zip(by_image.values(), verdicts, strict=True) if not isinstance(v, Rejected))
    present = set(files)
    rejected += [Rejected(r["image"], MISSING_IMAGE, f"line {r[LINE]} names it, the folder lacks it")
                 for r in kept if r["image"] not in present]
    rejected += [Rejected(f, UNLABELLED, "in the folder, not in labels.csv") for f in files if f not in by_image]
    columns = [c for c in labels.columns if c not in (LINE, SURPLUS)]
    table = pd.DataFrame([r for r in kept if r["image"] in present], columns=columns)
    table["label"] = table["label"].astype("int64")
    extra = [c for c in columns if c not in ("image", "label")]
    table[extra] = table[extra].replace("", None)          # an empty cell is missing, as pandas read it
    table.attrs["repeated_rows"] = repeated
    if repeated:
        warnings.warn(f"labels.csv repeats {repeated} row(s) with the same label; each image kept once",
                      stacklevel=2)
    return table, rejected


def same_name_on_disk(files: list[str]) -> dict[str, str]:
    """{a name as labels.csv may write it: the file's own name} for names that Unicode writes two ways:
    `café.png` typed on one system (é one character, NFC) names the file another stored as e and an
    accent (NFD, as macOS does). A form two files share maps to neither."""
    import unicodedata

    forms = Counter(unicodedata.normalize("NFC", f) for f in files)
    out = {}
    for f in files:
        nfc = unicodedata.normalize("NFC", f)
        if forms[nfc] == 1:
            out.update({form: f for form in (nfc, unicodedata.normalize("NFD", f)) if form != f})
    return out


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0].casefold()


def near_names(rejected: list[Rejected]) -> list[tuple[str, str]]:
    """(labels.csv name, file) pairs among the missing and unlabelled images that differ only by extension,
    case or folder: one slip in how labels.csv names the files, not two separate problems."""
    missing = [r.image for r in rejected if r.reason == MISSING_IMAGE]
    files = [r.image for r in rejected if r.reason == UNLABELLED]
    stems = Counter(_stem(f) for f in files)
    unique = {_stem(f): f for f in files if stems[_stem(f)] == 1}      # a stem two files share matches neither
    return [(m, unique[_stem(m)]) for m in missing if _stem(m) in unique]


def quarantine_hints(labels: pd.DataFrame, rejected: list[Rejected], n_images: int) -> list[str]:
    """What the user most likely got wrong where the quarantine shows a pattern, one line each.

    `labels`: labels.csv as read_labels returns it; `n_images`: every image that went in."""
    hints = []
    bad = [v.strip() for v in labels["label"] if not LABEL_TEXT.fullmatch(v.strip())]
    if bad:
        seen = ", ".join(f"{v!r} {n}" for v, n in Counter(bad).most_common(4))
        hints.append(f"{len(bad)} labels.csv rows are labelled other than 0 or 1 ({seen}): "
                     "write 1 for a defective unit and 0 for a good one")
    pairs = near_names(rejected)
    if pairs:
        hints.append(f"{len(pairs)} labels.csv names match a file but for extension, case or folder "
                     f"(e.g. {pairs[0][0]!r} and the file {pairs[0][1]!r}): name the files as they are")
    reasons = Counter(r.reason for r in rejected)
    sizes = Counter(m.group() for r in rejected if r.reason == WRONG_SIZE and (m := re.match(r"\d+x\d+(?=,)", r.detail)))
    if sizes and reasons[WRONG_SIZE] < n_images:
        seen = ", ".join(f"{n} at {size}" for size, n in sizes.most_common(3))
        hints.append(f"{sum(sizes.values())} images are of another size than the layout's ({seen}): a layout "
                     "holds one image size, so a machine that saved at two needs a layout per size; ingest those "
                     "images as a folder of their own, with a layout.yaml drafted from them (oanet layout suggest)")
    for reason, n in reasons.items():
        if n == n_images and reason not in (BAD_LABEL, MISSING_IMAGE, UNLABELLED):
            example = next(r for r in rejected if r.reason == reason)
            hints.append(f"every image was quarantined as {reason}, e.g. {example.image}: {example.detail}")
    return hints


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The first bytes of the formats ingest reads: a file that starts so is an image, damaged if no decoder takes it
IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
               (b"BM", "BMP"))


def decode(data: bytes, layout: Layout, blank_panel_std: float) -> np.ndarray | Rejected:
    """Decode to (h, w) uint8 and check size and panel; a Rejected (image field empty) on failure."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return Rejected("", EMPTY_FILE, "zero bytes")
    needs = f"layout {layout.name} needs {layout.size[0]}x{layout.size[1]}"
    try:
        img = Image.open(io.BytesIO(data))
        size = upright_size(img)
        if size != tuple(layout.size):   # before decoding: a huge image is refused unread
            return Rejected("", WRONG_SIZE, f"{size[0]}x{size[1]}, {needs}")
        img.load()
    except UnidentifiedImageError:
        kind = next((k for magic, k in IMAGE_MAGIC if data.startswith(magic)), None)
        if kind:                   # a damaged header (a bad checksum, bytes flipped in copying): no decoder takes it
            return Rejected("", TRUNCATED, f"cannot decode: a {kind} file whose header is damaged")
        return Rejected("", NOT_AN_IMAGE, "not a readable image: no image format recognised")
    except Image.DecompressionBombError as err:     # a header claiming billions of pixels: never decoded
        return Rejected("", WRONG_SIZE, f"{err}; {needs}")
    except (OSError, SyntaxError, ValueError) as err:
        return Rejected("", TRUNCATED, f"cannot decode: {err}")
    arr = gray8(img)
    if panel_std(arr, layout) < blank_panel_std:
        return Rejected("", BLANK_PANEL, "the parameter panel holds no text")
    return arr


def panel_std(arr: np.ndarray, layout: Layout) -> float:
    """Gray-level spread of everything outside the object box: about 0 for a blank panel."""
    mask = np.ones(arr.shape, dtype=bool)
    x0, y0, x1, y1 = layout.object_roi
    mask[y0:y1, x0:x1] = False
    return float(arr[mask].std()) if mask.any() else 0.0
