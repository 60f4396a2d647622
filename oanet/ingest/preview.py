"""`oanet layout preview`: what ingest reads in each field of a few images, on one sheet.

A layout is right when each line box holds its whole printed line and nothing else, and
each unboxed key is found on the panel. The contact sheet shows, per image and field,
the crop, the raw read, the parsed value and the reason code, so a box that cuts text or
sits off its line shows at a glance; the summary counts the same per field.

The reads are ingest's own: the same engine settings, crops, retry and parser
(`locate_and_read`, `parse_read`), with no cache, so nothing stale is shown.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from oanet.config import IngestConfig
from oanet.ingest import inventory as inv
from oanet.ingest.engine import Ocr
from oanet.ingest.parse import REASONS, line_start, parse_stored
from oanet.ingest.reading import line_crop, locate_and_read
from oanet.layout import Field, Layout

BOXED, BY_KEY = "box", "by key"
UNREADABLE = "unreadable"          # a file that could not even be opened (permissions, a folder)
FOUND_LINE_PAD = 4                 # px around a detected line: the detector's box hugs the ink

CELL_W, CELL_H = 260, 110
ROW_HEADER_W = 170
MAX_COLUMNS = 16                   # more fields wrap into further bands: the sheet stays viewable
FONT_SIZE, LINE_H = 12, 15
MARGIN = 4
TITLE_LINE_H = 18
COLUMN_HEADER_H = 3 * LINE_H + 2 * MARGIN
CROP_H = CELL_H - 3 * LINE_H - 3 * MARGIN   # the cell's top part; three text lines below it

WHITE, INK, GRAY, GRID = (255, 255, 255), (20, 20, 20), (120, 120, 120), (200, 200, 200)
OK_GREEN, REASON_RED, EMPTY_FILL, CROP_FRAME = (0, 130, 0), (200, 0, 0), (235, 235, 235), (70, 110, 200)


@dataclass(frozen=True)
class Cell:
    """One field of one image as ingest sees it."""
    image: str
    field: str
    source: str                    # BOXED or BY_KEY
    text: str | None               # the raw read; None: nothing read (empty box, key not found)
    score: float | None
    value: float | str | None      # the parsed value; None when reason is set
    reason: str | None             # None: parsed; else one of parse.REASONS
    crop: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    other_line: str | None = None  # a boxed field's box holds this other field's line (holds_other_line)


@dataclass(frozen=True)
class FieldSummary:
    field: str
    source: str
    parsed: int
    total: int
    reasons: dict[str, int]        # reason code -> images
    failing_read: str | None       # the raw read of one image that did not parse, as an example
    other_lines: dict[str, int] = dataclasses.field(default_factory=dict)   # other field -> images its line was in the box


@dataclass(frozen=True)
class Geometry:
    """Where everything sits on the sheet: a title, then bands of up to MAX_COLUMNS fields,
    each band a column header row and one row per image, every row led by its image name."""
    rows: int
    columns: int                   # field columns per band
    bands: int
    title_h: int
    cell_w: int = CELL_W
    cell_h: int = CELL_H
    row_header_w: int = ROW_HEADER_W
    column_header_h: int = COLUMN_HEADER_H

    @property
    def header_h(self) -> int:     # above the first band's cells
        return self.title_h + self.column_header_h

    @property
    def band_h(self) -> int:
        return self.column_header_h + self.rows * self.cell_h

    @property
    def width(self) -> int:
        return self.row_header_w + self.columns * self.cell_w

    @property
    def height(self) -> int:
        return self.title_h + self.bands * self.band_h

    def column_header_box(self, index: int) -> tuple[int, int, int, int]:
        band, col = divmod(index, self.columns)
        x0, y0 = self.row_header_w + col * self.cell_w, self.title_h + band * self.band_h
        return x0, y0, x0 + self.cell_w, y0 + self.column_header_h

    def cell_box(self, row: int, index: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of image `row`, field `index` (layout order)."""
        x0, y0, x1, y1 = self.column_header_box(index)
        top = y1 + row * self.cell_h
        return x0, top, x1, top + self.cell_h

    def row_header_box(self, band: int, row: int) -> tuple[int, int, int, int]:
        top = self.title_h + band * self.band_h + self.column_header_h + row * self.cell_h
        return 0, top, self.row_header_w, top + self.cell_h


