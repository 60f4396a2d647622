"""Panel styles: how the AOI screens of other machines print the same 13 fields.

A style is one YAML file `oanet/synth/styles/<name>.yaml` (or any path) holding

- `seed`: the default seed of `oanet synth --style NAME` when `--seed` is not given;
- `layout`: a full layout (name, size, object_roi, fields with line boxes `roi`), as
  `oanet.layout.layout_from_dict` reads it. It holds the 13 aoi-v1 field names with the
  aoi-v1 dtype, role, range, decimals, pattern and categories (the label model and the
  object statistics fill them, and truth.csv must stay exact); keys, units, boxes, order
  and per-field `format` are the style's own;
- `render`: the look (`Render`): font (builtin | dejavu-sans | dejavu-sans-mono |
  dejavu-serif | stix, the DejaVu and STIX files taken from matplotlib's bundled fonts), font_size,
  mode (L | RGB), background and ink (a gray level, or [r, g, b] in RGB mode), templates
  (line templates cycled over the fields in layout order; a field's own layout `format`
  wins), signed (fields printed with `+` before a non-negative number; truth.csv keeps
  the plain value), decimal_mark (`.` | `,`) and thousands (none, `,` `.` `'` or a space:
  numbers as a machine set for another locale prints them, `1.124,7`; truth.csv keeps
  `1124.7`), noise_sd, blur_radius, image_format (png | jpeg) and jpeg_quality.

`aoi-v1` is built in (not a file): the `aoi_layout` layout and today's look, seed 7.

Legibility: fonts 16-22 px; line boxes at least 28 px tall and as wide as the widest line
of the field's extreme values (range ends and every digit, measured with the style's
font) plus 20% and the text insets; boxes apart from each other and from the object box.
`load_style` checks the boxes, `overflows(style)` lists any line that would not fit.

Styles (what each varies; canvas, object box and panel):

- aoi-v1: built-in font 18 px, light on dark, grayscale PNG, 640x480, object lower-left,
  panel top band + right column; `KEY: VALUE UNIT` upper-case keys.
- sans-paper: DejaVu Sans 18, dark ink on a light panel, grayscale PNG, 800x600, object
  top-right, one panel column on the left; keys with punctuation (`Exp/ms`, `Gray.Avg`,
  `Temp(C)`, `Press[MPa]`, `Thk_mm`); separators ` = ` and `: `, unit glued to the value.
- mono-cream: DejaVu Sans Mono 17, RGB brown ink on a cream panel, PNG, 1024x768, object
  on the right side, two panel columns on the left, process fields first; lower-case
  keys; separators ` : `, `=` and a bare space with the unit before the value.
- serif-grab: DejaVu Serif 19, light on dark, grayscale, 800x600, object top-centre with
  the panel below in three columns; mixed-case keys, unit `°C`; separators full-width
  `：`, ` - ` and ` -> `; sensor noise, blur and JPEG quality 80 (`.jpg`).
- dim-square: built-in font 20, low contrast dark-on-light gray, PNG, 512x512, object
  top-left with the panel right of and below it; keys with a space inside (`Gray Avg`,
  `EXP TIME`); separators ` = ` and `=`, unit with and without a space; `+` on GAIN
  and PRESS.
- navy-format: DejaVu Sans 16, RGB pale-blue ink on navy, PNG, 640x480, object
  lower-right, panel left column and top row; layout `format` on two fields
  (`[LOT] L2611-0001`, `TEMP >> 1120.5 C`) that no separator rule covers; separators
  `: ` and ` : `; `+` on GAIN and TEMP.
- mono-term: DejaVu Sans Mono 22, RGB green on black, JPEG quality 88 (`.jpg`), 1024x768,
  large object lower-left, panel top band + right column; upper-case snake keys with
  the unit in the key (`EXPO_MS`, `THK_MM`); separators ` -> `, a bare space and `=`.
- sans-gray: DejaVu Sans 17, light on mid-gray, grayscale JPEG quality 85 (`.jpg`),
  640x480, object on the left side, two panel columns on the right; mixed-case keys;
  separators `: ` and a bare space with the unit before the value.
- de-comma: DejaVu Sans 17, dark on pale yellow RGB, PNG, 800x560, object top-left, panel
  right and below; German keys (`Temperatur`, `Druck`, `Dicke`); numbers as a German
  machine prints them, a decimal comma and a point between thousands (`1.124,7 °C`,
  `0,0021`); separators `: ` and ` = `.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from oanet.errors import OanetError
from oanet.layout import DEFAULT_FORMAT, Field, Layout, LayoutError, layout_from_dict, print_line
from oanet.synth.aoi_layout import aoi_v1_layout
from oanet.synth.panel import FONTS, MODES, TEXT_INSET, Colour, FontError, PanelStyle, font_file, load_font, text_bbox

BUILTIN = "aoi-v1"
STYLE_DIR = Path(__file__).resolve().parent / "styles"
STYLES: tuple[str, ...] = (BUILTIN, *sorted(p.stem for p in STYLE_DIR.glob("*.yaml")))
IMAGE_FORMATS = {"png": "png", "jpeg": "jpg"}      # image_format -> file suffix
DECIMAL_MARKS, THOUSANDS = (".", ","), ("", ",", ".", "'", " ")
_AOI_V1 = aoi_v1_layout()
_SEMANTICS = ("dtype", "role", "range", "decimals", "pattern", "categories")


class StyleError(OanetError, ValueError):
    """A style that is unknown or whose file breaks the rules; the message says which and why."""


@dataclass(frozen=True)
class Render:
    """How a style draws its panel and saves its images."""
    font: str = "builtin"
    font_size: int = 18
    mode: str = "L"
    background: Colour = 24
    ink: Colour = 228
    templates: tuple[str, ...] = ()     # cycled over the fields in layout order; () = DEFAULT_FORMAT
    signed: tuple[str, ...] = ()        # field names printed with "+" before a non-negative number
    decimal_mark: str = "."             # "." or ","
    thousands: str = ""                 # "" (none), ",", ".", "'" or " "
    noise_sd: float = 0.0
    blur_radius: float = 0.0
    image_format: str = "png"           # png | jpeg
    jpeg_quality: int = 90

    @property
    def suffix(self) -> str:
        return IMAGE_FORMATS[self.image_format]

    def panel_style(self) -> PanelStyle:
        """The clean per-image look; the stage's preset jitters it."""
        return PanelStyle(font_size=self.font_size, background=self.background, ink=self.ink,
                          noise_sd=self.noise_sd, blur_radius=self.blur_radius, font=self.font, mode=self.mode)

    def template(self, index: int) -> str | None:
        return self.templates[index % len(self.templates)] if self.templates else None

    def line(self, f: Field, value, index: int) -> str:
        """The printed line of field number `index` of the layout."""
        text = f.format_value(value)
        if f.dtype in ("float", "int"):
            text = local_number(text, self.decimal_mark, self.thousands)
            if f.name in self.signed and not text.startswith("-"):
                text = "+" + text
        return print_line(f.format or self.template(index) or DEFAULT_FORMAT, f.key, text, f.unit)

    def lines(self, layout: Layout, values: dict) -> dict[str, str]:
        return {f.name: self.line(f, values[f.name], i) for i, f in enumerate(layout.fields)}


