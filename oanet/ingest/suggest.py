"""`oanet layout suggest`: a draft layout.yaml from a few images of a machine's panel.

Today a user measures line boxes by hand. Here CnOCR's detector reads a few images
whole; each detected line is split into key, value and unit by the same separator
and unit rules the parser reads with (parse.py), and lines are matched across images
by their key. For each key seen in at least half of the images the draft holds:
- a line box: the union of the line's boxes over the images, padded (more to the right,
  where longer values grow) but never into another line or the object;
- dtype and decimals from the values: all numbers -> int, or float with the decimals
  every value printed, numbers read as machines set for other locales print them
  (`1,232.5`, `1.232,5`, `1'232.50`, `12,5`) by the panel's decimal mark (decimal_mark);
  text -> str with a pattern generalised from the values (`U633262`, `U000042` ->
  `U\\d{6}`); a few repeated words -> category; all-distinct text -> role `id`;
- a range by order of magnitude (numeric_range): wide enough for values the few images
  did not show, tight enough that a dropped or doubled integer digit falls outside it;
- the unit, and a `format` when it prints before the value (the crop rules need it);
- no line box for a field printed on a line with others (printed_fields), nor for one whose
  line moves between the images (moving_lines: a field some panels leave out, a tilt that
  varies), where a fixed box would read another line: ingest finds such fields by key.
The object box is the largest rectangle in a corner of the image that holds no line.
The draft is a starting point: check it with `oanet layout preview`.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oanet.errors import OanetError
from oanet.imaging import gray8
from oanet.ingest.engine import Read
from oanet.ingest.parse import SEPARATOR, letters_back, upper_run
from oanet.layout import TABLE_COLUMNS, Field, Layout

EXPONENT = r"(?:[eE][+-]?\d{1,3})?"
NUMBER = re.compile(rf"[+-]?\d+(?:\.\d+)?{EXPONENT}")
NUMBER_TEXT = re.compile(rf"[+-]?\d{{1,3}}(?:[,.'’]\d{{3}})+(?:[.,]\d+)?|[+-]?\d+(?:[.,]\d+)?{EXPONENT}")   # any locale
THOUSANDS_MARKS = {".": ("", ",", "'"), ",": ("", ".", "'")}     # by decimal mark, tried in turn: none first
SIGNS = r"[$€£¥Ø∅⌀]"     # currency and diameter signs: units printed before the value
UNIT_WORD = re.compile(rf"(?:[A-Za-z%°µμ/℃Ω‰]|{SIGNS}){{1,5}}")
NON_ASCII_LETTERS = r"[^\W\d_]"     # a pattern's class for letters of any script (`张三`): see needs_full_charset
MIN_SHARE = 0.5          # a key must show in this share of the images
MAX_CATEGORIES = 6       # a text field with at most this many repeated words is drafted as a category
FIELD_START = re.compile(r"\s+(?=[A-Za-z][\w()\[\]./%#-]*\s*(?:->|=>|[:=：＝]))")   # a key and a clear separator
# a date and a time of day as machines print them: `2026/01/03 14:46`, `3:48:47 AM`, `30.11.2026 08:15:02`
DATE_TIME = re.compile(r"\d[\d/.:-]*\d(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?(?:\s?[AaPp][Mm])?")
TIME_LIKE = re.compile(r"\d[:/]\d|\d\.\d{1,2}\.\d|\d{4}-\d{2}-\d{2}")   # a clock or calendar value: no unit's id
GROUP_NAME = re.compile(r"(^|_)(lot|batch|charge|los)(_|$)")   # a field named like this holds the lot: role group
GROUP_KEY = re.compile(r"批次|批号|批號|ロット")                    # ... or printed so (Chinese, Japanese)
RIGHT_GROWTH = 0.3       # line boxes grow right by this share of their width: longer values
MAX_SPREAD = 1.6         # a line whose boxes over the images make a box this many times its height moves
MAX_REACH = 0.25         # ... as one whose union reaches this share of another line's height into it


class SuggestError(OanetError, ValueError):
    """Nothing usable to suggest a layout from."""


@dataclass(frozen=True)
class LinePart:
    key: str
    value: str
    unit: str | None
    unit_first: bool
    box: tuple[int, int, int, int]
    separator: str = " "            # as printed, with its spaces
    estimated_box: bool = False     # read from a line printing several fields (printed_fields)


def split_line(text: str, box) -> LinePart | None:
    """`KEY SEP [UNIT] VALUE [UNIT]` -> its parts; None for a line without a key and a value."""
    text = text.strip()
    m = re.match(rf"^(?P<key>.+?)(?P<sep>\s*{SEPARATOR}\s*)(?P<rest>\S.*)$", text)
    bracketed = re.match(r"^(?P<key>[\[(][^\])]+[\])])\s*(?P<rest>\S.*)$", text)   # `[LOT] L2611-0001`
    if m and not re.fullmatch(r"[+-]?\d.*", m["key"]):
        key, rest, sep = m["key"], m["rest"], m["sep"]
    elif bracketed:
        key, rest, sep = bracketed["key"], bracketed["rest"], " "
    else:                                     # whitespace alone: the key ends where a token with a digit starts
        tokens = text.split()
        first = next((i for i, t in enumerate(tokens) if any(ch.isdigit() for ch in t)), None)
        if not first:                         # no value, or a line that starts with one
            return None
        if first > 1 and re.fullmatch(SIGNS, tokens[first - 1]):     # `Price € 17.30`: the sign is the unit
            first -= 1
        key, rest, sep = " ".join(tokens[:first]), " ".join(tokens[first:]), " "
        if len(tokens) - first > 2:
            return None
    part = _value_and_unit(key.strip(), rest.strip(), box)
    return part and dataclasses.replace(part, separator=sep)


def _value_and_unit(key: str, rest: str, box) -> LinePart | None:
    # a unit before the value needs a space: `B1`, `AOI-01` are values, not unit and number
    pre = re.fullmatch(rf"(?P<unit>{UNIT_WORD.pattern})\s+(?P<value>{NUMBER_TEXT.pattern})", rest)
    if pre:
        return LinePart(key, pre["value"], pre["unit"], True, box)
    post = re.fullmatch(rf"(?P<value>{NUMBER_TEXT.pattern})\s*(?P<unit>{UNIT_WORD.pattern})?", rest)
    if post:
        return LinePart(key, post["value"], post["unit"], False, box)
    if key and (" " not in rest or DATE_TIME.fullmatch(rest)):
        return LinePart(key, rest, None, False, box)
    return None


def printed_fields(line: Read) -> list[Read]:
    """A detected line printing several fields (`Temp: 1127.4 C  Press: 45.40 MPa`, `X:-4.59 Y:3.25`)
    cut before each word that a clear separator follows (`:` `=` `->` `=>`), where the text since the
    last cut already holds a key, a separator and a value. Each piece is boxed by its share of the
    characters (estimated_box): the draft leaves such a field without a line box, so ingest finds
    it by its key and cuts the line there (reading.split_at_keys)."""
    from oanet.ingest.reading import cut_line, holds_a_field

    text, cuts, last = line.text, [], 0
    for m in FIELD_START.finditer(text):
        if holds_a_field(text[last:m.start()]):
            cuts.append(m.end())
            last = m.end()
    return cut_line(line, cuts) if cuts and line.box is not None else [line]


def detected_lines(reads: list[Read]) -> list[Read]:
    """The printed lines of one image's detected reads: pieces joined, lines of several fields cut."""
    from oanet.ingest.reading import merge_fragments

    return [piece for line in merge_fragments(reads) for piece in printed_fields(line)]