@dataclass(frozen=True)
class PreviewResult:
    layout: str
    out: Path
    images: list[str]              # the sheet's rows, in order
    skipped: list[inv.Rejected]    # picked, but not decodable as ingest decodes
    geometry: Geometry
    cells: list[Cell]              # row-major: image by image, fields in layout order
    fields: list[FieldSummary]

    @property
    def parsed(self) -> int:
        return sum(c.reason is None for c in self.cells)

    def summary(self) -> str:
        return "\n".join([self.headline(), *summary_table(self.fields), *moved_lines(self.fields),
                          *(f"  skipped {r.image}: {r.reason} ({r.detail})" for r in self.skipped),
                          f"  sheet: {self.out}"])

    def headline(self) -> str:
        share = f" ({self.parsed / len(self.cells):.0%})" if self.cells else ""
        return (f"layout preview {self.layout}: {len(self.images)} images, {len(self.fields)} fields, "
                f"parsed {self.parsed}/{len(self.cells)}{share}")


def summary_table(fields: list[FieldSummary]) -> list[str]:
    width = max([5, *(len(f.field) for f in fields)])
    head = f"  {'field':<{width}}  {'how':<6}  {'parsed':>6}  " + "  ".join(REASONS) + "  failing read"
    rows = [(f"  {f.field:<{width}}  {f.source:<6}  {f'{f.parsed}/{f.total}':>6}  "
             + "  ".join(f"{f.reasons.get(r, 0) or '':>{len(r)}}" for r in REASONS)
             + f"  {_example(f.failing_read) if f.parsed < f.total else ''}").rstrip() for f in fields]
    return [head, *rows]


def moved_lines(fields: list[FieldSummary]) -> list[str]:
    """A warning per boxed field whose box held another field's line: what ingest stores there is that
    line's value, in format and at full confidence."""
    def held(f: FieldSummary) -> str:
        return ", ".join(f"{other} ({n} of {f.total} images)" for other, n in f.other_lines.items())

    return [f"  WARNING {f.field}: its box holds the line of {held(f)}, so ingest would store that field's value "
            "as this one's: the panel's lines move (a field some panels leave out, a tilt). Leave this field's roi "
            "out of the layout: ingest then finds it by key." for f in fields if f.other_lines]


def _example(text: str | None) -> str:
    return "(nothing read)" if text is None else repr(text if len(text) <= 40 else text[:39] + "…")


# --- reading ------------------------------------------------------------------------------

def preview(data_dir: str | Path, layout: Layout, cfg: IngestConfig, n: int = 12,
            out: str | Path = "reports/layout_preview.png", ocr: Ocr | None = None) -> PreviewResult:
    """Read the first `n` images of `data_dir` as ingest would with `cfg`; draw and save the sheet.

    `ocr`: the engine to read with (default: one built as ingest builds its engines).
    """
    data_dir, out = Path(data_dir), Path(out)
    if not data_dir.is_dir():
        raise inv.DataError(f"data folder not found: {data_dir} (an AOI folder holds images, labels.csv, layout.yaml)")
    images, skipped = decode_images(data_dir, pick_images(data_dir, n), layout, cfg)
    cells = read_cells(ocr or build_ocr(cfg, layout), images, layout, cfg)
    geometry = sheet_geometry(len(images), len(layout.fields), bool(skipped))
    result = PreviewResult(layout.name, out, list(images), skipped, geometry, cells, summarise(layout, cells))
    save_sheet(result, layout, cfg)
    return result


def pick_images(data_dir: Path, n: int) -> list[str]:
    """The first n images labels.csv lists that exist (ingest's reconciliation), else the
    first n image files of the folder when it has no labels.csv."""
    files = inv.image_files(data_dir)
    if not (data_dir / "labels.csv").exists():
        return files[:n]
    labels, _ = inv.reconcile(inv.read_labels(data_dir), files)
    return list(labels["image"][:n])


def decode_images(data_dir: Path, names: list[str], layout: Layout,
                  cfg: IngestConfig) -> tuple[dict[str, np.ndarray], list[inv.Rejected]]:
    """name -> (h, w) uint8 for the images ingest would read; the rest as Rejected, in order."""
    images, skipped = {}, []
    for name in names:
        try:
            decoded = inv.decode((data_dir / name).read_bytes(), layout, cfg.blank_panel_std)
        except OSError as err:
            decoded = inv.Rejected(name, UNREADABLE, str(err))
        if isinstance(decoded, inv.Rejected):
            skipped.append(dataclasses.replace(decoded, image=name))
        else:
            images[name] = decoded
    return images, skipped


def build_ocr(cfg: IngestConfig, layout: Layout) -> Ocr:
    """An engine like each of ingest's (stage.build_engines): same model, charset and one thread."""
    from oanet.ingest.head import reading_charset

    return Ocr(cfg.rec_model, threads=1, charset=reading_charset(cfg.charset, layout))


