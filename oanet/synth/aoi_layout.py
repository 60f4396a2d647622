"""The `aoi-v1` layout that `oanet synth` prints: 640x480, object lower-left, 13 fields."""
from __future__ import annotations

from oanet.layout import Field, Layout

WIDTH, HEIGHT = 640, 480
OBJECT_ROI = (0, 160, 320, 480)
LINE_W, LINE_H = 220, 30          # line box; text is drawn 4 px right and 5 px below its corner
TOP_ROWS = (8, 46, 84, 122)       # top band, two columns
TOP_COLS = (10, 330)
RIGHT_ROWS = (175, 235, 295, 355, 415)
RIGHT_COL = 330

# (name, key, dtype, unit, range, role, decimals, pattern, categories)
FIELD_SPECS = (
    ("lot", "LOT", "str", None, None, "group", None, r"L\d{4}-\d{4}", None),
    ("unit_id", "UNIT", "str", None, None, "id", None, r"U\d{6}", None),
    ("station", "STN", "category", None, None, "feature", None, None, ("AOI-01", "AOI-02", "AOI-03", "AOI-04")),
    ("light", "LIGHT", "category", None, None, "feature", None, None, ("1", "2", "3", "4", "5", "6")),
    ("exposure_ms", "EXPO", "float", "ms", (0.0, 40.0), "feature", 1, None, None),
    ("gain_db", "GAIN", "float", "dB", (-5.0, 20.0), "feature", 1, None, None),
    ("gray_mean", "MEAN", "float", None, (0.0, 255.0), "feature", 1, None, None),
    ("gray_std", "STD", "float", None, (0.0, 128.0), "feature", 1, None, None),
    ("dark_pct", "DARK", "float", "%", (0.0, 100.0), "feature", 2, None, None),
    ("edge_frac", "EDGE", "float", None, (0.0, 1.0), "feature", 4, None, None),
    ("sinter_temp_c", "TEMP", "float", "C", (900.0, 1400.0), "feature", 1, None, None),
    ("press_mpa", "PRESS", "float", "MPa", (20.0, 80.0), "feature", 2, None, None),
    ("thickness_mm", "THICK", "float", "mm", (3.5, 4.5), "feature", 3, None, None),
)


def line_boxes() -> list[tuple[int, int, int, int]]:
    """Line boxes in field order: the top band row by row, then the right column."""
    top = [(x, y, x + LINE_W, y + LINE_H) for y in TOP_ROWS for x in TOP_COLS]
    right = [(RIGHT_COL, y, RIGHT_COL + LINE_W, y + LINE_H) for y in RIGHT_ROWS]
    return top + right


def aoi_v1_layout(with_boxes: bool = True) -> Layout:
    fields = tuple(
        Field(name=n, key=k, dtype=d, unit=u, range=r, role=role, roi=box if with_boxes else None,
              decimals=dec, pattern=pat, categories=cats)
        for (n, k, d, u, r, role, dec, pat, cats), box in zip(FIELD_SPECS, line_boxes(), strict=True)
    )
    return Layout(name="aoi-v1", size=(WIDTH, HEIGHT), object_roi=OBJECT_ROI, fields=fields)
