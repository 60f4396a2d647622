"""OCR speed of `oanet ingest`, side by side with the bare recogniser and plain CnOCR.

    python bench/ocr_throughput.py --objects ../shared/data/magnetic-tile --n 200

In one process, on the same synthetic images:
  ingest      the ingest stage (decode, value crops, batched recognition, parse, write), no cache,
              on its default engines (one one-thread recogniser per core, output cut to the
              layout's characters: params.yaml ingest.engines / ingest.charset)
  bare        the same engines on the same value crops, already cut and in memory, chunk by chunk
  plain       stock CnOCR on the bundled models: detector + recogniser on the whole image,
              lines matched to fields by key (on the first --plain-n images: it is slow)
  cached      a second ingest over the same images, served by the cache
ingest, bare and plain are timed in --rounds alternating rounds (this machine's speed drifts
over minutes: docs/benchmarks.md, "Where the OCR time goes"); the rates are medians, each
round's ratios are printed too.
  ingest-2w   the ingest stage with OCR on a warm 2-worker local Dask cluster (--workers 2):
              plain CnOCR and bare already use every core (onnxruntime's default threads),
              this is ingest using every core too (workers of one thread each)
Each engine is built and warmed before timing. Prints images/s, the ratios and the
exact-match accuracy of ingest and plain on the images both read.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from oanet.config import load_params
from oanet.env import apply_offline_defaults
from oanet.layout import load_layout


def exact_rate(table: pd.DataFrame, truth: pd.DataFrame, layout) -> float:
    from oanet.ingest.accuracy import overall, score_fields

    return overall(score_fields(table, truth, layout, layout))["exact"]


def plain_cnocr(ocr, images: list[np.ndarray], names: list[str], labels: pd.DataFrame, layout, min_conf: float):
    """Stock CnOcr (default settings, bundled models): whole image in, fields matched by key."""
    from oanet.ingest.engine import Read, box_of
    from oanet.ingest.reading import find_by_key
    from oanet.ingest.stage import build_table

    engine = ocr.cnocr
    unboxed = replace(layout, fields=tuple(replace(f, roi=None) for f in layout.fields))
    engine.ocr(np.repeat(images[0][:, :, None], 3, axis=2))   # warm-up
    t0 = time.perf_counter()
    reads = {}
    for name, img in zip(names, images, strict=True):
        out = engine.ocr(np.repeat(img[:, :, None], 3, axis=2))
        found = find_by_key(unboxed, [Read(str(o["text"]), float(o["score"]), box_of(o["position"])) for o in out])
        reads[name] = [found.get(f.name) for f in unboxed.fields]
    seconds = time.perf_counter() - t0
    table = build_table(labels[labels["image"].isin(names)], reads, {n: "" for n in names}, unboxed, min_conf)
    return seconds, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=Path, help="magnetic-tile folder; default procedural objects")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--plain-n", type=int, default=40)
    ap.add_argument("--preset", default="clean")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds of ingest, bare and plain")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers for the ingest-2w row (0/1: skip it)")
    args = ap.parse_args()
    apply_offline_defaults()
    params = load_params()
    from oanet.ingest.engine import Ocr
    from oanet.ingest.reading import boxed_crops
    from oanet.ingest.stage import CHUNK_IMAGES, build_engines, on_engines
    from oanet.ingest.stage import run as ingest
    from oanet.synth.stage import run as synth

    work = Path(tempfile.mkdtemp(prefix="oanet-ocr-speed-"))
    data = work / "data"
    synth(replace(params.synth, n=args.n, seed=args.seed, preset=args.preset,
                  objects=str(args.objects) if args.objects else None), data, progress=False)
    layout = load_layout(data / "layout.yaml")
    labels = pd.read_csv(data / "labels.csv")
    truth = pd.read_csv(data / "truth.csv", dtype=str, keep_default_na=False)
    names = list(labels["image"])
    images = [np.asarray(Image.open(data / n)) for n in names]

    cfg = replace(params.ingest, cache=None)
    engines = build_engines(cfg, layout)
    crop_chunks = [[c for img in images[i:i + CHUNK_IMAGES] for c in boxed_crops(img, layout, cfg.crop_pad)
                    if c is not None] for i in range(0, len(images), CHUNK_IMAGES)]
    list(on_engines(engines, lambda e, crops: e.recognize(crops[:64]), crop_chunks[:len(engines)]))   # build, warm
    plain_engine = Ocr(stock=True)
    k = min(args.plain_n, len(names))

    def bare() -> None:
        list(on_engines(engines, lambda e, crops: e.recognize(crops, batch_size=cfg.batch_size), crop_chunks))

    rounds = []
    for _ in range(args.rounds):
        r_ingest = ingest(cfg, data, work / "ocr.parquet", work / "q.parquet", ocr=engines)
        t0 = time.perf_counter()
        bare()
        bare_s = time.perf_counter() - t0
        plain_s, plain_table = plain_cnocr(plain_engine, images[:k], names[:k], labels, layout, cfg.min_confidence)
        rounds.append({"ingest": len(names) / r_ingest.seconds, "bare": len(names) / bare_s, "plain": k / plain_s})
    ingest_acc = exact_rate(pd.read_parquet(work / "ocr.parquet"), truth, layout)
    crops = [c for chunk in crop_chunks for c in chunk]

    cached_cfg = replace(params.ingest, cache=str(work / "cache.sqlite"))
    ingest(cached_cfg, data, work / "ocr2.parquet", work / "q2.parquet", ocr=engines)
    r_cached = ingest(cached_cfg, data, work / "ocr3.parquet", work / "q3.parquet", ocr=engines)

    r_workers = None
    if args.workers > 1:
        from oanet.ingest.distributed import connect, warm_up

        workers_cfg = replace(cfg, workers=args.workers)
        with connect(workers_cfg) as client:
            warm_up(client, workers_cfg, layout)
            r_workers = ingest(workers_cfg, data, work / "ocr_w.parquet", work / "q_w.parquet", client=client)
        same = pd.read_parquet(work / "ocr_w.parquet").equals(pd.read_parquet(work / "ocr.parquet"))

    plain_acc = exact_rate(plain_table, truth, layout)
    ingest_sub_acc = exact_rate(pd.read_parquet(work / "ocr.parquet").head(k), truth.head(k), layout)

    rate = {key: float(np.median([r[key] for r in rounds])) for key in ("ingest", "bare", "plain")}
    rate["cached"] = len(names) / r_cached.seconds
    print(f"{len(names)} images ({args.preset}, {'magnetic-tile' if args.objects else 'procedural'} objects), "
          f"{len(crops)} value crops; plain CnOCR on the first {k}; {len(engines)} ingest engines, "
          f"charset {cfg.charset}; medians of {len(rounds)} rounds")
    for i, r in enumerate(rounds, 1):
        print(f"  round {i}: ingest {r['ingest']:5.1f}  bare {r['bare']:5.1f}  plain {r['plain']:4.2f} images/s   "
              f"ingest/bare {r['ingest'] / r['bare']:.2f}x  ingest/plain {r['ingest'] / r['plain']:.1f}x")
    for name, v in rate.items():
        print(f"  {name:7s} {v:8.1f} images/s")
    print(f"ingest / bare   = {rate['ingest'] / rate['bare']:.2f}x   (target >= 0.8x)")
    print(f"ingest / plain  = {rate['ingest'] / rate['plain']:.1f}x   (target >= 10x)")
    if r_workers is not None:
        rate_w = len(names) / r_workers.seconds
        print(f"  ingest-{args.workers}w {rate_w:6.1f} images/s   (OCR on {args.workers} Dask workers, warm; "
              f"table identical to ingest: {same})")
        print(f"ingest-{args.workers}w / bare  = {rate_w / rate['bare']:.2f}x   (target >= 0.8x)")
        print(f"ingest-{args.workers}w / plain = {rate_w / rate['plain']:.1f}x   (target >= 10x)")
    print(f"cached re-run   = {rate['cached']:.0f} images/s (target >= 200), {r_cached.cached_images} from cache")
    print(f"exact match on the {k} images plain read: ingest {ingest_sub_acc:.2%}, plain {plain_acc:.2%}; "
          f"ingest on all {len(names)}: {ingest_acc:.2%}")
    ok = (rate["ingest"] >= 0.8 * rate["bare"] and rate["ingest"] >= 10 * rate["plain"]
          and rate["cached"] >= 200 and ingest_sub_acc >= plain_acc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
