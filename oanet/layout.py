"""The layout contract: where the object and each printed field sit on an AOI image.

The layout is the single source of truth: the synthesiser prints from it, the OCR
parser reads by it, and the data-quality suite is generated from it.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from oanet.errors import OanetError

DTYPES = ("float", "int", "str", "category")
ROLES = ("feature", "id", "group")
# The OCR table beside the fields: labels.csv's optional lot column (the split keeps a lot whole, printed
# or given), and the suffix a labels.csv column takes where a field of the same name is printed.
LABELS_LOT = "lot"
CLASH_SUFFIX = "__labels"
TABLE_COLUMNS = ("image", "label", "defect_type", "sha256")     # every OCR table has these; no field may take one
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


DEFAULT_FORMAT = "{key}: {value} {unit}"
FORMAT_KEYS = ("{key}", "{value}", "{unit}")


def print_line(template: str, key: str, value: str, unit: str | None) -> str:
    """`template` with its placeholders filled; without a unit, `{unit}` and the space before it go."""
    if not unit:
        template = re.sub(r"\s*\{unit\}", "", template)
    return template.replace("{key}", key).replace("{value}", value).replace("{unit}", unit or "").strip()


class LayoutError(OanetError, ValueError):
    """A layout file that breaks the contract; the message names the field and the rule."""


@dataclass(frozen=True)
class Field:
    name: str                      # column name in the table
    key: str                       # label printed before the value, e.g. TEMP
    dtype: str = "float"
    unit: str | None = None        # printed after the value
    range: tuple[float, float] | None = None
    role: str = "feature"
    roi: Box | None = None         # line box: the fast path; None means "find it by key"
    decimals: int | None = None    # float fields: digits printed after the point
    pattern: str | None = None     # str fields: full-match regex of a valid value
    categories: tuple[str, ...] | None = None
    format: str | None = None      # how the line prints, e.g. "{key} >> {value} {unit}": for what the
                                   # parser's separator and unit rules do not cover

    def value_regex(self) -> re.Pattern[str]:
        """Full-match pattern of a well-formed printed value of this field."""
        if self.dtype == "float":      # an exponent as gauges print one: 3.1e-2, 8.1E+02
            frac = r"\.\d+" if self.decimals is None else (rf"\.\d{{{self.decimals}}}" if self.decimals else "")
            return re.compile(r"[+-]?\d+" + frac + r"(?:[eE][+-]?\d{1,3})?")
        if self.dtype == "int":
            return re.compile(r"[+-]?\d+")
        if self.pattern:
            return re.compile(self.pattern)
        if self.categories:
            return re.compile("|".join(re.escape(c) for c in self.categories))
        return re.compile(r"\S+")

    def format_value(self, value) -> str:
        """The text the machine prints for a value (without key and unit)."""
        if self.dtype == "float":
            return f"{float(value):.{self.decimals if self.decimals is not None else 2}f}"
        if self.dtype == "int":
            return str(int(value))
        return str(value)

    def line(self, value, template: str | None = None) -> str:
        """One printed panel line: by the field's `format`, else `template`, else `KEY: VALUE UNIT`."""
        return print_line(self.format or template or DEFAULT_FORMAT, self.key, self.format_value(value), self.unit)


@dataclass(frozen=True)
class Layout:
    name: str
    size: tuple[int, int]          # width, height
    object_roi: Box
    fields: tuple[Field, ...] = field(default_factory=tuple)

    @property
    def feature_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.role == "feature")

    def without_boxes(self) -> Layout:
        """The same layout read by keys only: every field found by CnOCR's detector (general path)."""
        import dataclasses

        return dataclasses.replace(self, fields=tuple(dataclasses.replace(f, roi=None) for f in self.fields))

    def by_role(self, role: str) -> Field | None:
        return next((f for f in self.fields if f.role == role), None)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["size"] = list(self.size)
        out["object_roi"] = list(self.object_roi)
        out["fields"] = [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(f).items() if v is not None}
            for f in self.fields
        ]
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)     # YAML `true` is an int to Python


