"""OCR accuracy of `oanet ingest` against the printed truth of a synthetic AOI set.

    python bench/ocr_accuracy.py --objects ../shared/data/magnetic-tile --n 500 --preset clean

Synthesises the set (or reuses --data), ingests it without the cache, and prints
per-field and overall: exact match, wrong (a value present but different from the
truth), and missing by reason code. Exit code 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

from oanet.config import load_params
from oanet.env import apply_offline_defaults
from oanet.ingest.accuracy import overall, score_fields
from oanet.layout import load_layout

TARGETS = {"clean": 0.995, "noisy": 0.98}
MAX_WRONG = 0.002


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="an existing synthetic set (with truth.csv)")
    ap.add_argument("--objects", type=Path, help="magnetic-tile folder for the object images")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--preset", default="clean", choices=sorted(TARGETS))
    ap.add_argument("--json", type=Path, help="also write the scores here")
    args = ap.parse_args()
    apply_offline_defaults()
    params = load_params()
    from oanet.ingest.stage import run as ingest
    from oanet.synth.stage import run as synth

    work = Path(tempfile.mkdtemp(prefix="oanet-ocr-acc-"))
    data = args.data
    if data is None:
        data = work / "data"
        synth(replace(params.synth, n=args.n, seed=args.seed, preset=args.preset,
                      objects=str(args.objects) if args.objects else None), data)
    result = ingest(replace(params.ingest, cache=None), data, work / "ocr.parquet", work / "q.parquet")
    print(result.summary())
    layout = load_layout(data / "layout.yaml")
    truth = pd.read_csv(data / "truth.csv", dtype=str, keep_default_na=False)
    scores = score_fields(pd.read_parquet(work / "ocr.parquet"), truth, layout, layout)
    pd.set_option("display.width", 200)
    print(scores.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    total = overall(scores)
    cells, exact, wrong, missing = total["fields"], total["exact"], total["wrong"], total["missing"]
    target = TARGETS[args.preset]
    print(f"\n{args.preset}: {len(truth)} images, {int(cells)} fields read; exact {exact:.4%} (target >= {target:.1%}), "
          f"wrong {wrong:.4%} (target <= {MAX_WRONG:.1%}), missing {missing:.4%}")
    if args.json:
        args.json.write_text(json.dumps({"preset": args.preset, "exact": exact, "wrong": wrong, "missing": missing,
                                         "images": len(truth), "fields": scores.to_dict("records")}, indent=1))
    return 0 if exact >= target and wrong <= MAX_WRONG else 1


if __name__ == "__main__":
    sys.exit(main())
