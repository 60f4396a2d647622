"""One chunk of images: the unit of work of ingest, in process (stage.py) or as one Dask task (distributed.py).

Its own module so that both paths import it and neither imports the other at module level.
"""
from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Decoded:
    images: dict[str, np.ndarray]   # name -> (h, w) uint8, ready for recognition
    rejected: list[inv.Rejected]


def load_chunk(data_dir: Path, names: list[str], cache: ReadCache) -> Chunk:
    """Read bytes, hash, look up the cache: the driver's part, wherever recognition runs."""
    blobs = {name: (data_dir / name).read_bytes() for name in names}
    digests = {name: inv.file_digest(b) for name, b in blobs.items()}
    cached = cache.get_many(list(digests.values()))
    return Chunk(names, digests, cached, {n: b for n, b in blobs.items() if digests[n] not in cached})


def decode_chunk(todo: dict[str, bytes], layout: Layout, cfg: IngestConfig) -> Decoded:
    decoded = {name: inv.decode(blob, layout, cfg.blank_panel_std) for name, blob in todo.items()}
    return Decoded({n: a for n, a in decoded.items() if isinstance(a, np.ndarray)},
                   [inv.Rejected(n, r.reason, r.detail) for n, r in decoded.items() if not isinstance(r, np.ndarray)])


def recognize_chunk(ocr: Ocr, decoded: Decoded, layout: Layout, cfg: IngestConfig) -> tuple[dict[str, list], list]:
    """Reads of one chunk's decoded images, and its rejections.

    The unit of work of both paths: in process on the main thread, or as one Dask task.
    """
    images = list(decoded.images.values())
    reads = read_images(ocr, images, layout, cfg.crop_pad, cfg.batch_size)
    return dict(zip(decoded.images, reads, strict=True)), decoded.rejected