def _box(value, where: str, size: tuple[int, int] | None = None) -> Box | None:
    """A box inside the canvas: a box past its edge crops nothing and reads nothing, silently."""
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 4 or not all(_whole(v) for v in value)
            or value[0] >= value[2] or value[1] >= value[3]):
        raise LayoutError(f"{where}: a box is [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {value!r}")
    if min(value) < 0 or (size is not None and (value[2] > size[0] or value[3] > size[1])):
        canvas = f"the {size[0]}x{size[1]} canvas" if size else "the canvas (a coordinate is negative)"
        raise LayoutError(f"{where}: the box {list(value)} is not inside {canvas}")
    return tuple(value)


def _size(value) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_whole(v) and v > 0 for v in value):
        raise LayoutError(f"size is [width, height] in pixels, got {value!r}")
    return tuple(value)


# The pattern language: Python regex without what makes matching time explode. A repeated group
# (`B(\d+)+X`) or alternation under a repeat backtracks exponentially;
# repeats side by side (`\d*\d*\d*`) polynomially in the value's length, so their number is capped,
# and so is the length of a value matched (MAX_VALUE_CHARS, in parse._match): the worst allowed pattern
# then stays fast (docs/benchmarks.md, "Smaller measurements").
MAX_PATTERN_CHARS = 100
MAX_VALUE_CHARS = 64
MAX_OPEN_REPEATS = 3        # *, +, {m,n} with n > 1
MAX_OPTIONALS = 4           # ?, {0,1}
_SINGLE_CHARACTER = ("LITERAL", "NOT_LITERAL", "IN", "ANY")
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
_PLAIN = _SINGLE_CHARACTER + ("AT",)      # ^ $ \b: anchors never backtrack


def _repeats_one_character(body) -> bool:
    while len(body) == 1 and str(body[0][0]) == "SUBPATTERN":      # (\d)+ is \d+
        body = body[0][1][-1]
    return len(body) == 1 and str(body[0][0]) in _SINGLE_CHARACTER


def _count_repeats(items, where: str, counts: Counter) -> Counter:
    """Open and optional repeats of a parsed pattern; LayoutError for a construct outside the language."""
    for op, arg in items:
        op = str(op)
        if op in _REPEATS:
            low, high, body = arg
            if high > 1 and not _repeats_one_character(body):
                raise LayoutError(f"{where}: a group or alternation under a repeat (e.g. (\\d+)+) can take "
                                  f"exponential time; repeat single characters or classes only")
            counts["open" if high > 1 else "optional"] += low != high
            _count_repeats(body, where, counts)
        elif op == "SUBPATTERN":
            _count_repeats(arg[-1], where, counts)
        elif op == "BRANCH":
            for branch in arg[1]:
                _count_repeats(branch, where, counts)
        elif op not in _PLAIN:
            raise LayoutError(f"{where}: {op.lower()} (backreference, lookaround, conditional or atomic "
                              f"group) is not part of the pattern language")
    return counts


def _pattern(value, where: str) -> str | None:
    from re import _parser  # the stdlib's own regex parser (private, stable since 3.11)

    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_PATTERN_CHARS:
        raise LayoutError(f"{where}: a pattern is a regex of 1 to {MAX_PATTERN_CHARS} characters, got {value!r}")
    try:
        tree = _parser.parse(value)
    except re.error as err:
        raise LayoutError(f"{where}: not a valid regex {value!r}: {err}") from None
    counts = _count_repeats(list(tree), where, Counter())
    if counts["open"] > MAX_OPEN_REPEATS or counts["optional"] > MAX_OPTIONALS:
        raise LayoutError(f"{where}: {value!r} has {counts['open']} open repeats (*, +, {{m,n}}) and "
                          f"{counts['optional']} optional parts (?); at most {MAX_OPEN_REPEATS} and "
                          f"{MAX_OPTIONALS}: matching time grows with their product")
    return value