def read_cells(ocr: Ocr, images: dict[str, np.ndarray], layout: Layout, cfg: IngestConfig) -> list[Cell]:
    """What ingest reads (locate_and_read: the same crops, rules and fallbacks); the crop
    shown is each field's whole line box, or the line the detector matched by key, so a
    box that cuts text or a wrong match shows."""
    if not images:
        return []
    reads, layouts = locate_and_read(ocr, list(images.values()), layout, cfg.crop_pad, cfg.batch_size,
                                     cfg.verify_below)
    cells = []
    for (name, image), per_field, located in zip(images.items(), reads, layouts, strict=True):
        for f, pair, lf in zip(layout.fields, per_field, located.fields, strict=True):
            crop = None if lf.roi is None else line_crop(image, lf, cfg.crop_pad if f.roi else FOUND_LINE_PAD)
            cells.append(make_cell(name, f, BOXED if f.roi is not None else BY_KEY, pair, crop, cfg))
    return check_boxed_keys(ocr, cells, layout, cfg)


def check_boxed_keys(ocr: Ocr, cells: list[Cell], layout: Layout, cfg: IngestConfig) -> list[Cell]:
    """Each boxed cell with its whole line read, and marked where that line is another field's.

    Ingest reads a box's value only (the key costs time and is the same on every panel), so a box
    that holds another line, where some panels leave a field out and the lines below move up,
    stores that line's value, in format and at full confidence. Here the key is read too."""
    by_name = {f.name: f for f in layout.fields}
    boxed = [i for i, c in enumerate(cells) if c.source == BOXED and c.crop is not None and c.crop.size]
    lines = ocr.recognize([np.ascontiguousarray(cells[i].crop) for i in boxed], batch_size=cfg.batch_size)
    out = list(cells)
    for i, line in zip(boxed, lines, strict=True):
        out[i] = dataclasses.replace(cells[i], other_line=holds_other_line(layout, by_name[cells[i].field], line.text))
    return out


def holds_other_line(layout: Layout, field: Field, text: str) -> str | None:
    """The name of the field whose line `text` (a whole line's read) is, where it starts with another
    field's key and not with `field`'s; None where it is the field's own, or says nothing either way
    (a misread key). The longest key that matches wins: `Temp12` is not `Temp1`."""
    if line_start(field).match(text):
        return None
    others = [f for f in layout.fields if f.name != field.name and line_start(f).match(text)]
    return max(others, key=lambda f: len(f.key)).name if others else None


def make_cell(image: str, field: Field, source: str, pair: list | None, crop: np.ndarray | None,
              cfg: IngestConfig) -> Cell:
    text, score = pair[:2] if pair else (None, None)
    parsed = parse_stored(field, pair, cfg.min_confidence)
    return Cell(image, field.name, source, text, score, parsed.value, parsed.reason, crop)


def summarise(layout: Layout, cells: list[Cell]) -> list[FieldSummary]:
    out = []
    for f in layout.fields:
        mine = [c for c in cells if c.field == f.name]
        failing = [c for c in mine if c.reason is not None]
        out.append(FieldSummary(f.name, BOXED if f.roi is not None else BY_KEY, len(mine) - len(failing),
                                len(mine), dict(Counter(c.reason for c in failing)),
                                next((c.text for c in failing if c.text), None),
                                dict(Counter(c.other_line for c in mine if c.other_line))))
    return out


# --- drawing ------------------------------------------------------------------------------

