"""Render an AOI image: the object in its box and the parameter panel around it.

The panel is light text on a dark background, one `KEY: VALUE UNIT` line per field,
drawn in its layout line box with Pillow's built-in font. The `noisy` preset imitates
a real AOI screen grab: text offset, font-size and contrast jitter, sensor noise,
slight blur and a JPEG round trip.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from oanet.layout import Layout

TEXT_INSET = (4, 5)   # where text starts inside its line box


@dataclass(frozen=True)
class PanelStyle:
    font_size: int = 18
    background: int = 24
    ink: int = 228
    offset: tuple[int, int] = (0, 0)   # text shift in pixels, applied to every line of an image
    noise_sd: float = 0.0
    blur_radius: float = 0.0
    jpeg_quality: int | None = None


PRESETS = ("clean", "noisy")


def draw_style(preset: str, rng: np.random.Generator) -> PanelStyle:
    """The style of one image under a preset; `noisy` draws its jitter from `rng`."""
    if preset == "clean":
        return PanelStyle()
    if preset != "noisy":
        raise ValueError(f"unknown preset {preset!r}; known: {PRESETS}")
    return PanelStyle(
        font_size=int(rng.integers(16, 21)),
        background=int(rng.integers(8, 56)),
        ink=int(rng.integers(170, 250)),
        offset=(int(rng.integers(-3, 4)), int(rng.integers(-3, 4))),
        noise_sd=float(rng.uniform(2.0, 6.0)),
        blur_radius=float(rng.uniform(0.3, 0.7)),
        jpeg_quality=int(rng.integers(75, 93)),
    )


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def compose(layout: Layout, object_img: np.ndarray, lines: dict[str, str], style: PanelStyle,
            rng: np.random.Generator) -> Image.Image:
    """One 8-bit grayscale AOI image.

    object_img: (h, w) uint8 with h, w the object box's size; lines: field name -> printed line.
    """
    width, height = layout.size
    canvas = Image.new("L", (width, height), color=style.background)
    x0, y0, x1, y1 = layout.object_roi
    if object_img.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"object image is {object_img.shape}, the object box needs {(y1 - y0, x1 - x0)}")
    canvas.paste(Image.fromarray(object_img, mode="L"), (x0, y0))
    draw = ImageDraw.Draw(canvas)
    font = _font(style.font_size)
    for f in layout.fields:
        if f.name not in lines or f.roi is None:
            continue
        bx, by = f.roi[0] + TEXT_INSET[0] + style.offset[0], f.roi[1] + TEXT_INSET[1] + style.offset[1]
        draw.text((bx, by), lines[f.name], fill=style.ink, font=font)
    return degrade(canvas, style, rng)


def degrade(img: Image.Image, style: PanelStyle, rng: np.random.Generator) -> Image.Image:
    """Blur, sensor noise and JPEG round trip, as a screen grab of a real machine shows."""
    if style.blur_radius > 0:
        img = img.filter(ImageFilter.GaussianBlur(style.blur_radius))
    if style.noise_sd > 0:
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, style.noise_sd, (img.height, img.width))
        img = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), mode="L")
    if style.jpeg_quality:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=style.jpeg_quality)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    return img
