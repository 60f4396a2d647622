"""Object images for the AOI object box: procedural tiles, or real magnetic-tile photographs.

A source is a callable `source(index, rng) -> ObjectSample`, so the stage can render
units in any order or in parallel and still get the same object for the same index, and
`source.lot_of(index, units_per_lot)` says which lot that unit belongs to. A sample
carries the tile's box inside the object image, so the printed statistics describe the
tile and not the black around it (whose share would give away the tile's aspect ratio).

- `ProceduralObjects`: brushed-metal tiles with subtle defects, drawn from `rng`; every
  unit is its own tile, so lots are plain runs of `units_per_lot` units.
- `TileFolder`: a folder laid out like the magnetic-tile data set,
  `MT_<Class>/Imgs/*.jpg` (masks `*.png` are ignored). `MT_Free` is defect-free, any
  other class name is the defect type. Each physical tile is photographed at several
  exposures (see `tiles`); the photos of one tile stay consecutive and are used in a
  seed-shuffled order of tiles, without replacement (cycled when more units than photos
  are asked for). Lots are packed from whole tiles, so no tile spans two lots and a split
  by lot keeps every exposure of a tile on one side. Photos are fitted into the square
  box, aspect kept, centred on black. LIGHT is the acquisition batch N of the `expN_`
  name prefix, with exp0 (3 photos) counted as 1; a name without the prefix gets a
  random light.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from oanet.synth.tiles import pack_lots, photo_sizes, tile_groups

SIZE = 320
LIGHTS = (1, 6)
PROCEDURAL = "procedural"
_EXP = re.compile(r"^exp(\d+)_")


Box = tuple[int, int, int, int]   # x0, y0, x1, y1: columns x0..x1-1, rows y0..y1-1


class ObjectSample(NamedTuple):
    image: np.ndarray          # (SIZE, SIZE) uint8
    defect_type: str | None    # None: defect-free
    light: int                 # 1..6
    source: str                # "procedural" or the photo's path relative to its folder
    tile_box: Box              # where the tile lies in `image`; outside it is padding

    @property
    def tile(self) -> np.ndarray:
        """The pixels inside the tile box: what the printed statistics are measured on."""
        x0, y0, x1, y1 = self.tile_box
        return self.image[y0:y1, x0:x1]


class ObjectSource(Protocol):
    def __call__(self, index: int, rng: np.random.Generator) -> ObjectSample: ...

    def lot_of(self, index: int, units_per_lot: int) -> int:
        """The 0-based lot of unit `index`."""
        ...


def random_light(rng: np.random.Generator) -> int:
    return int(rng.integers(LIGHTS[0], LIGHTS[1] + 1))


# --- Procedural tiles -------------------------------------------------------------
# All drawing is vectorised numpy on float32: a tile costs a few milliseconds.
# Defect drawers edit `shade` (multiplicative brightness) and `mask` (tile vs background)
# in place; their sizes are set so a defect is visible to a careful eye but not glaring.


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates, shaped to broadcast: (size, 1) and (1, size)."""
    ax = np.arange(size, dtype=np.float32)
    return ax[:, None], ax[None, :]


def _smooth_noise(rng: np.random.Generator, n: int, sd: float, width: int = 3) -> np.ndarray:
    return np.convolve(rng.normal(0.0, sd, n), np.ones(width) / width, mode="same").astype(np.float32)


