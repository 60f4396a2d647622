"""Stage `ingest`: OCR every AOI image's panel into one typed row, or quarantine it."""
from __future__ import annotations

import dataclasses
import os
import queue
import time
from collections import Counter, deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import IngestConfig
from oanet.ingest import inventory as inv
from oanet.ingest.cache import ReadCache
from oanet.ingest.chunks import Chunk, decode_chunk, load_chunk, recognize_chunk
from oanet.ingest.engine import Ocr, engine_fingerprint, settings_hash
from oanet.ingest.head import reading_charset
from oanet.ingest.parse import parse_stored
from oanet.ingest.reading import CROP_RULES_VERSION
from oanet.layout import CLASH_SUFFIX, Layout, load_layout

# Images per chunk: the unit of work of one engine, in process or as one Dask task.
# A read depends on its crop alone (engine.recognize), so chunks only set the pace.
CHUNK_IMAGES = 32


@dataclass(frozen=True)
class IngestResult:
    rows: int
    quarantined: int
    by_reason: dict[str, int]
    ocr_images: int
    cached_images: int
    seconds: float
    out: Path
    quarantine: Path
    field_missing: dict[str, int] = field(default_factory=dict)
    missing_reasons: dict[str, dict[str, int]] = field(default_factory=dict)   # field -> reason -> rows
    hints: tuple[str, ...] = ()                   # what the quarantine suggests the user got wrong

    @property
    def images_per_second(self) -> float:
        return (self.rows + self.quarantined) / self.seconds if self.seconds else float("inf")

    def summary(self) -> str:
        reasons = _counts(self.by_reason) or "none"
        missing = ", ".join(f"{k} {v}" + (f" ({_counts(self.missing_reasons[k])})" if self.missing_reasons.get(k)
                                           else "") for k, v in self.field_missing.items() if v) or "none"
        return (f"ingest: {self.rows + self.quarantined} images in -> {self.rows} rows, "
                f"{self.quarantined} quarantined ({reasons})\n"
                f"  OCR on {self.ocr_images} images, {self.cached_images} from cache, "
                f"{self.seconds:.1f} s ({self.images_per_second:.1f} images/s)\n"
                f"  missing values by field: {missing}\n"
                f"  table: {self.out}\n  quarantine: {self.quarantine}"
                + "".join(f"\n  hint: {h}" for h in self.hints))

    def require_rows(self) -> IngestResult:
        """Itself, if it kept a row: a pipeline stage that kept none stops here, saying why, rather than
        leaving an empty table for the next stage to trip on."""
        if self.rows == 0:
            reasons = _counts(self.by_reason)
            raise inv.DataError("; ".join([f"ingest kept no rows: all {self.quarantined} images quarantined ({reasons})",
                                           *self.hints, f"the quarantine, with a reason per image: {self.quarantine}"]))
        return self


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def cache_settings(layout: Layout, cfg: IngestConfig, fingerprint: str | None = None) -> str:
    """What the reads depend on; `fingerprint`: of the engine in use (default: the one cfg builds).

    Every attribute of every field counts: unit, dtype, decimals and format move the value's crop,
    pattern and categories the recogniser's characters; listing only some served stale reads.
    """
    fields = [dataclasses.asdict(f) for f in layout.fields]
    fingerprint = fingerprint or engine_fingerprint(cfg.rec_model, reading_charset(cfg.charset, layout))
    return settings_hash(fields, layout.size, layout.object_roi, cfg.crop_pad, cfg.blank_panel_std,
                         CROP_RULES_VERSION, fingerprint, cfg.verify_below)


def max_bytes(cfg: IngestConfig) -> int:
    return int(cfg.max_image_mb * 2**20)


def _chunks(items: list[str], size: int):
    return [items[i:i + size] for i in range(0, len(items), size)]


def engine_count(cfg: IngestConfig) -> int:
    return cfg.engines or len(os.sched_getaffinity(0))


def build_engines(cfg: IngestConfig, layout: Layout) -> list[Ocr]:
    """cfg.engines single-threaded recognisers (default one per core).

    Two one-thread engines on different chunks read more images/s than one engine on two
    threads: a small crop batch does not split well across threads (docs/benchmarks.md,
    "Measurements behind the ingest design").
    """
    charset = reading_charset(cfg.charset, layout)
    return [Ocr(cfg.rec_model, threads=1, charset=charset) for _ in range(engine_count(cfg))]


