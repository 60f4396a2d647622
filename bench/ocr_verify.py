"""The second read of doubtful values: wrong values it stops, right values it costs, and its time.

    python bench/ocr_verify.py [--n 60] [--styles a,b] [--below 0.95]

For every panel style of the synth corpus, clean and noisy, for the font incident
(a smaller, other font: the reads a machine's new firmware would give) and for a panel
no part of oanet drew (bench/hand_drawn.py: clean, hard, vhard), it ingests the
same images twice, once without the check (ingest.verify_below 0) and once with it, and
scores both against truth.csv (oanet.ingest.accuracy): exact, WRONG (a value that is not
the printed one: the failure the check is for) and missing, with the seconds of each run
side by side. Writes reports/ocr_verify.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd


def score(data: Path, cfg, work: Path, tag: str) -> dict:
    """read_and_score (bench/ocr_styles.py), plus the reads the check looked at again and voided."""
    from ocr_styles import read_and_score

    from oanet.layout import load_layout

    result = read_and_score(data, data / "layout.yaml", cfg, work, tag)
    table, layout = pd.read_parquet(work / f"{tag}.parquet"), load_layout(data / "layout.yaml")
    reasons = pd.concat([table[f"{f.name}__reason"] for f in layout.fields]).value_counts().to_dict()
    # reads the check looked at again: parsed (or voided by it) with a score under verify_below
    doubtful = sum(int(((table[f"{f.name}__conf"] < cfg.verify_below) & (table[f"{f.name}__reason"].isna()
                        | (table[f"{f.name}__reason"] == "unconfirmed"))).sum()) for f in layout.fields)
    return {**result, "unconfirmed": int(reasons.get("unconfirmed", 0)), "checked": doubtful}


def main() -> None:
    from hand_drawn import draw

    from oanet.config import load_params
    from oanet.synth.stage import run as synth
    from oanet.synth.styles import STYLES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--styles", default=",".join(STYLES))
    ap.add_argument("--below", type=float, default=0.95, help="ingest.verify_below for the checked run")
    ap.add_argument("--out", type=Path, default=Path("reports/ocr_verify"))
    args = ap.parse_args()
    params = load_params("params.yaml")
    sets = [(s, p, None) for s in args.styles.split(",") for p in ("clean", "noisy")]
    sets.append(("aoi-v1", "clean", "font"))
    sets += [("hand-drawn", level, None) for level in ("clean", "hard", "vhard")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm-up"                 # the first ingest of a process loads and prunes the model
        synth(replace(params.synth, n=2), warm, progress=False)
        score(warm, replace(params.ingest, cache=None), Path(tmp), "warm-up")
        for style, preset, incident in sets:
            name = f"{style} {preset}" + (f" {incident}" if incident else "")
            data = Path(tmp) / name.replace(" ", "_")
            if style == "hand-drawn":           # a panel no part of oanet drew (bench/hand_drawn.py)
                draw(data, args.n, preset)
            else:
                synth(replace(params.synth, n=args.n, style=style, preset=preset), data, progress=False,
                      incident=incident)
            off = score(data, replace(params.ingest, cache=None, verify_below=0.0), data.parent, f"{data.name}_off")
            on = score(data, replace(params.ingest, cache=None, verify_below=args.below), data.parent,
                       f"{data.name}_on")
            rows.append({"set": name, "off": off, "on": on})
            print(f"{name:<24} wrong {off['wrong']:.2%} -> {on['wrong']:.2%}   missing {off['missing']:.2%} -> "
                  f"{on['missing']:.2%} ({on['checked']} checked, {on['unconfirmed']} unconfirmed)   "
                  f"time x{on['seconds'] / off['seconds']:.2f}", flush=True)
    total = {k: {m: sum(r[k][m] * r[k]["fields"] for r in rows) / sum(r[k]["fields"] for r in rows)
                 for m in ("exact", "wrong", "missing")} for k in ("off", "on")}
    seconds = {k: sum(r[k]["seconds"] for r in rows) for k in ("off", "on")}
    lines = ["| set | values | wrong, no check | wrong, checked | missing, no check | missing, checked | checked "
             "| unconfirmed | time |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['on']['fields']} | {r['off']['wrong']:.2%} | {r['on']['wrong']:.2%} | "
              f"{r['off']['missing']:.2%} | {r['on']['missing']:.2%} | {r['on']['checked']} | {r['on']['unconfirmed']} "
              f"| x{r['on']['seconds'] / r['off']['seconds']:.2f} |" for r in rows]
    lines.append(f"| all | {sum(r['on']['fields'] for r in rows)} | {total['off']['wrong']:.3%} | "
                 f"{total['on']['wrong']:.3%} | {total['off']['missing']:.2%} | {total['on']['missing']:.2%} | "
                 f"{sum(r['on']['checked'] for r in rows)} | {sum(r['on']['unconfirmed'] for r in rows)} | "
                 f"x{seconds['on'] / seconds['off']:.2f} |")
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"below": args.below, "n": args.n, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