def local_number(text: str, decimal_mark: str = ".", thousands: str = "") -> str:
    """A plain printed number (`-1124.70`) as a machine set for another locale prints it: `-1.124,70`
    with decimal_mark "," and thousands "."."""
    sign, digits = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    whole, point, fraction = digits.partition(".")
    if thousands:
        whole = f"{int(whole):,}".replace(",", thousands)
    return sign + whole + (decimal_mark + fraction if point else "")


@dataclass(frozen=True)
class Style:
    name: str
    seed: int
    layout: Layout
    render: Render = field(default_factory=Render)


def builtin_style() -> Style:
    return Style(name=BUILTIN, seed=7, layout=_AOI_V1, render=Render())


def load_style(name_or_path: str | Path) -> Style:
    """A style by name (see STYLES) or by the path of a style YAML file."""
    text = str(name_or_path)
    if text == BUILTIN:
        return builtin_style()
    if text in STYLES:
        return _load_file(STYLE_DIR / f"{text}.yaml")
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in text:
        if not path.is_file():
            raise StyleError(f"style file not found: {path}")
        return _load_file(path)
    raise StyleError(f"unknown style {text!r}; known: {', '.join(STYLES)} (or the path of a style .yaml)")


def _load_file(path: Path) -> Style:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise StyleError(f"style {path}: not valid YAML: {err}") from None
    where = f"style {path.stem} ({path})"
    if not isinstance(raw, dict):
        raise StyleError(f"{where}: a style is a mapping with seed, layout and render")
    unknown = set(raw) - {"seed", "layout", "render"}
    missing = {"seed", "layout"} - set(raw)
    if unknown or missing:
        raise StyleError(f"{where}: keys are seed, layout and render; "
                         f"unknown {sorted(unknown)}, missing {sorted(missing)}")
    if not isinstance(raw["seed"], int) or isinstance(raw["seed"], bool) or raw["seed"] < 0:
        raise StyleError(f"{where}: seed is a non-negative integer, got {raw['seed']!r}")
    try:
        layout = layout_from_dict(raw["layout"])
    except LayoutError as err:
        raise StyleError(f"{where}: layout: {err}") from None
    _check_layout(layout, where)
    render = _render(raw.get("render") or {}, layout, where)
    return Style(name=path.stem, seed=raw["seed"], layout=layout, render=render)