def on_engines(engines: list[Ocr], fn, items: Iterable):
    """fn(engine, item) for each item, in order; each engine works on one item at a time on its own thread.

    `items` is drawn on the caller's thread, at most two per engine ahead of the results.
    """
    idle: queue.SimpleQueue[Ocr] = queue.SimpleQueue()
    for engine in engines:
        idle.put(engine)

    def on_idle_engine(item):
        engine = idle.get()
        try:
            return fn(engine, item)
        finally:
            idle.put(engine)

    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=len(engines)) as pool:
        for item in items:
            pending.append(pool.submit(on_idle_engine, item))
            if len(pending) > 2 * len(engines):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _in_process(engines: list[Ocr], data_dir: Path, names: list[str], layout: Layout, cfg: IngestConfig,
                cache: ReadCache):
    """(chunk, reads, rejected) per chunk, in order.

    This thread reads, hashes and looks up each chunk (the cache is one SQLite connection);
    each engine decodes and recognises whole chunks.
    """
    def ocr_chunk(engine: Ocr, chunk: Chunk):
        return (chunk, *recognize_chunk(engine, decode_chunk(chunk.todo, layout, cfg), layout, cfg))

    loaded = (load_chunk(data_dir, part, cache, max_bytes(cfg)) for part in _chunks(names, CHUNK_IMAGES))
    yield from on_engines(engines, ocr_chunk, loaded)


def ocr_all(data_dir: Path, names: list[str], layout: Layout, cfg: IngestConfig,
            ocr: Ocr | list[Ocr] | None = None, client=None):
    """Reads per image name, digests, rejections, and counts of OCR'd and cached images.

    Recognition runs in this process, or on Dask workers when `client` (a dask.distributed
    Client) is given or cfg asks for workers or a scheduler; a read depends on its crop
    alone, so the reads are the same either way. Only this process touches the cache.
    """
    from contextlib import closing

    from tqdm import tqdm

    engines = [ocr] if isinstance(ocr, Ocr) else ocr
    fingerprints = {e.fingerprint for e in engines or ()}
    if len(fingerprints) > 1:
        raise ValueError(f"engines of one ingest must read alike, got {sorted(fingerprints)}")
    cache = ReadCache(cfg.cache, cache_settings(layout, cfg, next(iter(fingerprints), None)))
    if client is not None or cfg.workers or cfg.scheduler:
        from oanet.ingest.distributed import on_cluster

        loaded = (load_chunk(data_dir, c, cache, max_bytes(cfg)) for c in _chunks(names, CHUNK_IMAGES))
        results = on_cluster(client, cfg, layout, loaded)
    else:
        results = _in_process(engines or build_engines(cfg, layout), data_dir, names, layout, cfg, cache)
    reads, digests, rejected = {}, {}, []
    n_ocr = n_cached = 0
    bar = tqdm(total=len(names), desc="ingest", unit="img", disable=None, mininterval=1.0)
    with closing(results):
        for chunk, fresh, bad in results:   # in order in process; as they complete on a cluster
            digests.update(chunk.digests)
            reads.update({n: chunk.cached[d] for n, d in chunk.digests.items() if d in chunk.cached})
            cache.put_many({chunk.digests[n]: r for n, r in fresh.items()})
            reads.update(fresh)
            rejected += bad + chunk.refused
            n_ocr += len(fresh)
            n_cached += len(chunk.digests) - len(chunk.todo)
            bar.update(len(chunk.names))
    bar.close()
    cache.close()
    order = {n: i for i, n in enumerate(names)}
    rejected.sort(key=lambda r: order[r.image])
    return reads, digests, rejected, n_ocr, n_cached


def build_table(labels: pd.DataFrame, reads: dict, digests: dict, layout: Layout, min_conf: float) -> pd.DataFrame:
    """One row per read image: label columns, digest, and value/text/conf/reason per field."""
    labels = labels[labels["image"].isin(reads)].reset_index(drop=True)
    written = {"sha256"} | {f"{f.name}{s}" for f in layout.fields for s in ("", "__text", "__conf", "__reason")}
    keep = [c for c in labels.columns if c not in ("image", "label")]
    # a labels.csv column named like one this stage writes (e.g. the lot, printed too) is kept beside it, renamed
    table = labels[["image", "label", *keep]].rename(
        columns={c: c + CLASH_SUFFIX for c in keep if c in written})
    table["label"] = table["label"].astype("int64")
    table["sha256"] = [digests[n] for n in table["image"]]
    for j, f in enumerate(layout.fields):
        pairs = [reads[n][j] for n in table["image"]]
        parsed = [parse_stored(f, p, min_conf) for p in pairs]
        values = [p.value for p in parsed]
        # numeric values as float64 with NaN for missing: what every model and GX expect
        table[f.name] = pd.array(values, dtype="float64" if f.dtype in ("float", "int") else "string")
        table[f"{f.name}__text"] = pd.array([p[0] if p else None for p in pairs], dtype="string")
        table[f"{f.name}__conf"] = np.array([p[1] if p else np.nan for p in pairs], dtype="float64")
        table[f"{f.name}__reason"] = pd.array([p.reason for p in parsed], dtype="string")
    return table


