"""What the recogniser reads for each field of one decoded image.

Fast path: a field with a line box is cut to its value and unit (see crops.py) and
recognised in a batch with every other crop. General path: fields without a box are
found by CnOCR's text detector on the panel, matched by their printed key, and then
read like boxed fields, through the value crop of the line found (locate_and_read).
"""
from __future__ import annotations

import re

import numpy as np

from oanet.ingest.crops import ink_mask, one_glyph, pad_to_width, value_span
from oanet.ingest.engine import Ocr, Read
from oanet.ingest.parse import SEPARATOR, key_and_separator, key_inside, line_start, parse_read, parse_stored
from oanet.layout import Field, Layout

MIN_CROP_WIDTH = 32
DETECTED_PAD = 3         # px around a detected line before it is cut like a line box
CROP_RULES_VERSION = 14  # bump when crop rules change: it is part of the cache key

Reads = list  # one [text, score] or None per layout field, in layout order


def line_crop(image: np.ndarray, field: Field, pad: int) -> np.ndarray:
    x0, y0, x1, y1 = field.roi
    h, w = image.shape
    return image[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)]


def unit_is_droppable(field: Field) -> bool:
    """A float printed with fixed decimals, its unit after it: cut short, the value no longer
    parses, so a cut is safe (a unit printed before the value is read; see parse.py)."""
    unit_last = not field.format or field.format.find("{unit}") > field.format.find("{value}")
    return bool(field.unit) and field.dtype == "float" and field.decimals is not None and unit_last


def value_crop(image: np.ndarray, field: Field, pad: int) -> np.ndarray | None:
    """The crop to recognise for a boxed field: value and unit; the whole line where no key gap
    shows, or where the value is one character (crops.one_glyph).

    None when the box holds no text at all.
    """
    line = line_crop(image, field, pad)
    mask = ink_mask(line)
    if mask is None:
        return None
    span = value_span(mask, drop_unit=unit_is_droppable(field))
    crop = line if span is None or one_glyph(mask, span) else line[:, span[0]:span[1]]
    return pad_to_width(np.ascontiguousarray(crop), MIN_CROP_WIDTH)


def boxed_crops(image: np.ndarray, layout: Layout, pad: int) -> list[np.ndarray | None]:
    return [value_crop(image, f, pad) if f.roi is not None else None for f in layout.fields]


def panel_only(image: np.ndarray, layout: Layout) -> np.ndarray:
    """The image with its object box filled by the panel's background, so detection sees only text."""
    x0, y0, x1, y1 = layout.object_roi
    outside = np.ones(image.shape[:2], dtype=bool)
    outside[y0:y1, x0:x1] = False
    out = image.copy()
    out[y0:y1, x0:x1] = np.median(image[outside], axis=0) if outside.any() else 0
    return out


def _same_row(a: Read, b: Read) -> bool:
    """Boxes overlapping vertically by at least half the shorter one's height."""
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    return overlap >= 0.5 * min(a.box[3] - a.box[1], b.box[3] - b.box[1])


def key_only(text: str) -> bool:
    """A detected piece that can only be a key: no digit, and no separator but one at its end (`Pressure`,
    `Gray mean:`). On a panel set as a table, the value sits in the next column, far to its right."""
    return not any(ch.isdigit() for ch in text) and not re.search(SEPARATOR, re.sub(rf"\s*{SEPARATOR}\s*$", "", text))


def holds_a_field(text: str) -> bool:
    """`TEMP -> 1124.7`, `Shift: DAY`: a key, a separator and a value (a time's `12:30` is none)."""
    return re.search(rf"[^\d\s]\s*{SEPARATOR}\s*\S", text) is not None