def sheet_geometry(rows: int, fields: int, with_skipped: bool) -> Geometry:
    columns = min(fields, MAX_COLUMNS)
    title_lines = 3 if with_skipped else 2
    return Geometry(rows=rows, columns=columns, bands=-(-fields // columns),
                    title_h=title_lines * TITLE_LINE_H + MARGIN)


@lru_cache(maxsize=4)
def font(size: int = FONT_SIZE, bold: bool = False):
    """DejaVu Sans Mono as matplotlib ships it: present wherever the project installs."""
    import matplotlib
    from PIL import ImageFont

    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf" / name), size)


def fit(text: str, width: float, face, keep_end: bool = False) -> str:
    """The text cut with an ellipsis to `width` px; `keep_end` keeps its end (file names)."""
    text = inv.shown(text).replace("\n", " ")
    if face.getlength(text) <= width:
        return text
    while text and face.getlength(text + "…") > width:
        text = text[1:] if keep_end else text[:-1]
    return "…" + text if keep_end else text + "…"


def save_sheet(result: PreviewResult, layout: Layout, cfg: IngestConfig) -> None:
    from PIL import Image, ImageDraw

    g = result.geometry
    sheet = Image.new("RGB", (g.width, g.height), WHITE)
    draw = ImageDraw.Draw(sheet)
    draw_title(draw, result, cfg)
    for index, f in enumerate(layout.fields):
        draw_column_header(draw, g.column_header_box(index), f)
    for band in range(g.bands):
        for row, name in enumerate(result.images):
            draw_row_header(draw, g.row_header_box(band, row), name, result.cells)
    per_row = len(layout.fields)
    for i, cell in enumerate(result.cells):
        draw_cell(sheet, draw, g.cell_box(*divmod(i, per_row)), cell, layout.fields[i % per_row])
    result.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(result.out, format="PNG")


def draw_title(draw, result: PreviewResult, cfg: IngestConfig) -> None:
    width = result.geometry.width - 2 * MARGIN
    lines = [(f"{result.headline()}   [min_confidence {cfg.min_confidence}, crop_pad {cfg.crop_pad}, "
              f"charset {cfg.charset}]", INK, True),
             ("each cell: the crop (box: the line box + pad; by key: the detected line), the raw read, "
              "the parsed value, ok or the reason code", GRAY, False)]
    if result.skipped:
        text = "skipped: " + ", ".join(f"{r.image} ({r.reason})" for r in result.skipped)
        lines.append((text, REASON_RED, False))
    for k, (text, colour, bold) in enumerate(lines):
        face = font(FONT_SIZE + 1, bold)
        draw.text((MARGIN, MARGIN + k * TITLE_LINE_H), fit(text, width, face), fill=colour, font=face)


def draw_column_header(draw, box, f: Field) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=(245, 245, 250), outline=GRID)
    width = x1 - x0 - 2 * MARGIN
    texts = [(f.name, font(FONT_SIZE, True)), (f"key: {f.key}", font()),
             (BOXED if f.roi is not None else BY_KEY, font())]
    for k, (text, face) in enumerate(texts):
        draw.text((x0 + MARGIN, y0 + MARGIN + k * LINE_H), fit(text, width, face), fill=INK, font=face)


def draw_row_header(draw, box, name: str, cells: list[Cell]) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=(245, 245, 250), outline=GRID)
    mine = [c for c in cells if c.image == name]
    parsed = sum(c.reason is None for c in mine)
    width = x1 - x0 - 2 * MARGIN
    draw.text((x0 + MARGIN, y0 + MARGIN), fit(name, width, font(FONT_SIZE, True), keep_end=True),
              fill=INK, font=font(FONT_SIZE, True))
    draw.text((x0 + MARGIN, y0 + MARGIN + LINE_H), f"parsed {parsed}/{len(mine)}",
              fill=OK_GREEN if parsed == len(mine) else REASON_RED, font=font())


def draw_cell(sheet, draw, box, cell: Cell, f: Field) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=GRID)
    draw_crop(sheet, draw, (x0 + MARGIN, y0 + MARGIN, x1 - MARGIN, y0 + MARGIN + CROP_H), cell)
    value = "-" if cell.value is None else (f.format_value(cell.value) if f.dtype in ("float", "int")
                                            else str(cell.value))
    score = "" if cell.score is None else f"  score {cell.score:.2f}"
    verdict = ((f"{cell.reason or 'ok'}{score}; holds {cell.other_line}'s line", REASON_RED) if cell.other_line
               else ((cell.reason or "ok") + score, REASON_RED if cell.reason else OK_GREEN))
    lines = [(f"read: {'-' if cell.text is None else cell.text}", INK), (f"value: {value}", INK), verdict]
    top = y0 + 2 * MARGIN + CROP_H
    for k, (text, colour) in enumerate(lines):
        draw.text((x0 + MARGIN, top + k * LINE_H), fit(text, x1 - x0 - 2 * MARGIN, font()), fill=colour,
                  font=font())


def draw_crop(sheet, draw, area, cell: Cell) -> None:
    """The crop scaled to fit `area` (aspect kept), framed so the box's edges show."""
    from PIL import Image

    x0, y0, x1, y1 = area
    if cell.crop is None or cell.crop.size == 0:
        draw.rectangle(area, fill=EMPTY_FILL)
        note = "not found by key" if cell.source == BY_KEY else "box outside the image"
        draw.text((x0 + MARGIN, y0 + MARGIN), note, fill=REASON_RED, font=font())
        return
    h, w = cell.crop.shape[:2]
    scale = min((x1 - x0 - 2) / w, (y1 - y0 - 2) / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    sheet.paste(Image.fromarray(cell.crop).convert("RGB").resize(size, Image.Resampling.BILINEAR), (x0 + 1, y0 + 1))
    draw.rectangle((x0, y0, x0 + size[0] + 1, y0 + size[1] + 1), outline=CROP_FRAME)
