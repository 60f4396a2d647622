"""The MT-AOI benchmark end to end: build the data set, OCR it, validate it, evaluate.

    python bench/mt_aoi.py --objects ../shared/data/magnetic-tile [--profile cpu] [--repeats N]

1. `oanet synth` renders one AOI image per magnetic-tile photograph (all 1,344 by
   default) with the aoi-v1 panel; photographs of one physical tile share a lot.
2. `oanet ingest` reads the panels with CnOCR, `oanet validate` applies the data gate.
3. `oanet evaluate --profile P` runs the paper's protocol on the validated table.
Every step runs as its own command on a params file derived from params.yaml, whose
paths point under data/benchmark/<name>/ and reports/benchmark/<name>/; the reports
are evaluation.json, ablation.md, robustness.md and plots/. The time of each step and
the total are printed at the end. Steps whose output exists are skipped unless --fresh.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def derived_params(base: Path, data: Path, reports: Path, objects: Path, n: int, profile: str) -> dict:
    """params.yaml with every path of the benchmark's steps moved under `data` and `reports`."""
    p = yaml.safe_load(base.read_text())
    raw = data / "raw"
    p["synth"].update(objects=str(objects), n=n)
    p["paths"].update(raw=str(raw), ocr=str(data / "ocr.parquet"), ocr_quarantine=str(data / "ocr_quarantine.parquet"),
                      clean=str(data / "clean.parquet"), quarantine=str(data / "quarantine.parquet"),
                      validation_reports=str(reports / "validation"), evaluation_dir=str(reports),
                      evaluation=str(reports / "evaluation.json"))
    p["evaluate"].update(profile=profile)
    return p


def count_photos(objects: Path) -> int:
    return len(list(objects.glob("MT_*/Imgs/*.jpg")))


def step(name: str, cmd: list[str], times: dict[str, float]) -> None:
    print(f"\n== {name}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    times[name] = time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=Path, default=ROOT.parent / "shared" / "data" / "magnetic-tile")
    ap.add_argument("--name", default="mt-aoi", help="folder name under data/benchmark and reports/benchmark")
    ap.add_argument("--profile", default="cpu", help="evaluate profile (quick | cpu | cpu_paper_encoders | paper)")
    ap.add_argument("--n", type=int, default=0, help="units to render (0: one per photograph)")
    ap.add_argument("--repeats", type=int, help="override the profile's repeats")
    ap.add_argument("--encoders", help="override the profile's encoders (comma-separated)")
    ap.add_argument("--reports", type=Path, help="report folder (default reports/benchmark/NAME)")
    ap.add_argument("--fresh", action="store_true", help="rebuild the data set and the OCR table")
    args = ap.parse_args(argv)
    if not args.objects.is_dir() or not count_photos(args.objects):
        print(f"error: {args.objects} holds no MT_<Class>/Imgs/*.jpg (the magnetic-tile data set)", file=sys.stderr)
        return 2
    data = ROOT / "data" / "benchmark" / args.name
    reports = args.reports or ROOT / "reports" / "benchmark" / args.name
    if args.fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    n = args.n or count_photos(args.objects)
    params_file = data / "params.yaml"
    params_file.write_text(yaml.safe_dump(derived_params(ROOT / "params.yaml", data, reports, args.objects.resolve(),
                                                         n, args.profile), sort_keys=False))
    oanet, pf = [str(Path(sys.executable).parent / "oanet")], ["--params", str(params_file)]
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if not (data / "raw" / "labels.csv").exists():
        step("synth", [*oanet, "synth", "--out", str(data / "raw"), "--objects", str(args.objects), "--n", str(n),
                       *pf], times)
    if not (data / "clean.parquet").exists():
        step("ingest", [*oanet, "ingest", *pf], times)
        step("validate", [*oanet, "validate", *pf], times)
    extra = (["--repeats", str(args.repeats)] if args.repeats else []) + \
        (["--encoders", args.encoders] if args.encoders else [])
    step("evaluate", [*oanet, "evaluate", "--profile", args.profile, *extra, *pf], times)
    total = time.perf_counter() - t0
    print("\n" + "\n".join(f"{k:>9}: {v / 60:6.1f} min" for k, v in times.items())
          + f"\n    total: {total / 60:6.1f} min  (reports in {reports})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