def _range(value, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    numbers = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not numbers or value[0] > value[1]:     # a NaN bound would reject every value
        raise LayoutError(f"{where}: range is [low, high], two finite numbers with low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def _categories(value, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(c, str) and c for c in value):
        raise LayoutError(f"{where}: categories is a list of non-empty strings (quote numbers: '1'), got {value!r}")
    return tuple(value)


def _check_scalars(raw: dict, name: str) -> None:
    decimals, unit = raw.get("decimals"), raw.get("unit")
    if not isinstance(name, str):
        raise LayoutError(f"field {name!r}: name is text, got {name!r}")
    if not name.isidentifier() or "__" in name or name in TABLE_COLUMNS:
        raise LayoutError(f"field {name!r}: a name is a column of the OCR table: letters, digits and single "
                          f"underscores, not starting with a digit ('__' ends the columns ingest adds, e.g. "
                          f"{name}__text), and none of {', '.join(TABLE_COLUMNS)}")
    if decimals is not None and not (_whole(decimals) and decimals >= 0):
        raise LayoutError(f"field {name}: decimals is a whole number >= 0, got {decimals!r}")
    if unit is not None and not isinstance(unit, str):
        raise LayoutError(f"field {name}: unit is text, got {unit!r}")


def parse_field(raw: dict, size: tuple[int, int] | None = None) -> Field:
    """One field of a layout file, checked; `size`: the canvas its box must lie in."""
    if not isinstance(raw, dict):
        raise LayoutError(f"every field is a mapping with a name and a key, got {raw!r}")
    name = raw.get("name")
    if not name or not raw.get("key"):
        raise LayoutError(f"every field needs a name and a key, got {raw!r}")
    dtype, role = raw.get("dtype", "float"), raw.get("role", "feature")
    if dtype not in DTYPES:
        raise LayoutError(f"field {name}: dtype {dtype!r} is not one of {DTYPES}")
    if role not in ROLES:
        raise LayoutError(f"field {name}: role {role!r} is not one of {ROLES}")
    unknown = set(raw) - {f for f in Field.__dataclass_fields__}
    if unknown:
        raise LayoutError(f"field {name}: unknown keys {sorted(unknown)}")
    _check_scalars(raw, name)
    fmt = raw.get("format")
    if fmt is not None and (not isinstance(fmt, str) or "{value}" not in fmt
                            or re.sub(r"\{(key|value|unit)\}", "", fmt).count("{")):
        raise LayoutError(f"field {name}: format is a line template holding {{value}} and optionally "
                          f"{{key}} and {{unit}}, e.g. '{{key}} >> {{value}} {{unit}}'; got {fmt!r}")
    return Field(
        name=name, key=str(raw["key"]), dtype=dtype, unit=raw.get("unit"),
        range=_range(raw.get("range"), f"field {name} range"), role=role,
        roi=_box(raw.get("roi"), f"field {name} roi", size), decimals=raw.get("decimals"),
        pattern=_pattern(raw.get("pattern"), f"field {name} pattern"),
        categories=_categories(raw.get("categories"), f"field {name} categories"), format=fmt,
    )


def _parse_fields(raws: list, size: tuple[int, int]) -> tuple[Field, ...]:
    """Every field checked; the problems of all of them in one error, so a hand-edited layout with
    several typos is mended in one go rather than one field per run."""
    fields, problems = [], []
    for raw in raws:
        try:
            fields.append(parse_field(raw, size))
        except LayoutError as err:
            problems.append(str(err))
    if len(problems) == 1:
        raise LayoutError(problems[0])
    if problems:
        raise LayoutError(f"{len(problems)} fields break the contract: " + "; ".join(problems))
    return tuple(fields)


def layout_from_dict(raw: dict) -> Layout:
    if not isinstance(raw, dict):
        raise LayoutError(f"a layout is a mapping with name, size, object_roi and fields, got {raw!r}")
    try:
        size = _size(raw["size"])
        fields = _parse_fields(raw.get("fields") or [], size)
        if raw["name"] is None or isinstance(raw["name"], bool) or not str(raw["name"]).strip():
            raise LayoutError(f"a layout's name is text, e.g. the machine's model, got {raw['name']!r}")
        layout = Layout(name=str(raw["name"]), size=size,                  # `name: 3000` is a model number
                        object_roi=_box(raw["object_roi"], "object_roi", size), fields=fields)
    except KeyError as missing:
        raise LayoutError(f"layout is missing the key {missing}") from None
    if not fields:
        raise LayoutError("layout has no fields")
    names = [f.name for f in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LayoutError(f"duplicate field names: {dupes}")
    return layout


def load_layout(path: str | Path) -> Layout:
    path = Path(path)
    if not path.exists():
        raise LayoutError(f"layout file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:      # a folder, no permission, bytes that are not UTF-8
        raise LayoutError(f"layout file {path} cannot be read: {err}") from None
    except yaml.YAMLError as err:                     # also a !!python tag: safe_load builds no objects
        raise LayoutError(f"layout file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    return layout_from_dict(raw)
