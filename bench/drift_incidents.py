"""The drift report on simulated incidents, read by the real OCR, for one or more panel styles.

    python bench/drift_incidents.py                       # aoi-v1, mono-cream, serif-grab
    python bench/drift_incidents.py --styles aoi-v1 --night-units 96 --clean-nights 10

Per style: a reference set (`--reference-units`, seed 7) is synthesised and read by `oanet ingest`;
its first 70% of lots fit the reference and the rest calibrate the thresholds, as the drift stage
does with train and val. Then nights of `--night-units` from the same generator, each read the same
way: one per incident (seed 21) and `--clean-nights` clean ones (seeds 101...). Each night goes
through `oanet.drift.stage.run`, the function behind `oanet drift --data`.

What counts as right, per incident (the issue's "names the right modality and field first"):
- exposure: `image:brightness` first;  process: `ocr:sinter_temp_c` first;
- camera: `image:centre_x` or `image:centre_y` first (the object moves right and down);
- font: an OCR field first, and its missing rate above the reference's (the font breaks reading);
and the night alerts. A clean night is right when it does not alert.

Prints a table per style and writes `results.json` under `--out`. Nothing here is timed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

INCIDENTS = ("exposure", "font", "process", "camera")
EXPECTED = {"exposure": ("image:brightness",), "process": ("ocr:sinter_temp_c",),
            "camera": ("image:centre_x", "image:centre_y")}


def read(folder: Path, ingest_cfg):
    """The folder's OCR table (and its quarantine) written beside it."""
    import pandas as pd

    from oanet.ingest.stage import run as ingest

    result = ingest(ingest_cfg, folder, folder / "ocr.parquet", folder / "ocr_quarantine.parquet")
    return pd.read_parquet(result.out), result.quarantined


def synthesise(out: Path, n: int, seed: int, style: str, incident: str | None = None) -> Path:
    from oanet.config import SynthConfig
    from oanet.synth.stage import run as synth

    synth(SynthConfig(n=n, seed=seed, style=style), out, progress=False, incident=incident)
    return out


def reference_for(style_dir: Path, args, ingest_cfg, drift_cfg):
    """(reference, layout): fitted on the first 70% of lots, calibrated on the rest."""
    from oanet.drift.reference import fit_reference
    from oanet.drift.stage import object_boxes
    from oanet.drift.statistics import image_statistics
    from oanet.features import TabularSchema
    from oanet.layout import load_layout

    folder = synthesise(style_dir / "reference-set", args.reference_units, 7, args.style)
    table, _ = read(folder, ingest_cfg)
    layout = load_layout(folder / "layout.yaml")
    lots = sorted(table["lot"].astype(str).unique())
    cut = max(1, round(0.7 * len(lots)))
    parts = [table[table["lot"].astype(str).isin(chosen)] for chosen in (lots[:cut], lots[cut:])]
    stats = [image_statistics(object_boxes(folder, rows["image"].tolist(), layout.object_roi, drift_cfg.box_size))
             for rows in parts]
    reference = fit_reference(TabularSchema.from_layout(layout), parts[0], stats[0], parts[1], stats[1],
                              layout.object_roi, drift_cfg.box_size, drift_cfg.ocr_bins,
                              source=f"{args.style}: {len(parts[0])} rows of lots {lots[0]}..{lots[cut - 1]}")
    return reference


def verdict(incident: str, summary: dict, reference) -> bool:
    """Whether the night was called right (module docstring)."""
    if incident == "none":
        return not summary["alert"]
    top = summary["items"][0]
    if incident == "font":
        field = top["label"].split(":", 1)[1]
        named = top["modality"] == "ocr" and top["missing_rate"] > reference.missing_rate.get(field, 0.0)
    else:
        named = top["label"] in EXPECTED[incident]
    return bool(summary["alert"] and named)


def one_style(args, out: Path) -> list[dict]:
    from oanet.config import DriftConfig, IngestConfig, PathsConfig
    from oanet.drift.stage import Night, run

    ingest_cfg, drift_cfg = IngestConfig(cache=None), DriftConfig()
    style_dir = out / args.style
    nowhere = style_dir / "no-models"            # no champion's models: the report is about the data alone
    paths = dataclasses.replace(PathsConfig(), drift_reports=str(style_dir / "reports"), bag_models=str(nowhere),
                                fusion_models=str(nowhere), gate=str(nowhere / "gate.json"))
    reference = reference_for(style_dir, args, ingest_cfg, drift_cfg)
    nights = [(name, 21, name) for name in INCIDENTS]
    nights += [(f"clean-{k}", 101 + k, "none") for k in range(args.clean_nights)]
    rows = []
    for name, seed, incident in nights:
        folder = synthesise(style_dir / name, args.night_units, seed, args.style,
                            None if incident == "none" else incident)
        table, quarantined = read(folder, ingest_cfg)
        summary = run(drift_cfg, Night(name, table, folder), reference, paths).summary
        top = summary["items"][0]
        rows.append({"style": args.style, "night": name, "incident": incident, "seed": seed, "rows": len(table),
                     "quarantined": quarantined, "alert": summary["alert"], "first": top["label"],
                     "score": top["score"], "missing_rate": top["missing_rate"],
                     "right": verdict(incident, summary, reference), "headline": summary["headline"]})
        print(f"  {args.style:<12} {name:<9} alert={summary['alert']!s:<5} first={top['label']:<22} "
              f"score={top['score']:.2f} right={rows[-1]['right']}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| style | night | rows | alert | named first (score) | right |", "|---|---|---|---|---|---|"]
    for r in rows:
        missing = f", {r['missing_rate']:.0%} missing" if r["first"].startswith("ocr:") and r["missing_rate"] else ""
        lines.append(f"| {r['style']} | {r['night']} | {r['rows']} | {'yes' if r['alert'] else 'no'} | "
                     f"`{r['first']}` ({r['score']:.2f}{missing}) | {'yes' if r['right'] else '**no**'} |")
    clean = [r for r in rows if r["incident"] == "none"]
    false_alarms = sum(r["alert"] for r in clean)
    lines.append(f"\nclean nights: {false_alarms} false alarms in {len(clean)}; largest clean score "
                 f"{max(r['score'] for r in clean):.2f}" if clean else "")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default="aoi-v1,mono-cream,serif-grab",
                        help="comma-separated panel styles (oanet/synth/styles)")
    parser.add_argument("--reference-units", type=int, default=480)
    parser.add_argument("--night-units", type=int, default=96)
    parser.add_argument("--clean-nights", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("reports/bench/drift"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start, rows = time.perf_counter(), []
    for style in [s.strip() for s in args.styles.split(",") if s.strip()]:
        print(f"{style}: reference of {args.reference_units} units, nights of {args.night_units}", flush=True)
        rows += one_style(argparse.Namespace(**{**vars(args), "style": style}), args.out)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n" + table(rows))
    print(f"\n{len(rows)} nights in {time.perf_counter() - start:.0f} s; results in {args.out / 'results.json'}")
    return 0 if all(r["right"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