def normal_key(key: str) -> str:
    """A key as compared across images: no spaces, any case, O/0 and I/l/1 merged."""
    return re.sub(r"\s+", "", key).upper().translate(str.maketrans("0L1|", "OIII"))


def field_name(key: str, taken: set[str]) -> str:
    """snake_case of the key (`Temp(C)` -> temp_c), unique among `taken`."""
    name = re.sub(r"[^0-9a-z]+", "_", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()).strip("_") or "field"
    name = f"f_{name}" if name[0].isdigit() else f"panel_{name}" if name in TABLE_COLUMNS else name
    out, i = name, 2
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def generalise(values: Sequence[str]) -> str:
    """A full-match pattern covering the values: digit runs -> \\d{n} (or \\d+ where lengths
    differ), letter runs kept where every value has the same letters, else [A-Za-z]{n}."""
    def runs(v: str) -> list[str]:
        return [upper_run(t) for t in re.findall(r"\d+|[A-Za-z]+|[^\dA-Za-z]", v)]

    pattern = _generalise([runs(v) for v in values])
    if pattern == r"\S+":             # `A0I-04` beside `AOI-01`: the recogniser's 0 for an O, tried once
        pattern = _generalise([runs(letters_back(v)) for v in values])
    return pattern


def _generalise(runs: list[list[str]]) -> str:
    if len({len(r) for r in runs}) != 1:
        return r"\S+"
    parts = []
    for column in zip(*runs, strict=True):
        lengths = {len(t) for t in column}
        n = f"{{{lengths.pop()}}}" if len(lengths) == 1 else "+"
        if column[0].isdigit() and all(t.isdigit() for t in column):
            parts.append(rf"\d{n}")
        elif len(set(column)) == 1:
            parts.append(re.escape(column[0]))
        elif all(t.isalpha() for t in column):
            parts.append(rf"[A-Za-z]{n}" if all(t.isascii() for t in column) else rf"{NON_ASCII_LETTERS}{n}")
        else:
            return r"\S+"
    return "".join(parts)


