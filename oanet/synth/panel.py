"""Render an AOI image: the object in its box and the parameter panel around it.

The panel prints one line per field inside its layout line box. The look comes from a
`PanelStyle`: font (Pillow's built-in font or one of matplotlib's bundled DejaVu
and STIX TrueType fonts), size, 8-bit grayscale or RGB, background and ink colours (light on
dark or dark on light), sensor noise, blur and a JPEG round trip. The default
`PanelStyle()` is the `aoi-v1` look: light text on a dark background, built-in font,
18 px, grayscale. The `noisy` preset imitates a real AOI screen grab on top of a style:
text offset, font-size and contrast jitter, sensor noise, slight blur and a JPEG round trip.

The object image arrives at its source's size; it is resized (Lanczos) to the layout's
object box when the sizes differ.

None of the fonts has a glyph for the full-width colon `：` that some machines print as
a separator; it is drawn as a `:` centred in a cell one em wide, as a CJK font shows it.
"""
from __future__ import annotations

import io
import typing
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from oanet.config import Preset
from oanet.errors import OanetError
from oanet.layout import Layout

TEXT_INSET = (4, 5)   # where text starts inside its line box
MODES = ("L", "RGB")
# Font name -> TrueType file among matplotlib's bundled fonts; "builtin" is Pillow's own font.
FONTS = {"builtin": None, "dejavu-sans": "DejaVuSans.ttf", "dejavu-sans-mono": "DejaVuSansMono.ttf",
         "dejavu-serif": "DejaVuSerif.ttf", "stix": "STIXGeneral.ttf"}
WIDE = {"：": ":"}     # full-width characters no font here has -> the glyph drawn centred in a 1-em cell
AOI_V1_CONTRAST = 204  # ink 228 on background 24: the contrast the noisy preset's jitter was made for

Colour = int | tuple[int, int, int]


class FontError(OanetError, ValueError):
    """A panel font that is unknown or whose file is missing."""


@dataclass(frozen=True)
class PanelStyle:
    font_size: int = 18
    background: Colour = 24            # gray level, or (r, g, b) in RGB mode
    ink: Colour = 228
    offset: tuple[int, int] = (0, 0)   # text shift in pixels, applied to every line of an image
    noise_sd: float = 0.0
    blur_radius: float = 0.0
    jpeg_quality: int | None = None    # JPEG round trip inside the image (the saved file's format is the stage's)
    font: str = "builtin"              # a key of FONTS
    mode: str = "L"                    # L (8-bit grayscale) | RGB


PRESETS: tuple[str, ...] = typing.get_args(Preset)


def _luma(colour: Colour) -> float:
    return float(np.mean(colour))


def _shift(colour: Colour, delta: float) -> Colour:
    if isinstance(colour, tuple):
        return tuple(int(np.clip(round(c + delta), 0, 255)) for c in colour)
    return int(np.clip(round(colour + delta), 0, 255))


def draw_style(preset: str, rng: np.random.Generator, base: PanelStyle = PanelStyle()) -> PanelStyle:
    """The style of one image under a preset; `noisy` draws its jitter from `rng`.

    The jitter is relative to `base`: font size +-2, background and ink moved toward each
    other or apart by an amount scaled to the base contrast (polarity kept), plus offset,
    noise, blur and a JPEG round trip. With the default base it is the aoi-v1 noisy look.
    """
    if preset == "clean":
        return base
    if preset != "noisy":
        raise ValueError(f"unknown preset {preset!r}; known: {PRESETS}")
    font_size = base.font_size + int(rng.integers(-2, 3))
    direction = 1.0 if _luma(base.ink) >= _luma(base.background) else -1.0
    scale = direction * abs(_luma(base.ink) - _luma(base.background)) / AOI_V1_CONTRAST
    background = _shift(base.background, (int(rng.integers(8, 56)) - 24) * scale)
    ink = _shift(base.ink, (int(rng.integers(170, 250)) - 228) * scale)
    return replace(
        base, font_size=font_size, background=background, ink=ink,
        offset=(int(rng.integers(-3, 4)), int(rng.integers(-3, 4))),
        noise_sd=base.noise_sd + float(rng.uniform(2.0, 6.0)),
        blur_radius=base.blur_radius + float(rng.uniform(0.3, 0.7)),
        jpeg_quality=int(rng.integers(75, 93)),
    )


