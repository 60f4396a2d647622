"""OCR reads cached by image content, layout and OCR settings.

The key is the image's SHA-256 plus a hash of everything that changes what the
recogniser sees (field boxes, crop rules, model): re-running on the same images
does no OCR, and a nightly run OCRs only the new ones. Raw reads are cached, not
parsed values, so changing a confidence threshold does not need new OCR.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path


class ReadCache:
    def __init__(self, path: str | Path | None, settings: str):
        self.settings = settings
        self._db = None
        self._lock = threading.Lock()   # ingest looks up on its loader thread and writes on the main one
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS reads (key TEXT PRIMARY KEY, reads TEXT NOT NULL)")

    def _key(self, digest: str) -> str:
        return f"{digest}:{self.settings}"

    def get_many(self, digests: list[str]) -> dict[str, list]:
        if self._db is None or not digests:
            return {}
        found: dict[str, list] = {}
        keys = [self._key(d) for d in digests]
        for start in range(0, len(keys), 500):   # SQLite caps bound parameters per statement
            chunk = keys[start:start + 500]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT key, reads FROM reads WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            found.update({k.split(":", 1)[0]: json.loads(v) for k, v in rows})
        return found

    def put_many(self, items: dict[str, list]) -> None:
        if self._db is None or not items:
            return
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO reads VALUES (?, ?)",
                                 [(self._key(d), json.dumps(r)) for d, r in items.items()])

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