def numeric_range(values: Sequence[float], decimals: int) -> tuple[float, float]:
    """Every number printed with as many integer digits as the samples (at least two); from the
    least such number, or from 0 where a sample has one digit, or two and is under 20 (it may
    fall to one digit on other days), and from minus the top where a sample is negative.

    A value's order of magnitude is what a few images show reliably; its spread is not
    (an edge fraction of 0.0010 in three images is 0.0047 in the fourth). Misread decimals
    already fail the fixed-decimals pattern; a dropped or doubled integer digit
    (1111.2 read 111.2) changes the digit count and falls outside."""
    digits = [len(str(int(abs(v)))) for v in values]
    top = 10.0 ** max(*digits, 2) - 10.0 ** -decimals
    # two digits well clear of 10 (45-51) lose one to 9.25, in range from 0; near 10 (12) the spread may reach 9
    low = 10.0 ** (min(digits) - 1) if min(digits) > 2 or (min(digits) == 2 and min(values) >= 20) else 0.0
    return (round(low, decimals) if min(values) >= 0 else -round(top, decimals)), round(top, decimals)


def decimal_mark(values: Sequence[str]) -> str:
    """The panel's decimal mark: "," where more values show a decimal comma than a decimal point, else ".".
    A machine prints every number by one convention, and only some values show it: `7,1`, `0,65` and
    `1.127,5` have a decimal comma; `3,998` alone could be 3.998 or 3998."""
    votes = Counter()
    for v in values:
        m = re.fullmatch(r"[+-]?(\d[\d.,']*?)([.,])(\d+)", v.replace("’", "'"))
        if m and (len(m[3]) != 3 or m[1] == "0" or re.search("[.,']".replace(m[2], ""), m[1])):
            votes[m[2]] += 1
    return "," if votes[","] > votes["."] else "."