def merge_fragments(reads: list[Read], max_gap: float = 1.5) -> list[Read]:
    """Whole printed lines from detected pieces: the detector may cut `GrayAvg = 85.7` at its
    wide gaps. Pieces on one row closer than `max_gap` line heights join, left to right;
    a panel's columns sit much further apart. A piece that can only be a key (key_only) joins
    the next piece on its row however far, once, unless that piece holds a field of its own or
    the key has its value below it: `Pressure ........ 45.40 MPa`, a table's two columns.
    Then a key alone on its line takes the value printed right below it (stack_values)."""
    pieces = sorted((r for r in reads if r.box is not None), key=lambda r: (r.box[1], r.box[0]))
    rows: list[list[Read]] = []
    for r in pieces:
        row = next((row for row in rows if _same_row(row[-1], r)), None)
        (row.append(r) if row is not None else rows.append([r]))
    lines = []
    for row in rows:
        row.sort(key=lambda r: r.box[0])
        cur, spent = row[0], False          # spent: the line has joined its one far value already
        for r in row[1:]:
            height = max(cur.box[3] - cur.box[1], r.box[3] - r.box[1])
            near = r.box[0] - cur.box[2] <= max_gap * height
            far = (not spent and key_only(cur.text) and not holds_a_field(r.text)
                   and value_below(cur, pieces) is None)
            if near or far:
                box = (min(cur.box[0], r.box[0]), min(cur.box[1], r.box[1]), max(cur.box[2], r.box[2]),
                       max(cur.box[3], r.box[3]))
                cur, spent = Read(f"{cur.text} {r.text}", min(cur.score, r.score), box), spent or not near
            else:
                lines.append(cur)
                cur, spent = r, False
        lines.append(cur)
    return stack_values(lines)


def bare_value(text: str) -> bool:
    """`1072.2 C`, `-3.5`, `2541`, `L2142-00`: a value printed alone, no key before it (a number first, or
    one word with a digit)."""
    starts_with_number = re.match(r"\s*[+\-−]?\.?\d", text) is not None
    one_word = len(text.split()) == 1 and any(ch.isdigit() for ch in text)
    return (starts_with_number or one_word) and not holds_a_field(text)


def value_below(key: Read, lines: list[Read], max_gap: float = 1.5) -> Read | None:
    """The bare value printed right below `key` (a tile: `Temp` over `1072.2 C`): the nearest line that
    starts under it, within `max_gap` line heights, and overlaps it left to right."""
    x0, _, x1, y1 = key.box
    under = [r for r in lines if r is not key and bare_value(r.text) and r.box[0] < x1 and r.box[2] > x0
             and y1 - 0.3 * (key.box[3] - key.box[1]) <= r.box[1]
             <= y1 + max_gap * max(key.box[3] - key.box[1], r.box[3] - r.box[1])]
    return min(under, key=lambda r: r.box[1], default=None)


def stack_values(lines: list[Read]) -> list[Read]:
    """A key alone on its line joined with the bare value right below it into one line `key value`,
    boxed at the value: a value crop of that box reads the value, as a line box would."""
    taken: set[int] = set()
    out = []
    for line in lines:
        below = value_below(line, lines) if key_only(line.text) else None
        if below is not None and id(below) not in taken:
            taken.add(id(below))
            out.append(Read(f"{line.text} {below.text}", min(line.score, below.score), below.box))
        else:
            out.append(line)
    return [r for r in out if id(r) not in taken]


def split_at_keys(line: Read, fields: tuple[Field, ...]) -> list[Read]:
    """A detected line that prints several fields (`X: -4.59  Y: 3.25`, a panel's columns set close)
    cut where another field's key starts (parse.key_inside: after a space, followed by a separator or by a
    word with a digit). The longest key wins where keys overlap (`Temp Max: 3` is not cut at a key `Max`).

    The detector gives one box per line, so each piece's box is estimated from its share of the
    characters, grown by one character's width on each side: a piece that takes in a letter of its
    neighbour does not parse and falls back to the piece's own text (locate_and_read), while a piece
    cut one character short could lose a value's last digit."""
    text = line.text
    found = [m for f in fields for m in (line_start(f).match(text), *key_inside(f).finditer(text)) if m]
    hits = sorted((m.start(), -len(m.group()), m.end()) for m in found)
    starts, end = [], 0
    for start, _, stop in hits:
        if start >= end:
            starts.append(start)
            end = stop
    starts = [i for i in starts if text[:i].strip()]
    return cut_line(line, starts, margin_chars=1) if starts and line.box is not None else [line]


