"""Which magnetic-tile photographs show one physical tile, and lots that keep a tile whole.

The data set photographs each tile at several exposures, `expN_num_FRAME.jpg`: the siblings
sit in one class folder, have the same crop size within a few pixels and nearby frame
numbers (`exp4_num_297524`, `exp5_num_297552`, `exp6_num_297601` are one blowhole). A
split that puts siblings on both sides leaks, so the synth stage keeps a tile in one lot.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

SIZE_TOL = 4       # px, width and height: one crop, re-cut per exposure
FRAME_TOL = 200    # frame numbers: the exposures of one tile are taken close together
_FRAME = re.compile(r"_num_(\d+)$")

PhotoSize = tuple[Path, tuple[int, int]]   # photo, (width, height)


def frame_number(path: Path) -> int | None:
    """FRAME of an `..._num_FRAME.jpg` name; None when the name has none."""
    m = _FRAME.search(path.stem)
    return int(m.group(1)) if m else None


def photo_sizes(paths: Iterable[Path]) -> list[PhotoSize]:
    """(photo, (width, height)); PIL reads only the header, no pixel is decoded."""
    from PIL import Image

    def size(path: Path) -> tuple[int, int]:
        with Image.open(path) as im:
            return im.size
    return [(p, size(p)) for p in paths]


def _same_crop(a: PhotoSize, b: PhotoSize) -> bool:
    """Same class folder and the same size within SIZE_TOL."""
    (pa, (wa, ha)), (pb, (wb, hb)) = a, b
    return pa.parent == pb.parent and abs(wa - wb) <= SIZE_TOL and abs(ha - hb) <= SIZE_TOL


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]      # path halving keeps later look-ups short
        i = parent[i]
    return i


def tile_groups(photos: Sequence[PhotoSize]) -> list[int]:
    """The tile group of each photo, numbered 0.. in order of first appearance.

    Siblings are linked pairwise and groups are the connected components, so a chain of
    exposures whose ends are more than FRAME_TOL apart is still one tile. A photo without a
    frame number cannot be matched and is a group of its own.
    """
    parent = list(range(len(photos)))
    frames = [frame_number(p) for p, _ in photos]
    framed = sorted((i for i, f in enumerate(frames) if f is not None), key=frames.__getitem__)
    for k, i in enumerate(framed):                 # sorted by frame: stop at the first too far
        for j in framed[k + 1:]:
            if frames[j] - frames[i] > FRAME_TOL:
                break
            if _same_crop(photos[i], photos[j]):
                parent[_root(parent, j)] = _root(parent, i)
    ids: dict[int, int] = {}
    return [ids.setdefault(_root(parent, i), len(ids)) for i in range(len(photos))]


def pack_lots(group_sizes: Sequence[int], capacity: int) -> list[int]:
    """The 0-based lot of each unit, for groups of `group_sizes` consecutive units.

    Groups are taken in order and never split: a new lot starts when the next group would
    overflow the current one, and a group larger than `capacity` fills a lot of its own.
    """
    lots, lot, filled = [], 0, 0
    for size in group_sizes:
        if filled and filled + size > capacity:
            lot, filled = lot + 1, 0
        lots += [lot] * size
        filled += size
    return lots