def plain_numbers(values: Sequence[str], decimal: str = ".") -> list[str] | None:
    """The values as digits and a point, read with the panel's decimal mark and the first thousands mark
    (THOUSANDS_MARKS) that reads them all; None if none does: `1,232.5` beside `999.5` groups by the
    comma. Ingest reads a drafted field the same way: its dtype and decimals keep the one reading of
    `1,232` (1232 or 1.232) that the values showed (parse.ungrouped)."""
    values = [v.replace("’", "'") for v in values]
    for thousands in THOUSANDS_MARKS[decimal]:
        group = rf"[1-9]\d{{0,2}}(?:{re.escape(thousands)}\d{{3}})+|" if thousands else ""
        convention = re.compile(rf"[+-]?(?:{group}\d+)(?:{re.escape(decimal)}\d+)?")
        if all(convention.fullmatch(v) for v in values):
            return [(v.replace(thousands, "") if thousands else v).replace(decimal, ".") for v in values]
    return None


def numbers_with_placeholders(parts: list[LinePart]) -> list[LinePart]:
    """The parts that print a number, where they are more than half of them and the rest hold no digit:
    `N/A`, `---`, `ERR`, `****` are what a machine prints for a value it did not have, and they must not
    make a number field text (ingest leaves them missing). Otherwise all the parts."""
    numeric = [p for p in parts if NUMBER_TEXT.fullmatch(p.value)]
    others = [p.value for p in parts if not NUMBER_TEXT.fullmatch(p.value)]
    if others and len(numeric) >= 2 and len(numeric) > len(parts) / 2 and not any(ch.isdigit() for v in others for ch in v):
        return numeric
    return parts


def infer_field(key: str, parts: list[LinePart], name: str, taken_id: bool, decimal: str = ".") -> Field:
    parts = numbers_with_placeholders(parts)
    unit = Counter(p.unit for p in parts).most_common(1)[0][0]
    unit_first = unit is not None and sum(p.unit_first for p in parts) > len(parts) / 2
    sep = Counter(p.separator for p in parts).most_common(1)[0][0]
    fmt = f"{{key}}{sep}{{unit}} {{value}}" if unit_first else None
    values = plain_numbers([p.value for p in parts], decimal) or [p.value for p in parts]
    if all(NUMBER.fullmatch(v) for v in values):
        mantissas = [v.lower().partition("e")[0] for v in values]
        decimals = {len(m.split(".")[1]) if "." in m else 0 for m in mantissas}
        numbers = [float(v) for v in values]
        if any("e" in v.lower() for v in values):          # a gauge's 3.1e-2: its spread is orders of magnitude
            return Field(name, key, "float", unit, None, decimals=decimals.pop() if len(decimals) == 1 else None,
                         format=fmt)
        if decimals == {0}:
            return Field(name, key, "int", unit, numeric_range(numbers, 0), format=fmt)
        d = decimals.pop() if len(decimals) == 1 else None
        return Field(name, key, "float", unit, numeric_range(numbers, d if d is not None else 3), decimals=d,
                     format=fmt)
    distinct = len(set(values)) == len(values) > 1
    role = "id" if not taken_id and distinct and not any(TIME_LIKE.search(v) for v in values) else "feature"
    kinds = _category_values(values)
    if role == "feature" and kinds:
        return Field(name, key, "category", None, categories=kinds)
    return Field(name, key, "str", None, role=role, pattern=generalise(values))


def needs_full_charset(layout: Layout) -> list[str]:
    """Fields whose drafted pattern takes letters of any script: the recogniser's `layout` charset keeps
    ASCII and the characters the layout prints (keys, units, categories), so it could not read them."""
    return [f.name for f in layout.fields if f.pattern and NON_ASCII_LETTERS in f.pattern]


