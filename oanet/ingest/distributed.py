"""OCR fanned out over a Dask cluster (dask.distributed).

The driver (the ingest process) reads, hashes and looks the images up in the cache as it
does in process; only the chunks with images to OCR travel, as file bytes, one task per
chunk. A worker decodes and recognises a chunk on an engine it builds
once per process, with onnxruntime and torch on one thread, so N workers use N cores
without fighting over them. The driver takes the reads as tasks complete, writes them to
the cache (no worker touches SQLite) and assembles the table and quarantine: the same,
row for row and value for value, as in process.

dask is imported inside the functions: `import oanet.ingest.stage` stays light.
"""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from oanet.config import IngestConfig
from oanet.errors import OanetError
from oanet.ingest.chunks import Chunk, decode_chunk, recognize_chunk
from oanet.ingest.engine import Ocr
from oanet.ingest.head import reading_charset
from oanet.layout import Layout

IN_FLIGHT_PER_THREAD = 2   # chunks queued per worker thread: none idles, the driver holds few bytes

_engines: dict[tuple, Ocr] = {}   # per worker process: (rec_model, charset) -> built engine
_engines_lock = threading.Lock()


class ClusterError(OanetError, RuntimeError):
    """The Dask scheduler could not be reached or the local cluster did not start."""


def worker_engine(rec_model: str, charset: str | None) -> Ocr:
    """This process's engine for `rec_model` and `charset`: built on first use (cnocr import, model load), then kept."""
    with _engines_lock:
        if (rec_model, charset) not in _engines:
            ocr = Ocr(rec_model, threads=1, charset=charset)
            ocr.cnocr  # noqa: B018 - build now, under the lock
            if "torch" in sys.modules:   # cnocr imports it; keep its pools to one thread as well
                sys.modules["torch"].set_num_threads(1)
            _engines[rec_model, charset] = ocr
        return _engines[rec_model, charset]


def ocr_chunk(todo: dict[str, bytes], layout: Layout, cfg: IngestConfig) -> tuple[dict[str, list], list]:
    """The task: decode and recognise one chunk on this worker. Reads by image name, and rejections."""
    engine = worker_engine(cfg.rec_model, reading_charset(cfg.charset, layout))
    return recognize_chunk(engine, decode_chunk(todo, layout, cfg), layout, cfg)


def _engine_ready(rec_model: str, charset: str | None) -> int:
    worker_engine(rec_model, charset)
    return os.getpid()


def warm_up(client, cfg: IngestConfig, layout: Layout) -> int:
    """Build the engine on every worker now (timings after it exclude the model load); the worker count."""
    workers = list(client.nthreads())
    charset = reading_charset(cfg.charset, layout)
    futures = [client.submit(_engine_ready, cfg.rec_model, charset, workers=[w], allow_other_workers=False,
                             pure=False) for w in workers]
    return len(set(client.gather(futures)))


@contextmanager
def connect(cfg: IngestConfig):
    """A Client on cfg.scheduler, else on a new local cluster of cfg.workers one-thread processes.

    A local cluster lives as long as the block; a remote scheduler and its workers outlive it.
    """
    from distributed import Client, LocalCluster

    if cfg.scheduler:
        try:
            client = Client(cfg.scheduler)
        except (OSError, TimeoutError) as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {cfg.scheduler}: {err}") from None
        with client:
            yield client
        return
    # No dashboard (it needs bokeh); the scheduler's plain HTTP server on any free local port,
    # not 8787, so two ingests (or a user's own cluster) do not collide.
    with LocalCluster(n_workers=cfg.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, Client(cluster) as client:
        yield client


def on_cluster(client, cfg: IngestConfig, layout: Layout, chunks: Iterable[Chunk]) -> Iterator[tuple]:
    """(chunk, reads, rejected) per chunk: those with nothing to OCR at once, the rest as their tasks complete.

    `client` None: a cluster from cfg (connect) for as long as the iteration runs.
    """
    if client is None:
        with connect(cfg) as own:
            yield from on_cluster(own, cfg, layout, chunks)
        return
    from distributed import as_completed

    limit = IN_FLIGHT_PER_THREAD * max(1, sum(client.nthreads().values()))
    done = as_completed(with_results=True)
    submitted: dict[str, Chunk] = {}
    for chunk in chunks:
        if not chunk.todo:
            yield chunk, {}, []
            continue
        future = client.submit(ocr_chunk, chunk.todo, layout, cfg, pure=False)
        submitted[future.key] = chunk
        done.add(future)
        while done.count() >= limit:
            future, (reads, rejected) = next(done)
            yield submitted.pop(future.key), reads, rejected
    for future, (reads, rejected) in done:
        yield submitted.pop(future.key), reads, rejected
