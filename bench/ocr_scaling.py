"""OCR ingestion fanned out over Dask: images/s on 1 and on 2 local workers, and the speed-up.

    python bench/ocr_scaling.py --n 200          # magnetic-tile objects when ../shared/data/magnetic-tile exists
    python bench/ocr_scaling.py --data DIR       # an AOI folder of your own

On the same images, once with a LocalCluster of 1 worker and once with 2 (a process
each, one thread, onnxruntime on one thread): start the cluster, build every worker's
OCR engine, then run the ingest stage on it with a fresh, empty cache. Prints, per
cluster, images/s warm (the stage alone: cluster up and engines loaded before it) and
cold (cluster start and model load included), the warm speed-up of 2 workers over 1
(target >= 1.6x on a 2-core machine), and whether the two runs' tables and quarantines
are equal.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from oanet.config import IngestConfig, load_params
from oanet.env import apply_offline_defaults

REPO = Path(__file__).resolve().parents[1]
MAGNETIC_TILE = REPO.parent / "shared" / "data" / "magnetic-tile"
TARGET = 1.6


@dataclass(frozen=True)
class Timing:
    workers: int
    images: int
    ocr_images: int
    warm_s: float       # the ingest stage on a ready cluster with loaded engines
    cold_s: float       # cluster start + engine load + the stage
    out: Path
    quarantine: Path

    @property
    def warm_rate(self) -> float:
        return self.images / self.warm_s

    @property
    def cold_rate(self) -> float:
        return self.images / self.cold_s


def measure(cfg: IngestConfig, data: Path, work: Path, workers: int) -> Timing:
    from oanet.ingest.distributed import connect, warm_up
    from oanet.ingest.stage import run as ingest
    from oanet.layout import load_layout

    fresh = replace(cfg, workers=workers, scheduler=None, cache=str(work / f"cache-{workers}w.sqlite"))
    t0 = time.perf_counter()
    with connect(fresh) as client:
        engines = warm_up(client, fresh, load_layout(data / "layout.yaml"))
        assert engines == workers, f"{engines} engines on {workers} workers"
        result = ingest(fresh, data, work / f"ocr-{workers}w.parquet", work / f"q-{workers}w.parquet", client=client)
        cold = time.perf_counter() - t0
    return Timing(workers, result.rows + result.quarantined, result.ocr_images, result.seconds, cold,
                  result.out, result.quarantine)


def same(a: Path, b: Path) -> bool:
    try:
        pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b), check_exact=True)
    except AssertionError:
        return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="an AOI folder to ingest; default: a synthetic set made here")
    ap.add_argument("--objects", type=Path, default=MAGNETIC_TILE if MAGNETIC_TILE.is_dir() else None,
                    help="magnetic-tile folder for the synthetic set (default: %(default)s)")
    ap.add_argument("--procedural", action="store_true", help="procedural objects even if magnetic-tile is here")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--preset", default="clean")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    apply_offline_defaults()
    params = load_params(REPO / "params.yaml")
    from oanet.ingest.stage import CHUNK_IMAGES

    work = Path(tempfile.mkdtemp(prefix="oanet-ocr-scaling-"))
    data, what = args.data, f"from {args.data}"
    if data is None:
        from oanet.synth.stage import run as synth

        objects = None if args.procedural else args.objects
        data = work / "data"
        synth(replace(params.synth, n=args.n, seed=args.seed, preset=args.preset,
                      objects=str(objects) if objects else None), data, progress=False)
        what = f"synthetic, {args.preset}, {'magnetic-tile' if objects else 'procedural'} objects"

    runs = [measure(params.ingest, data, work, w) for w in (1, 2)]
    one, two = runs
    n = one.images
    print(f"{n} images ({what}), {math.ceil(n / CHUNK_IMAGES)} chunks of up to {CHUNK_IMAGES} (one Dask task each), "
          f"{os.cpu_count()} CPU cores; fresh empty cache each run")
    for r in runs:
        print(f"  {r.workers} worker{'s' if r.workers > 1 else ' '}  warm {r.warm_rate:6.1f} images/s ({r.warm_s:5.1f} s)"
              f"   cold {r.cold_rate:6.1f} images/s ({r.cold_s:5.1f} s)   OCR on {r.ocr_images} images")
    speedup = two.warm_rate / one.warm_rate
    equal = same(one.out, two.out) and same(one.quarantine, two.quarantine)
    print(f"speed-up 2 workers / 1 = {speedup:.2f}x warm (target >= {TARGET}x), "
          f"{two.cold_rate / one.cold_rate:.2f}x cold")
    print(f"tables and quarantines equal: {equal}")
    return 0 if speedup >= TARGET and equal else 1


if __name__ == "__main__":
    sys.exit(main())
