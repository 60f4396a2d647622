"""Tile groups (exposures of one physical tile) and lot packing that keeps a tile whole."""
from __future__ import annotations

from pathlib import Path

import pytest

from oanet.synth.tiles import frame_number, pack_lots, photo_sizes, tile_groups

MT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "magnetic-tile"


def _photo(cls: str, name: str, size: tuple[int, int]) -> tuple[Path, tuple[int, int]]:
    return Path(f"MT_{cls}/Imgs/{name}.jpg"), size


def test_frame_number():
    assert frame_number(Path("MT_Free/Imgs/exp4_num_297524.jpg")) == 297524
    assert frame_number(Path("MT_Free/Imgs/photo.jpg")) is None


def test_siblings_link_in_chains_within_size_tolerance():
    photos = [_photo("Blowhole", "exp4_num_1000", (200, 300)),
              _photo("Blowhole", "exp5_num_1150", (203, 296)),    # 4 px and 150 frames from the first
              _photo("Blowhole", "exp6_num_1350", (201, 300)),    # 350 from the first: linked via the second
              _photo("Blowhole", "exp1_num_1100", (208, 300)),    # 5 px wider than the widest of the chain
              _photo("Crack", "exp4_num_1000", (200, 300)),       # same frame and size, other class
              _photo("Blowhole", "exp2_num_1551", (201, 300)),    # 201 frames after the chain's end
              _photo("Blowhole", "photo", (200, 300)),            # no frame number: alone
              _photo("Blowhole", "other", (200, 300))]
    assert tile_groups(photos) == [0, 0, 0, 1, 2, 3, 4, 5]


def test_groups_do_not_depend_on_input_order():
    photos = [_photo("Free", f"exp{e}_num_{f}", (100, 100)) for e, f in ((1, 900), (2, 500), (3, 700), (4, 100))]
    assert tile_groups(photos) == [0, 0, 0, 1]
    assert tile_groups(photos[::-1]) == [0, 1, 1, 1]


def test_pack_lots_keeps_groups_whole():
    assert pack_lots([3, 2, 4, 1, 5], 5) == [0] * 5 + [1] * 5 + [2] * 5
    assert pack_lots([2, 3, 1], 4) == [0, 0, 1, 1, 1, 1]          # 2 + 3 would overflow: a new lot
    assert pack_lots([2, 7, 1], 4) == [0, 0] + [1] * 7 + [2]       # too big for any lot: one of its own
    assert pack_lots([], 4) == []


@pytest.mark.slow
@pytest.mark.skipif(not MT.is_dir(), reason="the magnetic-tile folder is not here")
def test_real_folder_groups_exposures_into_tiles():
    paths = sorted(MT.glob("MT_*/Imgs/*.jpg"))
    groups = tile_groups(photo_sizes(paths))
    assert len(paths) == 1344 and 700 <= len(set(groups)) <= 850
    names = [p.relative_to(MT).as_posix() for p in paths]
    blowhole = {groups[names.index(f"MT_Blowhole/Imgs/{n}.jpg")]
                for n in ("exp4_num_297524", "exp5_num_297552", "exp6_num_297601")}
    assert len(blowhole) == 1
