"""OCR reads cached by image content, layout and OCR settings.

The key is the image's SHA-256 plus a hash of everything that changes what the
recogniser sees (field boxes, crop rules, model): re-running on the same images
does no OCR, and a nightly run OCRs only the new ones. Raw reads are cached, not
parsed values, so changing a confidence threshold does not need new OCR.

The cache never fails a night: a corrupt file is moved aside (`<name>.corrupt-<time>`)
and started afresh, a database another process holds locked is waited for, then
retried, then left alone for the rest of the run; each with a warning.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import warnings
from pathlib import Path

BUSY_TIMEOUT_S = 30.0          # SQLite waits this long for another writer's lock on each statement
RETRY_DELAYS_S = (0.5, 2.0)    # then the statement is tried again after each of these pauses
_CORRUPT = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _is_corrupt(err: sqlite3.DatabaseError) -> bool:
    return (getattr(err, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT     # primary code of an extended one


def _is_locked(err: sqlite3.DatabaseError) -> bool:
    return isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err))


class ReadCache:
    def __init__(self, path: str | Path | None, settings: str):
        self.settings = settings
        self.path = Path(path) if path is not None else None
        self._db = None
        self._lock = threading.Lock()   # ingest looks up on its loader thread and writes on the main one
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._run(self._open)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _open(self) -> None:
        self._close()
        self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS reads (key TEXT PRIMARY KEY, reads TEXT NOT NULL)")

    def _move_aside(self) -> None:
        """Keep the corrupt file for a post-mortem and start an empty cache in its place."""
        self._close()
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        self.path.replace(aside)
        for suffix in ("-journal", "-wal", "-shm"):          # they belong to the corrupt file
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        warnings.warn(f"OCR cache {self.path} is corrupt: moved to {aside.name}, starting an empty cache "
                      f"(its images are read again)", stacklevel=4)

    def _run(self, statement, default=None):
        """statement() with the corrupt and locked cases handled; `default` when the cache had to go."""
        for delay in (*RETRY_DELAYS_S, None):
            try:
                return statement()
            except sqlite3.DatabaseError as err:
                if _is_corrupt(err) and self.path.exists():
                    self._move_aside()
                    self._open()
                    return statement()          # on a fresh file; when statement is _open, it opens it again
                if not _is_locked(err):
                    raise
                if delay is None:
                    warnings.warn(f"OCR cache {self.path} stayed locked by another process ({err}): "
                                  f"this run goes on without it", stacklevel=3)
                    self._close()
                    return default
                time.sleep(delay)

    def _key(self, digest: str) -> str:
        return f"{digest}:{self.settings}"

    def get_many(self, digests: list[str]) -> dict[str, list]:
        if self._db is None or not digests:
            return {}
        found: dict[str, list] = {}
        keys = [self._key(d) for d in digests]
        for start in range(0, len(keys), 500):   # SQLite caps bound parameters per statement
            chunk = keys[start:start + 500]

            def select(chunk=chunk):         # bound now: the call happens within this iteration
                return self._db.execute(
                    f"SELECT key, reads FROM reads WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()

            with self._lock:
                rows = self._run(select, default=[]) if self._db is not None else []
            found.update({k.split(":", 1)[0]: json.loads(v) for k, v in rows})
        return found

    def put_many(self, items: dict[str, list]) -> None:
        if self._db is None or not items:
            return
        rows = [(self._key(d), json.dumps(r)) for d, r in items.items()]

        def insert():
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO reads VALUES (?, ?)", rows)

        with self._lock:
            self._run(insert)

    def close(self) -> None:
        with self._lock:
            self._close()
