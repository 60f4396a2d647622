"""The OCR read cache: keyed by image content and OCR settings, optional."""
from __future__ import annotations

import dataclasses
import threading

from oanet.config import IngestConfig
from oanet.ingest.cache import ReadCache
from oanet.ingest.stage import cache_settings
from oanet.synth.aoi_layout import aoi_v1_layout

READS = [["L2611-0001", 0.99], None, ["1121.8 C", 0.97]]


def test_put_get_round_trip(tmp_path):
    cache = ReadCache(tmp_path / "c.sqlite", "s1")
    cache.put_many({"aa": READS, "bb": [None]})
    assert cache.get_many(["aa", "bb", "cc"]) == {"aa": READS, "bb": [None]}
    assert cache.get_many([]) == {}
    cache.close()


def test_entries_survive_reopening(tmp_path):
    path = tmp_path / "sub" / "c.sqlite"            # missing parent folders are created
    cache = ReadCache(path, "s1")
    cache.put_many({"aa": READS})
    cache.close()
    again = ReadCache(path, "s1")
    assert again.get_many(["aa"]) == {"aa": READS}
    again.close()


def test_settings_keep_entries_apart(tmp_path):
    path = tmp_path / "c.sqlite"
    one, two = ReadCache(path, "s1"), ReadCache(path, "s2")
    one.put_many({"aa": READS})
    assert two.get_many(["aa"]) == {}
    two.put_many({"aa": [["other", 0.5]]})
    assert one.get_many(["aa"]) == {"aa": READS}
    assert two.get_many(["aa"]) == {"aa": [["other", 0.5]]}
    one.close()
    two.close()


def test_put_replaces(tmp_path):
    cache = ReadCache(tmp_path / "c.sqlite", "s")
    cache.put_many({"aa": READS})
    cache.put_many({"aa": [None]})
    assert cache.get_many(["aa"]) == {"aa": [None]}
    cache.close()


def test_none_path_disables(tmp_path):
    cache = ReadCache(None, "s1")
    cache.put_many({"aa": READS})
    assert cache.get_many(["aa"]) == {}
    cache.close()
    assert list(tmp_path.iterdir()) == []


def test_many_digests_in_one_lookup(tmp_path):
    cache = ReadCache(tmp_path / "c.sqlite", "s")
    items = {f"{i:064x}": [[str(i), 0.9]] for i in range(1234)}      # more than SQLite's bound-parameter chunk
    cache.put_many(items)
    assert cache.get_many(list(items) + ["missing"]) == items
    cache.close()


def test_usable_from_another_thread(tmp_path):
    """Ingest looks entries up on its loader thread and writes them on the main thread."""
    cache = ReadCache(tmp_path / "c.sqlite", "s")
    cache.put_many({"aa": READS})
    found, errors = {}, []

    def lookup():
        try:
            found.update(cache.get_many(["aa"]))
            cache.put_many({"bb": [None]})
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    worker = threading.Thread(target=lookup)
    worker.start()
    worker.join()
    assert errors == [] and found == {"aa": READS}
    assert cache.get_many(["bb"]) == {"bb": [None]}
    cache.close()


def test_cache_settings_follow_what_the_recogniser_sees():
    layout, cfg = aoi_v1_layout(), IngestConfig()
    base = cache_settings(layout, cfg)
    assert base == cache_settings(aoi_v1_layout(), IngestConfig())                  # deterministic
    # Parsing thresholds do not change the reads: the cache stays valid.
    assert cache_settings(layout, dataclasses.replace(cfg, min_confidence=0.5, batch_size=8)) == base
    # Engines side by side read each chunk as one engine would.
    assert cache_settings(layout, dataclasses.replace(cfg, engines=3)) == base
    # The recogniser's output characters move the scores.
    assert cache_settings(layout, dataclasses.replace(cfg, charset="full")) != base
    # Crops, boxes and panel rules do.
    assert cache_settings(layout, dataclasses.replace(cfg, crop_pad=0)) != base
    assert cache_settings(layout, dataclasses.replace(cfg, blank_panel_std=5.0)) != base
    assert cache_settings(aoi_v1_layout(with_boxes=False), cfg) != base
    moved = dataclasses.replace(layout, fields=(dataclasses.replace(layout.fields[0], roi=(10, 9, 230, 38)),)
                                + layout.fields[1:])
    assert cache_settings(moved, cfg) != base