def cut_line(line: Read, starts: list[int], margin_chars: float = 0) -> list[Read]:
    """`line` cut at the character offsets `starts`. The detector gives one box per line, so each piece is
    boxed by its share of the characters (estimated_box), grown by `margin_chars` characters on each side
    within the line's box."""
    text, (x0, y0, x1, y1) = line.text, line.box
    char = (x1 - x0) / max(1, len(text))
    return [Read(text[a:b].strip(), line.score, (max(x0, round(x0 + (a - margin_chars) * char)), y0,
                                                 min(x1, round(x0 + (b + margin_chars) * char)), y1),
                 estimated_box=True)
            for a, b in zip([0, *starts], [*starts, len(text)], strict=True)]


def match_lines(layout: Layout, reads: list[Read]) -> dict[str, Read]:
    """Detected lines matched to the unboxed fields by the key they start with (any case,
    spaces optional, then anything but a letter); the longest key claims a line first, so
    `Temp` never takes `TempMax: 3`. Each line serves one field; a line printing several
    fields is cut at their keys first (split_at_keys). Where several lines start with a
    field's key, the best candidate (candidate_rank) wins, not the topmost: a header
    `AOI-3000  LINE 8  STATION 6` must not stand for the field printed `Station: 2` below it."""
    unboxed = sorted((f for f in layout.fields if f.roi is None), key=lambda f: -len(f.key))
    lines = [piece for line in merge_fragments(reads) for piece in split_at_keys(line, layout.fields)]
    found: dict[str, Read] = {}
    taken: set[int] = set()
    for f in unboxed:
        start = line_start(f)
        candidates = [i for i, line in enumerate(lines) if i not in taken and start.match(line.text)]
        if candidates:
            best = max(candidates, key=lambda i: (*candidate_rank(f, lines[i]), -i))
            found[f.name] = lines[best]
            taken.add(best)
    return found


def candidate_rank(field: Field, line: Read) -> tuple[bool, bool, bool]:
    """How well a line starting with the field's key stands for it, best first: its value parses, a
    separator follows the key (a title names things without one), it is a whole detected line."""
    separated = key_and_separator(field).match(line.text) is not None
    return parse_read(field, line.text, 1.0, 0.0).reason is None, separated, not line.estimated_box


def find_by_key(layout: Layout, reads) -> dict[str, list]:
    """{field name: [text, score]} of the unboxed fields found among detected reads."""
    return {name: _pair(r) for name, r in match_lines(layout, reads).items()}


def _pair(read) -> list:
    return [read.text, read.score]


def reread_lines(ocr: Ocr, images, layouts: list[Layout], reads: list[Reads], pad: int, batch_size: int,
                 wanted) -> list[tuple[tuple[int, int], Read]]:
    """((image, field), whole-line read) for every boxed field whose stored read `wanted(field, read)` picks,
    recognised in one batch. `layouts`: one per image (its boxes)."""
    todo = [(i, j) for i, (r, lay) in enumerate(zip(reads, layouts, strict=True)) for j, f in enumerate(lay.fields)
            if f.roi is not None and r[j] is not None and wanted(f, r[j])]
    lines = [np.ascontiguousarray(line_crop(images[i], layouts[i].fields[j], pad)) for i, j in todo]
    return list(zip(todo, ocr.recognize(lines, batch_size=batch_size), strict=True))


def retry_whole_lines(ocr: Ocr, images, layouts: list[Layout], reads: list[Reads], pad: int,
                      batch_size: int) -> None:
    """Re-read the whole line of any boxed field whose value crop did not parse.

    Noise can hide the gap after the key, so the cut lands after the value and the
    crop holds only the unit. Rare, so a second small batch is cheap; the whole-line
    read replaces the first only when it parses.
    It gets no check (confirm_doubtful): the other read, of the crop, is the one that did not parse.
    """
    def unparsed(f: Field, read: list) -> bool:
        return parse_read(f, *read, 0.0).reason is not None

    for (i, j), read in reread_lines(ocr, images, layouts, reads, pad, batch_size, unparsed):
        if parse_read(layouts[i].fields[j], read.text, read.score, 0.0).reason is None:
            reads[i][j] = _pair(read)