def drop_duplicate_units(table: pd.DataFrame, layout: Layout) -> tuple[pd.DataFrame, list[inv.Rejected]]:
    id_field = layout.by_role("id")
    if id_field is None:
        return table, []
    ids = table[id_field.name]
    dup = ids.notna() & ids.duplicated(keep="first")
    first = dict(zip(ids[~dup & ids.notna()], table.loc[~dup & ids.notna(), "image"], strict=True))
    rejected = [inv.Rejected(r.image, inv.DUPLICATE_UNIT, f"unit {u} already read from {first.get(u)}")
                for r, u in zip(table[dup].itertuples(), ids[dup], strict=True)]
    return table[~dup].reset_index(drop=True), rejected


def writable_outputs(out: Path, quarantine: Path) -> None:
    """Refuse, before any OCR, outputs that could not be written or would overwrite each other."""
    if out.resolve() == quarantine.resolve():
        raise inv.DataError(f"the table and the quarantine would both be written to {out}: give two files")
    for path in (out, quarantine):
        if path.suffix.lower() != ".parquet":
            raise inv.DataError(f"{path}: ingest writes Parquet tables; name the file .parquet")
        if path.is_dir():
            raise inv.DataError(f"{path} is a folder; name a .parquet file to write")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise inv.DataError(f"cannot create the folder of {path}: {err.strerror or err}") from None
        if not os.access(path.parent, os.W_OK):
            raise inv.DataError(f"cannot write to {path.parent}")


def run(cfg: IngestConfig, data_dir: str | Path, out: str | Path, quarantine: str | Path,
        layout_path: str | Path | None = None, ocr: Ocr | list[Ocr] | None = None, client=None) -> IngestResult:
    """The stage. OCR runs in process on `ocr`, one engine or several side by side (default:
    build_engines), or on Dask workers:
    `client` (an open dask.distributed Client), else cfg.scheduler, else cfg.workers local ones."""
    start = time.perf_counter()
    data_dir, out, quarantine = Path(data_dir), Path(out), Path(quarantine)
    if not data_dir.is_dir():
        raise inv.DataError(f"data folder not found: {data_dir} (an AOI folder holds images, labels.csv, layout.yaml)")
    layout = load_layout(layout_path or data_dir / "layout.yaml")
    writable_outputs(out, quarantine)
    given = inv.read_labels(data_dir)
    files, unusable = inv.scan(data_dir)
    labels, rejected = inv.set_aside(*inv.reconcile(given, files + [r.image for r in unusable]), unusable)
    rejected = inv.explain_missing(data_dir, rejected)
    reads, digests, bad, n_ocr, n_cached = ocr_all(data_dir, list(labels["image"]), layout, cfg, ocr, client)
    table, dupes = drop_duplicate_units(build_table(labels, reads, digests, layout, cfg.min_confidence), layout)
    rejected += bad + dupes
    qtable = pd.DataFrame([(r.image, r.reason, r.detail) for r in rejected], columns=inv.QUARANTINE_COLUMNS)
    for path in (out, quarantine):
        path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out, index=False)
    qtable.astype("string").to_parquet(quarantine, index=False)
    missing = {f.name: int(table[f.name].isna().sum()) for f in layout.fields}
    reasons = {f.name: table[f"{f.name}__reason"].value_counts().to_dict() for f in layout.fields}
    return IngestResult(rows=len(table), quarantined=len(qtable), by_reason=dict(Counter(qtable["reason"])),
                        ocr_images=n_ocr, cached_images=n_cached, seconds=time.perf_counter() - start,
                        out=out, quarantine=quarantine, field_missing=missing, missing_reasons=reasons,
                        hints=tuple(inv.quarantine_hints(given, rejected, len(table) + len(qtable))))