def _tile_box(rng: np.random.Generator, size: int) -> Box:
    w, h = int(rng.integers(190, 301)), int(rng.integers(200, 311))
    x0 = int(np.clip((size - w) // 2 + rng.integers(-8, 9), 2, size - w - 2))
    y0 = int(np.clip((size - h) // 2 + rng.integers(-8, 9), 2, size - h - 2))
    return x0, y0, x0 + w, y0 + h


def _streaks(rng: np.random.Generator, size: int) -> np.ndarray:
    """Relative brightness per column: fine grinding marks plus a few bright scratches."""
    s = _smooth_noise(rng, size, 0.06)
    bright = rng.random(size) < 0.05
    s[bright] += rng.uniform(0.08, 0.30, int(bright.sum())).astype(np.float32)
    return s[None, :]


def _brushed_metal(rng: np.random.Generator, light: int, size: int) -> np.ndarray:
    yy, xx = _grid(size)
    t = yy / size                                   # streaks fade from one profile to another down the tile
    streak = _streaks(rng, size) * (1 - t) + _streaks(rng, size) * t
    u, v = xx / size - 0.5, yy / size - 0.5         # illumination: tilt plus a bow across the curved tile
    illum = 1 + rng.uniform(-0.3, 0.3) * u + rng.uniform(-0.3, 0.3) * v - rng.uniform(0.2, 0.8) * u * u
    base = 50.0 + 9.0 * light + rng.normal(0.0, 6.0)  # brighter lighting batches give brighter tiles
    noise = rng.standard_normal((size, size), dtype=np.float32) * rng.uniform(2.0, 4.0)
    return base * illum * (1 + streak) + noise


def _inside(rng: np.random.Generator, box: Box, margin: int) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return float(rng.uniform(x0 + margin, x1 - margin)), float(rng.uniform(y0 + margin, y1 - margin))


def _blowhole(rng, box, shade, mask) -> None:
    """1-3 small dark round pits with soft rims."""
    yy, xx = _grid(shade.shape[0])
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = _inside(rng, box, 15)
        r, depth = rng.uniform(2.0, 5.0), rng.uniform(0.35, 0.6)
        ys = slice(max(int(cy - 3 * r), 0), int(cy + 3 * r) + 1)    # only the pit's neighbourhood
        xs = slice(max(int(cx - 3 * r), 0), int(cx + 3 * r) + 1)
        d2 = (yy[ys] - cy) ** 2 + (xx[:, xs] - cx) ** 2
        shade[ys, xs] *= 1 - depth * np.exp(-d2 / (r * r))


def _crack(rng, box, shade, mask) -> None:
    """A thin dark jagged line: a random walk that keeps its overall direction."""
    n = int(rng.integers(60, 160))
    angles = rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.6, n) + np.cumsum(rng.normal(0, 0.05, n))
    cx, cy = _inside(rng, box, 20)
    xs, ys = cx + np.cumsum(np.cos(angles)), cy + np.cumsum(np.sin(angles))
    x0, y0, x1, y1 = box
    keep = (xs >= x0) & (xs < x1 - 1) & (ys >= y0) & (ys < y1 - 1)   # the part that runs off the tile is lost
    xs, ys = xs[keep].astype(int), ys[keep].astype(int)
    depth = rng.uniform(0.35, 0.55)
    shade[ys, xs] *= 1 - depth
    shade[ys + 1, xs] *= 1 - depth / 2          # a faint second pixel: cracks are not perfectly thin
    shade[ys, xs + 1] *= 1 - depth / 3


def _break(rng, box, shade, mask) -> None:
    """A piece chipped off: a triangle at a corner or a bite out of an edge, with a rough rim."""
    size = shade.shape[0]
    yy, xx = _grid(size)
    x0, y0, x1, y1 = box
    jag = _smooth_noise(rng, size, 0.08)[:, None] + _smooth_noise(rng, size, 0.08)[None, :]
    if rng.random() < 0.6:
        cx, cy = (x0, x1)[rng.integers(2)], (y0, y1)[rng.integers(2)]
        a, b = rng.uniform(18, 45, 2)
        dist = np.abs(xx - cx) / a + np.abs(yy - cy) / b + jag
    else:
        ra, rb = rng.uniform(10, 28), rng.uniform(6, 16)
        if rng.random() < 0.5:    # bite from the top or bottom edge
            cx, cy = rng.uniform(x0 + ra, x1 - ra), (y0, y1)[rng.integers(2)]
            dist = ((xx - cx) / ra) ** 2 + ((yy - cy) / rb) ** 2 + jag
        else:                     # bite from the left or right edge
            cx, cy = (x0, x1)[rng.integers(2)], rng.uniform(y0 + ra, y1 - ra)
            dist = ((xx - cx) / rb) ** 2 + ((yy - cy) / ra) ** 2 + jag
    mask &= ~(dist < 1)
    shade[(dist >= 1) & (dist < 1.15)] *= 0.8


def _fray(rng, box, shade, mask) -> None:
    """A ragged stretch of one edge: the edge eaten in by a rough profile, darkened behind it."""
    size = shade.shape[0]
    yy, xx = _grid(size)
    x0, y0, x1, y1 = box
    side = int(rng.integers(4))
    lo, hi = (y0, y1) if side < 2 else (x0, x1)
    length = rng.uniform(60, min(160, hi - lo))
    start = rng.uniform(lo, hi - length)
    pos = np.arange(size, dtype=np.float32)
    window = np.clip(np.sin(np.pi * (pos - start) / length), 0, None) * ((pos >= start) & (pos <= start + length))
    depth = rng.uniform(4, 9) * window * (np.abs(_smooth_noise(rng, size, 1.0, 2)) + 0.3)
    into = (xx - x0, x1 - 1 - xx, yy - y0, y1 - 1 - yy)[side]      # distance from the chosen edge
    prof = depth[:, None] if side < 2 else depth[None, :]
    mask &= ~(into < prof)
    shade[(into >= prof) & (into < 1.5 * prof + 3) & (prof > 0.5)] *= 0.75


def _uneven(rng, box, shade, mask) -> None:
    """A low-frequency patch brighter or darker than the rest of the surface."""
    yy, xx = _grid(shade.shape[0])
    cx, cy = _inside(rng, box, 30)
    sx, sy = rng.uniform(30, 80, 2)
    amp = rng.choice((-1.0, 1.0)) * rng.uniform(0.12, 0.25)
    shade *= 1 + amp * np.exp(-(((yy - cy) / sy) ** 2)) * np.exp(-(((xx - cx) / sx) ** 2))


DRAWERS = {"Blowhole": _blowhole, "Break": _break, "Crack": _crack, "Fray": _fray, "Uneven": _uneven}


def render_tile(rng: np.random.Generator, light: int, defect: str | None,
                size: int = SIZE) -> tuple[np.ndarray, Box]:
    """One brushed-metal tile on a dark background, with `defect` drawn on it (None: none), and its box."""
    box = _tile_box(rng, size)
    yy, xx = _grid(size)
    mask = (xx >= box[0]) & (xx < box[2]) & (yy >= box[1]) & (yy < box[3])
    shade = np.ones((size, size), dtype=np.float32)
    surface = _brushed_metal(rng, light, size)
    if defect is not None:
        DRAWERS[defect](rng, box, shade, mask)
    background = rng.uniform(3.0, 12.0)
    img = np.where(mask, surface * shade, np.float32(background))
    return np.clip(img, 0, 255).round().astype(np.uint8), box


class ProceduralObjects:
    """Brushed-metal tiles; `defect_rate` of them carry one defect drawn by `defect_weights`."""

    def __init__(self, defect_rate: float, defect_weights: Mapping[str, float], size: int = SIZE):
        unknown = set(defect_weights) - set(DRAWERS)
        if unknown:
            raise ValueError(f"no procedural drawer for defect types {sorted(unknown)}; known: {sorted(DRAWERS)}")
        self.defect_rate, self.size = defect_rate, size
        self.types = tuple(defect_weights)
        weights = np.asarray([defect_weights[t] for t in self.types], dtype=float)
        if not len(weights) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"defect_weights need non-negative weights, positive sum: {dict(defect_weights)}")
        self.probs = weights / weights.sum()

    def __call__(self, index: int, rng: np.random.Generator) -> ObjectSample:
        defect = None
        if rng.random() < self.defect_rate:
            defect = self.types[int(rng.choice(len(self.types), p=self.probs))]
        light = random_light(rng)
        image, box = render_tile(rng, light, defect, self.size)
        return ObjectSample(image, defect, light, PROCEDURAL, box)

    def lot_of(self, index: int, units_per_lot: int) -> int:
        """Every unit is its own tile: lots are consecutive runs of `units_per_lot` units."""
        return index // units_per_lot


def list_tiles(folder: str | Path) -> list[tuple[Path, str | None]]:
    """(photo, defect type) for every MT_<Class>/Imgs/*.jpg, sorted; a clear error when none."""
    folder = Path(folder)
    paths = sorted(folder.glob("MT_*/Imgs/*.jpg")) if folder.is_dir() else []
    if not paths:
        what = "is not a folder" if not folder.is_dir() else "holds no MT_<Class>/Imgs/*.jpg"
        raise FileNotFoundError(f"objects folder {folder} {what}; expected the magnetic-tile layout "
                                "MT_<Class>/Imgs/*.jpg with MT_Free for defect-free objects")
    return [(p, _defect_of(p.parent.parent.name)) for p in paths]


def _defect_of(class_dir: str) -> str | None:
    name = class_dir.removeprefix("MT_")
    return None if name == "Free" else name


def light_from_name(name: str) -> int | None:
    """LIGHT from an `expN_` prefix: N, with exp0 counted as 1; None without a usable prefix."""
    m = _EXP.match(name)
    if not m or int(m.group(1)) > LIGHTS[1]:
        return None
    return max(int(m.group(1)), LIGHTS[0])


def fit_square(path: Path, size: int = SIZE) -> tuple[np.ndarray, Box]:
    """The photo scaled to fit a size x size box, aspect kept, centred, padded black; and its box."""
    from PIL import Image

    with Image.open(path) as im:
        im.draft("L", (size, size))   # JPEG: decode at a reduced scale when the photo is much larger
        im = im.convert("L")
    scale = min(size / im.width, size / im.height)
    w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
    im = im.resize((w, h), Image.Resampling.BILINEAR)
    out = np.zeros((size, size), dtype=np.uint8)
    y0, x0 = (size - h) // 2, (size - w) // 2
    out[y0:y0 + h, x0:x0 + w] = np.asarray(im)
    return out, (x0, y0, x0 + w, y0 + h)


def _members(groups: list[int]) -> list[list[int]]:
    """Indices of each group's members, by group id."""
    members: list[list[int]] = [[] for _ in range(max(groups, default=-1) + 1)]
    for i, g in enumerate(groups):
        members[g].append(i)
    return members


class TileFolder:
    """Real photographs from a magnetic-tile-like folder, whole tiles in an order shuffled by `rng`."""

    def __init__(self, folder: str | Path, rng: np.random.Generator, size: int = SIZE):
        self.folder, self.size = Path(folder), size
        tiles = list_tiles(self.folder)
        members = _members(tile_groups(photo_sizes(p for p, _ in tiles)))
        shuffled = [members[g] for g in rng.permutation(len(members))]
        self.tiles = [tiles[i] for group in shuffled for i in group]      # siblings consecutive
        self.group_sizes = [len(group) for group in shuffled]              # in unit order
        self._lots: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.tiles)

    def __call__(self, index: int, rng: np.random.Generator) -> ObjectSample:
        path, defect = self.tiles[index % len(self.tiles)]
        light = light_from_name(path.name) or random_light(rng)
        image, box = fit_square(path, self.size)
        return ObjectSample(image, defect, light, path.relative_to(self.folder).as_posix(), box)

    def lot_of(self, index: int, units_per_lot: int) -> int:
        """Whole tiles packed into lots of at most `units_per_lot` units.

        A re-used photo (index past the end) keeps the lot of its first use, with its
        siblings, so that lot grows past `units_per_lot` rather than a tile spanning two lots.
        """
        if units_per_lot not in self._lots:
            self._lots[units_per_lot] = pack_lots(self.group_sizes, units_per_lot)
        return self._lots[units_per_lot][index % len(self.tiles)]


def object_source(objects: str | Path | None, defect_rate: float, defect_weights: Mapping[str, float],
                  rng: np.random.Generator) -> ObjectSource:
    """The folder source when `objects` is set, else the procedural one."""
    if objects:
        return TileFolder(objects, rng)
    return ProceduralObjects(defect_rate, defect_weights)