def _check_layout(layout: Layout, where: str) -> None:
    """The aoi-v1 fields with their value semantics, boxes on the canvas, apart from each other and the object."""
    names, want = [f.name for f in layout.fields], [f.name for f in _AOI_V1.fields]
    if sorted(names) != sorted(want):
        raise StyleError(f"{where}: the layout needs exactly the aoi-v1 fields {want}; "
                         f"missing {sorted(set(want) - set(names))}, extra {sorted(set(names) - set(want))}")
    ref = {f.name: f for f in _AOI_V1.fields}
    for f in layout.fields:
        for attr in _SEMANTICS:
            if getattr(f, attr) != getattr(ref[f.name], attr):
                raise StyleError(f"{where}: field {f.name}: {attr} must stay {getattr(ref[f.name], attr)!r} "
                                 f"as in aoi-v1 (truth and the label model rely on it), got {getattr(f, attr)!r}")
    keys = [f.key for f in layout.fields]
    if len(set(keys)) != len(keys):
        raise StyleError(f"{where}: two fields print the same key: {sorted({k for k in keys if keys.count(k) > 1})}")
    width, height = layout.size
    boxes = [("object_roi", layout.object_roi)]
    for f in layout.fields:
        if f.roi is None:
            raise StyleError(f"{where}: field {f.name} needs a line box roi")
        boxes.append((f"field {f.name}", f.roi))
    for label, (x0, y0, x1, y1) in boxes:
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise StyleError(f"{where}: {label} {[x0, y0, x1, y1]} is not inside the {width}x{height} canvas")
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if overlap(box_a, box_b):
                raise StyleError(f"{where}: {a} {list(box_a)} overlaps {b} {list(box_b)}")


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _colour(value, mode: str, what: str, where: str) -> Colour:
    def level(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
    if level(value):
        return value
    if mode == "RGB" and isinstance(value, list) and len(value) == 3 and all(level(v) for v in value):
        return tuple(value)
    raise StyleError(f"{where}: render {what} is a gray level 0..255"
                     f"{' or [r, g, b]' if mode == 'RGB' else ' (mode L)'}, got {value!r}")


def _render(raw: dict, layout: Layout, where: str) -> Render:
    if not isinstance(raw, dict):
        raise StyleError(f"{where}: render is a mapping, got {raw!r}")
    known = {f.name for f in fields(Render)}
    unknown = set(raw) - known
    if unknown:
        raise StyleError(f"{where}: render: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    r = Render(**{k: v for k, v in raw.items() if k not in ("templates", "signed", "background", "ink")})
    if r.font not in FONTS:
        raise StyleError(f"{where}: render font {r.font!r} is not one of {sorted(FONTS)}")
    try:
        font_file(r.font)
    except FontError as err:
        raise StyleError(f"{where}: {err}") from None
    if not isinstance(r.font_size, int) or not 8 <= r.font_size <= 64:
        raise StyleError(f"{where}: render font_size is an integer 8..64 px, got {r.font_size!r}")
    if r.mode not in MODES:
        raise StyleError(f"{where}: render mode {r.mode!r} is not one of {MODES}")
    if r.image_format not in IMAGE_FORMATS:
        raise StyleError(f"{where}: render image_format {r.image_format!r} is not one of {sorted(IMAGE_FORMATS)}")
    if not isinstance(r.jpeg_quality, int) or not 1 <= r.jpeg_quality <= 95:
        raise StyleError(f"{where}: render jpeg_quality is an integer 1..95, got {r.jpeg_quality!r}")
    for what in ("noise_sd", "blur_radius"):
        v = getattr(r, what)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise StyleError(f"{where}: render {what} is a number >= 0, got {v!r}")
    templates = raw.get("templates") or []
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise StyleError(f"{where}: render templates is a list of line templates, got {templates!r}")
    for t in templates:
        if "{value}" not in t or re.sub(r"\{(key|value|unit)\}", "", t).count("{"):
            raise StyleError(f"{where}: render template {t!r} must hold {{value}} and only {{key}}, "
                             f"{{value}}, {{unit}} placeholders")
    if r.decimal_mark not in DECIMAL_MARKS or r.thousands not in THOUSANDS or r.thousands == r.decimal_mark:
        raise StyleError(f"{where}: render decimal_mark is one of {DECIMAL_MARKS} and thousands one of {THOUSANDS}, "
                         f"not the same mark; got {r.decimal_mark!r} and {r.thousands!r}")
    signed = raw.get("signed") or []
    numeric = {f.name for f in layout.fields if f.dtype in ("float", "int")}
    if not isinstance(signed, list) or not set(signed) <= numeric:
        raise StyleError(f"{where}: render signed lists numeric fields of the layout ({sorted(numeric)}), "
                         f"got {signed!r}")
    return Render(**{**r.__dict__, "templates": tuple(templates), "signed": tuple(signed),
                     "background": _colour(raw.get("background", r.background), r.mode, "background", where),
                     "ink": _colour(raw.get("ink", r.ink), r.mode, "ink", where)})


# --- legibility: does every line fit its box? -------------------------------------------

def extreme_values(f: Field) -> list:
    """Printed values that make the widest lines of a field: range ends, every category, every digit."""
    if f.categories:
        return list(f.categories)
    if f.dtype == "str":     # the aoi-v1 patterns: a fixed count of digits; try each digit everywhere
        sample = {"lot": "L2611-0001", "unit_id": "U000001"}.get(f.name, "X")
        return [re.sub(r"\d", str(d), sample) for d in range(10)]
    lo, hi = f.range
    out = []
    for v in (lo, hi):
        text = f.format_value(v)
        out += [text] + [re.sub(r"\d", str(d), text) for d in range(10)]
    return [float(v) for v in out]


def overflows(style: Style, font_size: int | None = None) -> list[str]:
    """Lines that do not fit inside their box (with the text inset), for extreme values."""
    r = style.render
    font = load_font(r.font, font_size or r.font_size)
    out = []
    for i, f in enumerate(style.layout.fields):
        x0, y0, x1, y1 = f.roi
        for value in extreme_values(f):
            line = r.line(f, value, i)
            bx0, by0, bx1, by1 = text_bbox((x0 + TEXT_INSET[0], y0 + TEXT_INSET[1]), line, font)
            if bx0 < x0 or by0 < y0 or bx1 > x1 or by1 > y1:
                out.append(f"{style.name} {f.name}: {line!r} ink {[bx0, by0, bx1, by1]} outside box {list(f.roi)}")
    return out
