"""Finding 7: the OCR cache key covers every read-changing setting; a corrupt or locked cache never fails a night."""
from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time

import pytest

from oanet.config import IngestConfig
from oanet.ingest.cache import ReadCache
from oanet.ingest.stage import cache_settings
from oanet.synth.aoi_layout import aoi_v1_layout

READS = [["1121.8 C", 0.97]]


def _with_field(layout, name, **changes):
    fields = tuple(dataclasses.replace(f, **changes) if f.name == name else f for f in layout.fields)
    return dataclasses.replace(layout, fields=fields)


@pytest.mark.parametrize("name, changes", [
    ("sinter_temp_c", {"unit": "K"}),                    # the unit cut moves the value crop
    ("sinter_temp_c", {"decimals": 2}),
    ("sinter_temp_c", {"dtype": "str"}),
    ("sinter_temp_c", {"range": (0.0, 10.0)}),
    ("lot", {"pattern": r"L\d{4}"}),                     # pattern characters go into the charset
    ("station", {"categories": ("AOI-01", "AOI-09")}),
    ("sinter_temp_c", {"format": "{key} >> {value} {unit}"}),
])
def test_cache_key_changes_with_every_field_attribute(name, changes):
    layout, cfg = aoi_v1_layout(), IngestConfig()
    fingerprint = "engine"                                  # the same engine: only the layout differs
    assert cache_settings(_with_field(layout, name, **changes), cfg, fingerprint) != \
        cache_settings(layout, cfg, fingerprint)


def test_cache_key_ignores_what_parsing_alone_uses():
    layout, cfg = aoi_v1_layout(), IngestConfig()
    assert cache_settings(layout, dataclasses.replace(cfg, min_confidence=0.3, batch_size=4), "e") == \
        cache_settings(layout, cfg, "e")


def test_cache_garbage_file_is_moved_aside_and_rebuilt(tmp_path):
    path = tmp_path / "ocr.sqlite"
    path.write_bytes(b"this is not a database " * 200)
    with pytest.warns(UserWarning, match="corrupt"):
        cache = ReadCache(path, "s")
    cache.put_many({"aa": READS})
    assert cache.get_many(["aa"]) == {"aa": READS}
    cache.close()
    aside = list(tmp_path.glob("ocr.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")


def test_cache_corrupt_pages_found_on_lookup_are_a_miss_not_a_crash(tmp_path):
    path = tmp_path / "ocr.sqlite"
    cache = ReadCache(path, "s")
    cache.put_many({f"{i:064x}": [["x" * 200, 0.9]] for i in range(2000)})
    cache.close()
    data = bytearray(path.read_bytes())
    data[8192:len(data) - 4096] = b"\xff" * (len(data) - 4096 - 8192)   # keep the header and schema page
    path.write_bytes(bytes(data))
    cache = ReadCache(path, "s")
    with pytest.warns(UserWarning, match="corrupt"):
        assert cache.get_many([f"{i:064x}" for i in range(2000)]) == {}
    cache.put_many({"aa": READS})                        # the rebuilt cache works
    assert cache.get_many(["aa"]) == {"aa": READS}
    cache.close()


def _hold_lock(path, seconds: float, ready: threading.Event):
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    db.execute("COMMIT")
    db.close()


def _locked_elsewhere(path, seconds: float) -> threading.Thread:
    """A thread holding an exclusive lock on the database for `seconds`, started and holding it."""
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, seconds, ready))
    holder.start()
    ready.wait()
    return holder


def test_cache_waits_for_a_writer_that_holds_the_lock_longer_than_sqlite_default(tmp_path):
    """Another ingest (or a backup) holding the file for 6 s: the write waits, it does not fail."""
    path = tmp_path / "ocr.sqlite"
    cache = ReadCache(path, "s")
    holder = _locked_elsewhere(path, 6.0)
    cache.put_many({"aa": READS})
    holder.join()
    assert cache.get_many(["aa"]) == {"aa": READS}
    cache.close()


def test_cache_locked_for_good_is_left_alone_with_a_warning(tmp_path, monkeypatch):
    import oanet.ingest.cache as cache_module

    monkeypatch.setattr(cache_module, "BUSY_TIMEOUT_S", 0.1, raising=False)
    monkeypatch.setattr(cache_module, "RETRY_DELAYS_S", (0.1,), raising=False)
    path = tmp_path / "ocr.sqlite"
    cache = ReadCache(path, "s")
    holder = _locked_elsewhere(path, 2.0)
    try:
        with pytest.warns(UserWarning, match="locked"):
            cache.put_many({"aa": READS})              # no exception: the run goes on without the cache
        assert cache.get_many(["aa"]) == {}
    finally:
        holder.join()
        cache.close()
