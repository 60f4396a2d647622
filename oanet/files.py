"""Writing a report or artifact file so that a reader sees the old version or the new one, never half."""
from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`text` (UTF-8) written beside `path` under a temporary name, then renamed over it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")    # two writers never share a temporary file
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