def _category_values(values: Sequence[str]) -> tuple[str, ...] | None:
    """The categories of a field whose values are a few repeated words (`A`, `B`; `DAY`, `NIGHT`), each in
    its most common case: as a category, a read `c` becomes `C` instead of a second value. None otherwise."""
    if len(values) < 3 or not all(v.isalpha() and len(v) <= 12 for v in values):
        return None
    forms: dict[str, Counter] = {}
    for v in values:
        forms.setdefault(v.upper(), Counter())[v] += 1
    if len(forms) > MAX_CATEGORIES or len(forms) == len(values):
        return None
    return tuple(sorted(c.most_common(1)[0][0] for c in forms.values()))


def union_box(boxes) -> tuple[int, int, int, int]:
    b = np.asarray(boxes)
    return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


def pad_boxes(boxes: list[tuple], size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Each box grown: an eighth of its height up and down (the union over images already
    holds the print jitter; a taller crop shrinks the text in the recogniser's input and
    lost a digit), a few px left and RIGHT_GROWTH of its width right, each side stopped
    halfway to any other box it would run into."""
    width, height = size
    out = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        v = max(2, (y1 - y0) // 8)
        want = [x0 - max(3, v), y0 - v, x1 + max(8, int(RIGHT_GROWTH * (x1 - x0))), y1 + v]
        for j, (a0, b0, a1, b1) in enumerate(boxes):
            if i == j:
                continue
            if b0 < y1 and b1 > y0:                       # same row: stop halfway to a neighbour
                if a0 >= x1:
                    want[2] = min(want[2], (x1 + a0) // 2)
                elif a1 <= x0:
                    want[0] = max(want[0], (a1 + x0) // 2)
            if a0 < x1 and a1 > x0:                       # same column: stop halfway above and below
                if b0 >= y1:
                    want[3] = min(want[3], (y1 + b0) // 2)
                elif b1 <= y0:
                    want[1] = max(want[1], (b1 + y0) // 2)
        out.append((max(0, want[0]), max(0, want[1]), min(width, want[2]), min(height, want[3])))
    return out


def object_box(boxes: list[tuple], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest rectangle anchored in a corner of the image that meets no line box."""
    width, height = size
    xs = sorted({0, width, *[b[0] for b in boxes], *[b[2] for b in boxes]})
    ys = sorted({0, height, *[b[1] for b in boxes], *[b[3] for b in boxes]})
    best, best_area = (0, 0, width, height), -1
    for left in (True, False):
        for top in (True, False):
            for x in xs:
                for y in ys:
                    r = (0 if left else x, 0 if top else y, x if left else width, y if top else height)
                    area = (r[2] - r[0]) * (r[3] - r[1])
                    if area > best_area and r[2] > r[0] and r[3] > r[1] and not any(
                            b[0] < r[2] and b[2] > r[0] and b[1] < r[3] and b[3] > r[1] for b in boxes):
                        best, best_area = r, area
    return best


def discover_keys(lines_per_image: list[list[Read]]) -> dict[str, tuple[str, str]]:
    """{normal key: (key as most often read, its separator)} from the lines that split cleanly.

    The separator is the most common one other than whitespace, if any line of the key
    shows one with spaces around it: the recogniser drops spaces (`UnitID-U220352`,
    `SinterT -1134.1`), it does not invent dashes.
    """
    keys: dict[str, list[LinePart]] = {}
    for lines in lines_per_image:
        for line in lines:
            part = split_line(line.text, line.box)
            if part and normal_key(part.key):
                keys.setdefault(normal_key(part.key), []).append(part)
    out = {}
    for k, parts in keys.items():
        seps = Counter(p.separator.strip() for p in parts if p.separator.strip())
        out[k] = (Counter(p.key for p in parts).most_common(1)[0][0], seps.most_common(1)[0][0] if seps else "")
    return out


def read_line(key: str, separator: str, line: Read) -> LinePart | None:
    """The line's value and unit, if it starts with `key`: what follows the key, less the
    key's separator (spaced or glued) or any spaced one."""
    from oanet.ingest.parse import key_regex, word_end

    m = re.match(rf"^\s*{key_regex(key)}{word_end(key)}\s*", line.text, re.IGNORECASE)
    if not m:
        return None
    rest = line.text[m.end():]
    if separator and rest.startswith(separator):
        rest = rest[len(separator):]
    else:
        rest = re.sub(rf"^{SEPARATOR}", "", rest)
    part = _value_and_unit(key, rest.strip(), line.box)
    return part and dataclasses.replace(part, separator=f" {separator} " if separator else " ",
                                        estimated_box=line.estimated_box)


SHARES_A_LINE = "shares a line with other fields"
MOVES = "its line moves between the images (a box would hold another line on some)"


@dataclass(frozen=True)
class Draft:
    layout: Layout
    unboxed: dict[str, str]          # field name: why it has no line box (ingest finds it by key)


def moving_lines(box_sets: list[list[tuple]]) -> list[bool]:
    """For each field's boxes over the images: whether its line moves from image to image, so that
    one box holds another line on some image. A field left out of some panels shifts the lines
    below it into its place; a tilt that varies swings each line about its start. The union of
    such a line's boxes is taller than MAX_SPREAD lines, or reaches into another line's usual
    place; then both lines move (the line left out is where the other one shows)."""
    unions = [union_box(b) for b in box_sets]
    usual = [np.median(np.asarray(b, dtype=float), axis=0) for b in box_sets]

    def reach(u, m) -> float:        # the share of line m's height that box u covers, in shared columns
        if m[0] >= u[2] or m[2] <= u[0]:
            return 0.0
        return max(0.0, min(u[3], m[3]) - max(u[1], m[1])) / max(1.0, m[3] - m[1])

    moving = [(u[3] - u[1]) / max(1.0, m[3] - m[1]) > MAX_SPREAD for u, m in zip(unions, usual, strict=True)]
    for i, j in itertools.permutations(range(len(box_sets)), 2):
        if reach(unions[i], usual[j]) > MAX_REACH:
            moving[i] = moving[j] = True
    return moving


def suggest_from_reads(reads_per_image: list[list[Read]], size: tuple[int, int], name: str = "suggested",
                       names: Sequence[str] | None = None) -> Layout:
    """The draft layout from each image's detected reads (see draft)."""
    return draft(reads_per_image, size, name, names).layout


def draft(reads_per_image: list[list[Read]], size: tuple[int, int], name: str = "suggested",
          names: Sequence[str] | None = None) -> Draft:
    """The draft layout from each image's detected reads (oanet.ingest.engine.Read with boxes):
    keys found where lines split cleanly, then every line read again by the keys found; and why
    each field left without a line box has none.
    `names`: the images', for the error that names those where no line could be split."""
    lines_per_image = [detected_lines(reads) for reads in reads_per_image]
    keys = sorted(discover_keys(lines_per_image).values(), key=lambda ks: -len(ks[0]))   # longest claims first
    by_key: dict[str, list[LinePart]] = {}
    for lines in lines_per_image:
        taken = set()
        for key, sep in keys:
            for i, line in enumerate(lines):
                part = None if i in taken else read_line(key, sep, line)
                if part is not None:
                    by_key.setdefault(key, []).append(part)
                    taken.add(i)
                    break
    need = max(1, math.ceil(MIN_SHARE * len(reads_per_image)))
    kept = [parts for parts in by_key.values() if len(parts) >= need]
    if not kept:
        seen = ", ".join(f"{ps[0].key!r} in {len(ps)}" for ps in sorted(by_key.values(), key=len, reverse=True)[:4])
        blank = [n for n, lines in zip(names or [], lines_per_image, strict=False)
                 if not any(split_line(line.text, line.box) for line in lines)]
        raise SuggestError(
            f"no key showed in {need} of the {len(reads_per_image)} images (found: {seen or 'none'})"
            + (f"; no `KEY VALUE` line was read in {', '.join(blank[:4])}{' ...' if len(blank) > 4 else ''}"
               if blank else "")
            + ": give the clearest images by name (oanet layout suggest IMAGE IMAGE ...)")
    kept.sort(key=lambda ps: (union_box([p.box for p in ps])[1], union_box([p.box for p in ps])[0]))
    boxes = pad_boxes([union_box([p.box for p in ps]) for ps in kept], size)
    moving = moving_lines([[p.box for p in ps] for ps in kept])
    taken: set[str] = set()
    fields, unboxed, has_id, has_group = [], {}, False, False
    decimal = decimal_mark([p.value for parts in kept for p in parts])
    for parts, box, moves in zip(kept, boxes, moving, strict=True):
        f = infer_field(parts[0].key, parts, field_name(parts[0].key, taken), has_id, decimal)
        lot = GROUP_NAME.search(f.name) or GROUP_KEY.search(f.key)
        if not has_group and f.role == "feature" and f.dtype in ("str", "int") and lot:
            f = dataclasses.replace(f, role="group")        # the split keeps a lot whole
        has_id |= f.role == "id"
        has_group |= f.role == "group"
        why = SHARES_A_LINE if any(p.estimated_box for p in parts) else MOVES if moves else None
        fields.append(f if why else _with_roi(f, box))
        if why:
            unboxed[f.name] = why
    layout = Layout(name=name, size=size, object_roi=object_box(boxes, size), fields=tuple(fields))
    return Draft(layout, unboxed)


def unclaimed_lines(reads_per_image: list[list[Read]], layout: Layout) -> list[tuple[str, int]]:
    """Lines with a digit that no field of the draft claims: (an example, in how many images), most
    frequent first. A field the draft missed (a key it could not split, `Flow 56 005 l/h`) shows here."""
    from oanet.ingest.parse import line_start

    starts = [line_start(f) for f in layout.fields]
    seen: dict[str, tuple[str, set[int]]] = {}
    for i, reads in enumerate(reads_per_image):
        for line in detected_lines(reads):
            if any(ch.isdigit() for ch in line.text) and not any(s.match(line.text) for s in starts):
                shape = re.sub(r"\d+", "#", re.sub(r"\s+", " ", line.text.strip()))
                seen.setdefault(shape, (line.text.strip(), set()))[1].add(i)
    return sorted(((text, len(images)) for text, images in seen.values()), key=lambda t: -t[1])


def _with_roi(f: Field, box) -> Field:
    return dataclasses.replace(f, roi=tuple(int(v) for v in box))


def suggest(images: Sequence[Path], ocr, name: str = "suggested", progress: bool = True) -> Layout:
    """Detect and read each image whole with `ocr` (oanet.ingest.engine.Ocr); the draft layout."""
    reads, size = read_panels(images, ocr, progress)
    return suggest_from_reads(reads, size, name, [Path(p).name for p in images])


def read_panels(images: Sequence[Path], ocr, progress: bool = True) -> tuple[list[list[Read]], tuple[int, int]]:
    """Each image detected and read whole, and their common size (width, height)."""
    from PIL import Image
    from tqdm import tqdm

    if not images:
        raise SuggestError("give at least one image (three to eight show the values' spread)")
    reads, size = [], None
    for path in tqdm(images, desc="suggest", unit="img", disable=not progress):
        try:
            with Image.open(path) as img:
                gray = gray8(img)
        except (OSError, ValueError) as err:
            raise SuggestError(f"{path}: not a readable image ({err})") from None
        if size is not None and gray.shape[::-1] != size:
            raise SuggestError(f"{path} is {gray.shape[1]}x{gray.shape[0]}, the first image {size[0]}x{size[1]}: "
                               "one layout is for images of one size")
        size = gray.shape[::-1]
        reads.append(ocr.detect_and_recognize(gray))
    return reads, tuple(int(v) for v in size)
