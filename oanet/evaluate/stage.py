"""Stage `evaluate`: the paper's protocol over repeats, with corruptions, sweeps and baselines.

Reads paths.clean and the images of paths.raw. Writes, under paths.evaluation_dir:
ablation.md (Table 1 and the baselines), robustness.md (Table 2 and the sweeps),
plots/{sweeps,confusion,pr_curve}.png, and paths.evaluation (DVC metrics: profile,
per-encoder clean metrics of every model, Table 2, the goals).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.errors import OanetError


@dataclass(frozen=True)
class EvaluateResult:
    metrics: dict
    files: list[Path]
    seconds: float

    def summary(self) -> str:
        lines = [f"evaluate: profile {self.metrics['profile']['name']}, {self.metrics['profile']['repeats']} repeats, "
                 f"{self.seconds:.0f} s"]
        for enc, g in self.metrics["goals"].items():
            lines.append(f"  {enc:<8} OANet recall {100 * g['recall']:.1f} accuracy {100 * g['accuracy']:.1f} "
                         f"ROC AUC {g['roc_auc']:.3f}; >=93/90: {g['recall_93_accuracy_90']}, "
                         f"+10 over CNN: {g['recall_10_over_cnn']}, beats baselines: {g['beats_every_baseline']}, "
                         f"robust: {g['robust_within_5']}")
            lines += [f"    loses to {loss}" for loss in g["losses"]]
        lines.append("  written: " + ", ".join(str(p) for p in self.files))
        return "\n".join(lines)


def write_predictions(repeats: list[dict], path: Path) -> Path:
    """Every model's clean probability on the val and test rows of every repeat, one row per
    (repeat, encoder, part, model, row): for plots, or to try another threshold rule offline."""
    frames = []
    for r, rep in enumerate(repeats):
        for part in ("val", "clean"):
            for enc, probs in rep[part].items():
                label = np.asarray(probs["label"])
                for model, p in probs.items():
                    if model in ("label", "gate_decision"):
                        continue
                    frames.append(pd.DataFrame({"repeat": r, "encoder": enc, "part": "val" if part == "val" else "test",
                                                "model": model, "row": np.arange(len(label)), "label": label,
                                                "prob": np.asarray(p, dtype=float)}))
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    return path


def run(params, layout_path: str | Path, echo=None) -> EvaluateResult:
    import torch

    from oanet.device import resolve_device
    from oanet.evaluate.plots import plot_confusion_and_pr, plot_sweeps
    from oanet.evaluate.protocol import run_repeat
    from oanet.evaluate.tables import ablation_md, aggregate, goals, robustness_md
    from oanet.fusion.data import load_rois
    from oanet.layout import load_layout

    cfg, paths = params.evaluate, params.paths
    profile = cfg.chosen()
    if cfg.robustness_encoder not in profile.encoders:     # e.g. the cpu profile's single CPU encoder
        if echo:
            echo(f"evaluate: robustness_encoder {cfg.robustness_encoder} is not in profile {cfg.profile}; "
                 f"Table 2 uses {profile.encoders[0]}")
        cfg = dataclasses.replace(cfg, robustness_encoder=profile.encoders[0])
    if profile.repeats < 1:
        raise OanetError("evaluate: a profile needs at least one repeat")
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    layout = load_layout(layout_path)
    table = pd.read_parquet(paths.clean).reset_index(drop=True)
    images = load_rois(paths.raw, table["image"].tolist(), layout.object_roi, profile.image_size)
    repeats = []
    for r in range(profile.repeats):
        if echo:
            echo(f"evaluate: repeat {r + 1}/{profile.repeats} ({len(profile.encoders)} encoders x 4 networks)")
        repeats.append(run_repeat(params, profile, table, layout, images, r, device, echo))

    agg = aggregate(repeats)
    prof = {"name": cfg.profile, **dataclasses.asdict(profile), "device": str(device),
            "card": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"}
    out = Path(paths.evaluation_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweeps = {"missing_rates": list(cfg.missing_rates), "grid_ratios": list(cfg.grid_ratios)}
    (out / "ablation.md").write_text(ablation_md(agg, prof, len(repeats)))
    (out / "robustness.md").write_text(robustness_md(agg, cfg.robustness_encoder, len(repeats), sweeps))
    enc = cfg.robustness_encoder
    pooled = {k: np.concatenate([rep["clean"][enc][k] for rep in repeats]) for k in repeats[0]["clean"][enc]}
    plots = [plot_sweeps(agg, enc, cfg.missing_rates, cfg.grid_ratios, out / "plots" / "sweeps.png"),
             *plot_confusion_and_pr(pooled, enc,
                                    out / "plots" / "confusion.png", out / "plots" / "pr_curve.png")]
    metrics = {"profile": prof, "repeats": len(repeats),
               "clean": {e: agg[e]["clean"] for e in agg},
               "table2": {c: agg[enc][c] for c in ("clean", "ocr_loss", "gridmask", "both")},
               "goals": goals(agg, enc), "gates": [rep["gate"] for rep in repeats],
               "sweeps": {e: {k: v for k, v in agg[e].items() if "=" in k} for e in agg}}
    metrics_file = Path(paths.evaluation)
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    metrics_file.write_text(json.dumps(metrics, indent=1) + "\n")
    predictions = write_predictions(repeats, out / "predictions.parquet")
    files = [out / "ablation.md", out / "robustness.md", *plots, metrics_file, predictions]
    return EvaluateResult(metrics, files, time.perf_counter() - t0)