def confirm_doubtful(ocr: Ocr, images, layouts: list[Layout], reads: list[Reads], pad: int, batch_size: int,
                     verify_below: float) -> None:
    """Give every value-crop read that parses with a score under `verify_below` a check: the recogniser's
    read of the whole line, stored as the read's third item (parse_read compares the two values).

    A doubtful read is where a dropped digit or sign hides (e.g. -13.63 read -1.63 at 0.85): it still fits
    the field's format, so no parse rule can catch it, but a second read of other pixels rarely repeats
    the slip. Clean panels read above 0.99, so the second batch stays small where the print is good.
    """
    def doubtful(f: Field, read: list) -> bool:
        return len(read) == 2 and read[1] < verify_below and parse_read(f, *read, 0.0).reason is None

    for (i, j), read in reread_lines(ocr, images, layouts, reads, pad, batch_size, doubtful):
        reads[i][j] = [*reads[i][j], read.text]


def located(layout: Layout, found: dict[str, Read], pad: int) -> Layout:
    """The layout with each unboxed field found by the detector boxed at its detected line
    (grown by `pad` px), so it is read like a boxed one: the same value crop and rules."""
    import dataclasses

    def box(f: Field):
        if f.roi is not None or f.name not in found:
            return f.roi
        x0, y0, x1, y1 = found[f.name].box
        return max(0, x0 - pad), max(0, y0 - pad), x1 + pad, y1 + pad

    return dataclasses.replace(layout, fields=tuple(dataclasses.replace(f, roi=box(f)) for f in layout.fields))


def read_images(ocr: Ocr, images: list[np.ndarray], layout: Layout, pad: int, batch_size: int,
                verify_below: float) -> list[Reads]:
    """Reads for each image, in layout order (see locate_and_read)."""
    return locate_and_read(ocr, images, layout, pad, batch_size, verify_below)[0]


def locate_and_read(ocr: Ocr, images: list[np.ndarray], layout: Layout, pad: int,
                    batch_size: int, verify_below: float) -> tuple[list[Reads], list[Layout]]:
    """Reads for each image, and each image's layout with the boxes it was read in.

    Every field with a box (its own, or the line the detector found by its key) is cut to
    its value and recognised in one batch; a detected line whose value crop does not
    parse keeps the detector's own read of it. A doubtful read gets a second, whole-line
    read as its check (confirm_doubtful)."""
    found = [match_lines(layout, ocr.detect_and_recognize(panel_only(img, layout)))
             if any(f.roi is None for f in layout.fields) else {} for img in images]
    layouts = [located(layout, f, DETECTED_PAD) for f in found]
    per_image = [boxed_crops(img, lay, pad) for img, lay in zip(images, layouts, strict=True)]
    flat = [c for crops in per_image for c in crops if c is not None]
    texts = iter(ocr.recognize(flat, batch_size=batch_size))
    out: list[Reads] = [[None if c is None else _pair(next(texts)) for c in crops] for crops in per_image]
    retry_whole_lines(ocr, images, layouts, out, pad, batch_size)
    confirm_doubtful(ocr, images, layouts, out, pad, batch_size, verify_below)
    for reads, by_key in zip(out, found, strict=True):
        for j, f in enumerate(layout.fields):
            line = by_key.get(f.name)
            if line is not None and (reads[j] is None or parse_stored(f, reads[j], 0.0).reason is not None):
                crop = reads[j][0] if reads[j] else ""     # where the crop parsed to another value, it voids a doubtful line
                reads[j] = _pair(line) + ([crop] if line.score < verify_below else [])
    return out, layouts
