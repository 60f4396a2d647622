"""What each ingredient of the CPU image recipe costs or gains: one ablation at a time.

    python bench/image_recipe.py [--data data/benchmark/mt-aoi] [--seeds 0 1] [--only NAME ...]

Trains the image-only CNN of the `cpu` evaluation profile on the MT-AOI table that
`make benchmark` builds (run it first), once with the full recipe and once with each
ingredient taken out or changed, on the same splits: whole physical tiles per lot, a
30% test split and the val fold of the profile's protocol, a new split per seed.
Scores are on the test rows: ROC AUC against the object-defect label (what an image can
show), the same under GridMask (ratio 0.5), and the training time. Writes
image_recipe.md and image_recipe.json beside the benchmark's reports.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# name -> (fuse overrides, shaped like the fuse section; load options): each row changes one thing of the full recipe.
VARIANTS = {
    "full recipe": ({}, {}),
    "padded object box (no tight cut)": ({}, {"tight": False}),
    "one mean/std for all images (no per-image standardisation)": ({"network": {"image_norm": "dataset"}}, {}),
    "no photometric jitter": ({"training": {"jitter": 0.0}}, {}),
    "128 px": ({"training": {"image_size": 128}}, {}),
    "30 epochs": ({"optimiser": {"epochs": 30}}, {}),
    "average pooling only": ({"network": {"encoder": "narrow_resnet_avg"}}, {}),
    "resnet18 encoder": ({"network": {"encoder": "resnet18"}}, {}),
    "SGD + cosine, paper settings": ({"optimiser": {"optimizer": "sgd", "lr": 0.01, "weight_decay": 0.0005,
                                                    "schedule": "cosine"}}, {}),
    "no test-time flips": ({"network": {"tta": False}}, {}),
    "unit label (process-only defects as positives)": ({"training": {"image_label": "unit"}}, {}),
    "GridMask while training (p 0.3)": ({"training": {"gridmask_prob": 0.3}}, {}),
    "occluded (black) pixels filled with the mean": ({"network": {"fill_occlusion": True}}, {}),
    "GridMask while training, occluded pixels filled": ({"training": {"gridmask_prob": 0.3},
                                                         "network": {"fill_occlusion": True}}, {}),
    # candidates for clearing 0.92 without giving up occlusion robustness (issue 12)
    "no GridMask while training": ({"training": {"gridmask_prob": 0.0, "cnn_gridmask_prob": 0.0}}, {}),
    "GridMask on one batch in ten": ({"training": {"gridmask_prob": 0.1, "cnn_gridmask_prob": 0.1}}, {}),
    "wider encoder (24-48-96-192)": ({"network": {"encoder": "narrow_resnet_wide"}}, {}),
    "90 epochs (the profile trained 90 until 2026-11-30)": ({"optimiser": {"epochs": 90}}, {}),
}


def register_ablation_encoders() -> None:
    """The CPU encoder with average pooling only, for the pooling row."""
    from oanet.fusion.encoders import EncoderSpec, NarrowResNet, encoder_names, register_encoder

    if "narrow_resnet_avg" not in encoder_names():
        register_encoder("narrow_resnet_avg", EncoderSpec(NarrowResNet, "conv1", lambda m: m.trunk(), 128, 1, "avg"))
    if "narrow_resnet_wide" not in encoder_names():
        register_encoder("narrow_resnet_wide", EncoderSpec(lambda: NarrowResNet((24, 48, 96, 192)), "conv1",
                                                           lambda m: m.trunk(), 192, 1, "avgmax"))


def split_rows(table, layout, params, seed: int) -> dict:
    """{train, val, test} row positions: the evaluation protocol's split for this seed."""
    from oanet.split import make_split

    split = make_split(table, layout, dataclasses.replace(params.split, seed=params.split.seed + seed, stable=False))
    return {p: np.flatnonzero(split["split"].to_numpy() == p) for p in ("train", "val", "test")}


