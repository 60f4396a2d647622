"""The layout contract: where the object and each printed field sit on an AOI image.

The layout is the single source of truth: the synthesiser prints from it, the OCR
parser reads by it, and the data-quality suite is generated from it.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from oanet.errors import OanetError

DTYPES = ("float", "int", "str", "category")
ROLES = ("feature", "id", "group")
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
        if self.dtype == "float":
            frac = r"\.\d+" if self.decimals is None else (r"\.\d{%d}" % self.decimals if self.decimals else "")
            return re.compile(r"[+-]?\d+" + frac)
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

    def without_boxes(self) -> "Layout":
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


def _box(value, where: str) -> Box | None:
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 4 or not all(isinstance(v, int) for v in value)
            or value[0] >= value[2] or value[1] >= value[3]):
        raise LayoutError(f"{where}: a box is [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {value!r}")
    return tuple(value)


def _size(value) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise LayoutError(f"size is [width, height] in pixels, got {value!r}")
    return tuple(value)


def parse_field(raw: dict) -> Field:
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
    rng = raw.get("range")
    if rng is not None and (not isinstance(rng, (list, tuple)) or len(rng) != 2 or rng[0] > rng[1]):
        raise LayoutError(f"field {name}: range is [low, high], got {rng!r}")
    unknown = set(raw) - {f for f in Field.__dataclass_fields__}
    if unknown:
        raise LayoutError(f"field {name}: unknown keys {sorted(unknown)}")
    cats = raw.get("categories")
    fmt = raw.get("format")
    if fmt is not None and (not isinstance(fmt, str) or "{value}" not in fmt
                            or re.sub(r"\{(key|value|unit)\}", "", fmt).count("{")):
        raise LayoutError(f"field {name}: format is a line template holding {{value}} and optionally "
                          f"{{key}} and {{unit}}, e.g. '{{key}} >> {{value}} {{unit}}'; got {fmt!r}")
    return Field(
        name=name, key=str(raw["key"]), dtype=dtype, unit=raw.get("unit"),
        range=tuple(float(v) for v in rng) if rng is not None else None, role=role,
        roi=_box(raw.get("roi"), f"field {name} roi"), decimals=raw.get("decimals"),
        pattern=raw.get("pattern"), categories=tuple(str(c) for c in cats) if cats else None, format=fmt,
    )


def layout_from_dict(raw: dict) -> Layout:
    if not isinstance(raw, dict):
        raise LayoutError(f"a layout is a mapping with name, size, object_roi and fields, got {raw!r}")
    try:
        fields = tuple(parse_field(f) for f in raw.get("fields") or [])
        layout = Layout(name=str(raw["name"]), size=_size(raw["size"]),
                        object_roi=_box(raw["object_roi"], "object_roi"), fields=fields)
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
    return layout_from_dict(yaml.safe_load(path.read_text()))