def font_file(name: str) -> Path | None:
    """The TrueType file of a panel font (None for Pillow's built-in font)."""
    if name not in FONTS:
        raise FontError(f"unknown panel font {name!r}; known: {sorted(FONTS)}")
    if FONTS[name] is None:
        return None
    try:
        import matplotlib
    except ImportError:
        raise FontError(f"panel font {name!r} ({FONTS[name]}) is taken from matplotlib's bundled fonts, "
                        f"but matplotlib is not installed") from None
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[name]
    if not path.is_file():
        raise FontError(f"panel font {name!r}: {FONTS[name]} not found at {path}")
    return path


@lru_cache(maxsize=64)
def load_font(name: str = "builtin", size: int = 18) -> ImageFont.FreeTypeFont:
    path = font_file(name)
    return ImageFont.load_default(size=size) if path is None else ImageFont.truetype(str(path), size)


def _segments(text: str, font: ImageFont.FreeTypeFont) -> list[tuple[float, str]]:
    """(x offset, text) runs to draw; a WIDE character becomes its glyph centred in a 1-em cell."""
    if not any(c in WIDE for c in text):
        return [(0, text)]
    out, x, run = [], 0.0, ""
    for c in text:
        if c not in WIDE:
            run += c
            continue
        if run:
            out.append((x, run))
            x += font.getlength(run)
            run = ""
        glyph = WIDE[c]
        out.append((x + (font.size - font.getlength(glyph)) / 2, glyph))
        x += font.size
    if run:
        out.append((x, run))
    return out


def draw_line(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, fill: Colour) -> None:
    x, y = xy
    for dx, run in _segments(text, font):
        draw.text((x + dx, y), run, fill=fill, font=font)


def text_bbox(xy: tuple[float, float], text: str, font) -> tuple[float, float, float, float]:
    """Ink box (x0, y0, x1, y1) of a line drawn at `xy` by `draw_line`."""
    x, y = xy
    boxes = [font.getbbox(run) for _, run in _segments(text, font)]
    offsets = [dx for dx, _ in _segments(text, font)]
    return (x + min(dx + b[0] for dx, b in zip(offsets, boxes, strict=True)), y + min(b[1] for b in boxes),
            x + max(dx + b[2] for dx, b in zip(offsets, boxes, strict=True)), y + max(b[3] for b in boxes))


def _colour(colour: Colour, mode: str) -> Colour:
    if mode == "RGB" and not isinstance(colour, tuple):
        return (colour, colour, colour)
    if mode == "L" and isinstance(colour, tuple):
        raise ValueError(f"a grayscale panel takes gray levels, got the colour {colour}")
    return colour


def compose(layout: Layout, object_img: np.ndarray, lines: dict[str, str], style: PanelStyle,
            rng: np.random.Generator) -> Image.Image:
    """One AOI image, 8-bit grayscale or RGB as `style.mode` says.

    object_img: (h, w) or (h, w, 3) uint8, resized to the object box when its size differs;
    lines: field name -> printed line.
    """
    if style.mode not in MODES:
        raise ValueError(f"unknown image mode {style.mode!r}; known: {MODES}")
    width, height = layout.size
    canvas = Image.new(style.mode, (width, height), color=_colour(style.background, style.mode))
    x0, y0, x1, y1 = layout.object_roi
    obj = Image.fromarray(object_img)
    if obj.size != (x1 - x0, y1 - y0):
        obj = obj.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
    canvas.paste(obj if obj.mode == style.mode else obj.convert(style.mode), (x0, y0))
    draw = ImageDraw.Draw(canvas)
    font = load_font(style.font, style.font_size)
    ink = _colour(style.ink, style.mode)
    for f in layout.fields:
        if f.name not in lines or f.roi is None:
            continue
        bx, by = f.roi[0] + TEXT_INSET[0] + style.offset[0], f.roi[1] + TEXT_INSET[1] + style.offset[1]
        draw_line(draw, (bx, by), lines[f.name], font, ink)
    return degrade(canvas, style, rng)


def degrade(img: Image.Image, style: PanelStyle, rng: np.random.Generator) -> Image.Image:
    """Blur, sensor noise and JPEG round trip, as a screen grab of a real machine shows."""
    mode = img.mode
    if style.blur_radius > 0:
        img = img.filter(ImageFilter.GaussianBlur(style.blur_radius))
    if style.noise_sd > 0:
        shape = (img.height, img.width) if mode == "L" else (img.height, img.width, len(mode))
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, style.noise_sd, shape)
        img = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), mode=mode)
    if style.jpeg_quality:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=style.jpeg_quality)
        img = Image.open(io.BytesIO(buf.getvalue())).convert(mode)
    return img