def run_variant(name: str, cfg, load: dict, table, layout, data_dir: Path, parts: dict, cache: dict) -> dict:
    import torch
    from sklearn.metrics import roc_auc_score

    from oanet.fusion.data import image_labels, load_rois
    from oanet.fusion.stage import train_one
    from oanet.fusion.train import TrainData, predict_proba
    from oanet.perturb import grid_mask_images

    size = cfg.training.image_size
    key = (size, load.get("tight", True))
    if key not in cache:
        cache[key] = load_rois(data_dir, table["image"].tolist(), layout.object_roi, size, **load)
    images = cache[key]
    y_obj = image_labels(table, cfg.training.process_defects)
    tr, te = parts["train"], parts["test"]
    data = TrainData.build(images[tr], None, table["label"].to_numpy()[tr])
    trained = train_one(name, cfg, False, 0, data, "cpu", image_labels=torch.from_numpy(y_obj[tr]))
    p = predict_proba(trained.model, TrainData.build(images[te], None, None))
    p_grid = predict_proba(trained.model, TrainData.build(grid_mask_images(images[te], 0.5, seed=0), None, None))
    return {"auc": float(roc_auc_score(y_obj[te], p)), "auc_gridmask": float(roc_auc_score(y_obj[te], p_grid)),
            "seconds": trained.seconds}


def markdown(results: dict, seeds: list[int], recipe: dict) -> str:
    full = np.mean([r["auc"] for r in results["full recipe"]])
    lines = ["# The CPU image recipe, one ingredient at a time", "",
             f"Image-only CNN of the `cpu` profile on MT-AOI; test ROC AUC against the object-defect label, "
             f"mean ± std over seeds {seeds} (a new tile-grouped split each). Full recipe: `{recipe}`.", "",
             "| variant | ROC AUC | change | ROC AUC under GridMask 0.5 | train seconds |", "|---|---|---|---|---|"]
    for name, rows in results.items():
        auc, grid, sec = (np.array([r[k] for r in rows]) for k in ("auc", "auc_gridmask", "seconds"))
        delta = "" if name == "full recipe" else f"{auc.mean() - full:+.3f}"
        lines.append(f"| {name} | {auc.mean():.3f} ± {auc.std():.3f} | {delta} | {grid.mean():.3f} ± {grid.std():.3f} "
                     f"| {sec.mean():.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from oanet.config import load_params, updated
    from oanet.layout import load_layout

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmark" / "mt-aoi")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--only", nargs="+", help="variant names to run (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmark" / "mt-aoi")
    args = ap.parse_args(argv)
    if not (args.data / "clean.parquet").exists():
        print(f"error: {args.data / 'clean.parquet'} not found; run `make benchmark` first", file=sys.stderr)
        return 2
    register_ablation_encoders()
    params = load_params(args.data / "params.yaml")
    profile = params.evaluate.cpu
    table = pd.read_parquet(args.data / "clean.parquet").reset_index(drop=True)
    layout = load_layout(args.data / "raw" / "layout.yaml")
    names = args.only or list(VARIANTS)
    results: dict[str, list] = {n: [] for n in names}
    cache: dict = {}
    for seed in args.seeds:
        parts = split_rows(table, layout, params, seed)
        for name in names:
            overrides, load = VARIANTS[name]
            base = profile.fuse_config(params.fuse, "narrow_resnet", params.fuse.seed + seed)
            cfg = updated(base, overrides, "fuse")
            t0 = time.perf_counter()
            results[name].append(run_variant(name, cfg, load, table, layout, args.data / "raw", parts, cache))
            r = results[name][-1]
            print(f"seed {seed} {name:<60} auc {r['auc']:.3f}  gridmask {r['auc_gridmask']:.3f}  "
                  f"{time.perf_counter() - t0:5.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "image_recipe.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "image_recipe.md").write_text(markdown(results, args.seeds, profile.fuse))
    print("\n" + (args.out / "image_recipe.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
