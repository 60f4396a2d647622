"""One chunk of images: the unit of work of ingest, in process (stage.py) or as one Dask task (distributed.py).

Its own module so that both paths import it and neither imports the other at module level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from oanet.config import IngestConfig
from oanet.ingest import inventory as inv
from oanet.ingest.cache import ReadCache
from oanet.ingest.engine import Ocr
from oanet.ingest.reading import read_images
from oanet.layout import Layout


@dataclass(frozen=True)
class Chunk:
    """Up to stage.CHUNK_IMAGES consecutive images, as the driver sees them after the cache lookup."""
    names: list[str]                # every image of the chunk, in order
    digests: dict[str, str]         # name -> SHA-256 of the file
    cached: dict[str, list]         # digest -> reads, for the images the cache holds
    todo: dict[str, bytes]          # name -> file bytes, for the images that need OCR, in order
    refused: list[inv.Rejected] = field(default_factory=list)    # files that could not be read, or too large


@dataclass(frozen=True)
class Decoded:
    images: dict[str, np.ndarray]   # name -> (h, w) uint8, ready for recognition
    rejected: list[inv.Rejected]


def load_chunk(data_dir: Path, names: list[str], cache: ReadCache, max_bytes: int) -> Chunk:
    """Read bytes, hash, look up the cache: the driver's part, wherever recognition runs.

    A file that cannot be read (permissions, an I/O error, gone since the scan) or is over `max_bytes`
    is refused with its reason; the rest of the chunk goes on."""
    blobs, refused = {}, []
    for name in names:
        path = data_dir / name
        try:
            size = path.stat().st_size
            if size > max_bytes:
                refused.append(inv.Rejected(name, inv.TOO_LARGE, f"{size / 2**20:.1f} MB, over ingest.max_image_mb "
                                                                 f"({max_bytes / 2**20:g} MB); not read"))
                continue
            blobs[name] = path.read_bytes()
        except OSError as err:
            refused.append(inv.Rejected(name, inv.UNREADABLE, f"cannot be read: {err.strerror or err}"))
    digests = {name: inv.file_digest(b) for name, b in blobs.items()}
    cached = cache.get_many(list(digests.values()))
    return Chunk(names, digests, cached, {n: b for n, b in blobs.items() if digests[n] not in cached}, refused)


def decode_chunk(todo: dict[str, bytes], layout: Layout, cfg: IngestConfig) -> Decoded:
    decoded = {name: inv.decode(blob, layout, cfg.blank_panel_std) for name, blob in todo.items()}
    return Decoded({n: a for n, a in decoded.items() if isinstance(a, np.ndarray)},
                   [inv.Rejected(n, r.reason, r.detail) for n, r in decoded.items() if not isinstance(r, np.ndarray)])


def recognize_chunk(ocr: Ocr, decoded: Decoded, layout: Layout, cfg: IngestConfig) -> tuple[dict[str, list], list]:
    """Reads of one chunk's decoded images, and its rejections.

    The unit of work of both paths: in process on the main thread, or as one Dask task.
    """
    images = list(decoded.images.values())
    reads = read_images(ocr, images, layout, cfg.crop_pad, cfg.batch_size, cfg.verify_below)
    return dict(zip(decoded.images, reads, strict=True)), decoded.rejected
