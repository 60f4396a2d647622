"""OCR on other machines' panels: field exact match per style of the synth style corpus.

    python bench/ocr_styles.py [--n 100] [--styles a,b] [--objects ../shared/data/magnetic-tile]

For every panel style (`oanet/synth/styles/`: fonts, polarity, separators, key
punctuation, unit placement, canvas, RGB/JPEG, noise) it renders N units and ingests
them three ways, each scored against truth.csv (oanet.ingest.accuracy):
- boxes: the style's layout.yaml, line boxes (the fast path);
- keys only: the same layout without boxes (CnOCR's detector, fields matched by key);
- suggested: `oanet layout suggest` on the first --suggest-from images, unedited.
Prints one row per style and way, with the targets (exact >= 99.5% boxes, 99% keys
only, 98% suggested; wrong <= 0.1%), and writes reports/ocr_styles.{md,json}.
Exit code 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

TARGETS = {"boxes": 0.995, "keys only": 0.99, "suggested": 0.98}
MAX_WRONG = 0.001


def read_and_score(data: Path, layout_path: Path, ingest_cfg, work: Path, tag: str | None = None) -> dict:
    """Ingest `data` with `layout_path` (no cache) and score it against its truth.csv; the table is
    written to work/<tag>.parquet (tag: the layout's stem)."""
    from oanet.ingest.accuracy import overall, score_fields
    from oanet.ingest.stage import run as ingest
    from oanet.layout import load_layout

    tag = tag or layout_path.stem
    t0 = time.perf_counter()
    out = work / f"{tag}.parquet"
    ingest(replace(ingest_cfg, cache=None), data, out, work / f"{tag}_q.parquet", layout_path=layout_path)
    seconds = time.perf_counter() - t0
    truth = pd.read_csv(data / "truth.csv", dtype=str, keep_default_na=False)
    scores = score_fields(pd.read_parquet(out), truth, load_layout(layout_path), load_layout(data / "layout.yaml"))
    worst = scores.sort_values("exact").iloc[0]
    return {**overall(scores), "seconds": seconds,
            "worst_field": f"{worst['field']} {worst['exact']:.3f}", "fields_table": scores.to_dict("records")}


def one_style(style: str, args, params, work: Path) -> list[dict]:
    from oanet.ingest.engine import Ocr
    from oanet.ingest.suggest import suggest
    from oanet.layout import load_layout
    from oanet.synth.stage import run as synth

    data = work / style / "data"
    synth(replace(params.synth, n=args.n, style=style, objects=str(args.objects) if args.objects else None),
          data, progress=False)
    layout = load_layout(data / "layout.yaml")
    keys_only = work / style / "keys_only.yaml"
    layout.without_boxes().save(keys_only)
    images = sorted((data / "images").iterdir())[: args.suggest_from]
    suggested = work / style / "suggested.yaml"
    suggest(images, Ocr(params.ingest.rec_model), name=f"{style}-suggested", progress=False).save(suggested)
    rows = []
    ways = (("boxes", data / "layout.yaml"), ("keys only", keys_only), ("suggested", suggested))
    for way, path in [w for w in ways if w[0] in args.ways]:
        r = read_and_score(data, path, params.ingest, work / style)
        ok = r["exact"] >= TARGETS[way] and r["wrong"] <= MAX_WRONG
        rows.append({"style": style, "way": way, **r, "target": TARGETS[way], "met": ok})
        print(f"  {style:<18} {way:<10} exact {r['exact']:.4f} wrong {r['wrong']:.4f} missing {r['missing']:.4f} "
              f"({r['fields']} fields, {r['seconds']:.0f} s; worst {r['worst_field']}){'' if ok else '  MISSED'}",
              flush=True)
    return rows


def markdown(rows: list[dict], n: int) -> str:
    lines = [f"# OCR per panel style ({n} units each)", "",
             "| style | way | exact | wrong | missing | target | met | worst field |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['style']} | {r['way']} | {r['exact']:.2%} | {r['wrong']:.2%} | {r['missing']:.2%} | "
              f">= {r['target']:.1%} | {'yes' if r['met'] else '**no**'} | {r['worst_field']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    from oanet.config import load_params
    from oanet.env import apply_offline_defaults
    from oanet.synth.styles import STYLES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="units per style")
    ap.add_argument("--styles", help="comma-separated style names (default: every style)")
    ap.add_argument("--objects", type=Path, help="magnetic-tile folder for the object images (default: procedural)")
    ap.add_argument("--suggest-from", type=int, default=6, help="images `layout suggest` sees")
    ap.add_argument("--ways", default="boxes,keys only,suggested", help="comma-separated subset of the three ways")
    ap.add_argument("--out", type=Path, default=Path("reports/ocr_styles"))
    args = ap.parse_args()
    args.ways = args.ways.split(",")
    apply_offline_defaults()
    params = load_params()
    styles = args.styles.split(",") if args.styles else list(STYLES)
    work = Path(tempfile.mkdtemp(prefix="oanet-ocr-styles-"))
    rows = [r for s in styles for r in one_style(s, args, params, work)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(markdown(rows, args.n))
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=str))
    print(f"\n{markdown(rows, args.n)}\nwritten: {args.out.with_suffix('.md')}, {args.out.with_suffix('.json')}")
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
