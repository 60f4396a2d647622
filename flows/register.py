"""Stage `register`: log the pipeline run to MLflow, register the model, apply the promotion rule.

    python -m flows.register [--params params.yaml]      (DVC stage `register`, `oanet register`)

One MLflow run per pipeline run, with a nested run per stage: params (params.yaml,
flattened), metrics (per-epoch training curves, CV metrics with spread, test metrics,
the gate's scenarios, the evaluation), artifacts (reports, plots, the GX validation
summary, the gate, the layout) and lineage tags (git commit, DVC data hash, params
hash, card). Then the bundle is logged as the pyfunc model `oanet`, registered as a
new version with alias `challenger`, and compared with the `champion` on the
challenger's own test rows (the champion is re-scored there, clean and under 60%
OCR loss + GridMask) before `champion` moves. A run with a missing stage output is
registered as incomplete and moves no alias.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from prefect import flow

from oanet.report import read_json


@dataclass(frozen=True)
class Registered:
    run_id: str
    version: str
    complete: bool
    metrics: dict
    decision: object | None        # oanet.promotion.Decision, None when incomplete

    def summary(self) -> str:
        m = self.metrics
        head = (f"register: run {self.run_id[:8]}, version {self.version} "
                f"({'complete' if self.complete else 'INCOMPLETE: no alias moved'})")
        if not m:
            return head
        lines = [head, f"  test recall {m['recall']:.3f} accuracy {m['accuracy']:.3f}, "
                       f"under 60% OCR missing + GridMask recall {m['robust_recall']:.3f} "
                       f"accuracy {m.get('robust_accuracy', float('nan')):.3f}"]
        if self.decision is not None:
            lines.append(f"  {'PROMOTED to champion' if self.decision.promote else 'kept the champion'}: "
                         f"{self.decision.reason}")
        return "\n".join(lines)


def _numeric(d: dict, prefix: str = "") -> dict[str, float]:
    """Every finite number in a nested dict, keys joined by '.' (MLflow metric names)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}".replace("=", "_")
        if isinstance(v, dict):
            out.update(_numeric(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = float(v)
    return out


SPLIT_ARTIFACT = "split.parquet"
REQUIRED = ("bag", "fuse", "gate", "gate_artifact")    # evaluate is logged when present, not required


def stage_outputs(p) -> dict[str, Path]:
    return {"bag": Path(p.bag.metrics), "fuse": Path(p.fuse.metrics), "gate": Path(p.gate.metrics),
            "gate_artifact": Path(p.gate.out), "evaluate": Path(p.evaluate.metrics)}


def candidate_metrics(gate_metrics: dict) -> dict[str, float]:
    """What promotion compares: the gate's clean test recall/accuracy and its recall under both corruptions."""
    s = gate_metrics["scenarios"]
    return {"recall": s["clean"]["gate"]["recall"], "accuracy": s["clean"]["gate"]["accuracy"],
            "robust_recall": s["both"]["gate"]["recall"], "robust_accuracy": s["both"]["gate"]["accuracy"]}


def log_stage_runs(outputs: dict[str, Path]) -> None:
    import mlflow

    for stage in ("bag", "fuse", "gate", "evaluate"):
        data = read_json(outputs[stage])
        if not data:
            continue
        with mlflow.start_run(run_name=stage, nested=True):
            history = data.pop("history", {}) if stage == "fuse" else {}
            data.pop("cv_folds", None)
            data.pop("gates", None)
            mlflow.log_metrics(_numeric(data))
            for model, epochs in history.items():
                for row in epochs:
                    mlflow.log_metrics({f"{model}.{k}": float(v) for k, v in row.items() if k != "epoch"},
                                       step=int(row["epoch"]))
            mlflow.log_artifact(str(outputs[stage]))


def log_reports(p) -> None:
    import mlflow

    out = Path(p.evaluate.out_dir)
    for path in [out / "ablation.md", out / "robustness.md", Path(p.report.out), Path(p.gate.out)]:
        if path.is_file():
            mlflow.log_artifact(str(path), artifact_path="reports")
    for folder, dest in ((out / "plots", "reports/plots"), (Path(p.validate.reports), "validation")):
        if folder.is_dir():
            for f in sorted(folder.glob("*.png")) + sorted(folder.glob("*.md")) + sorted(folder.glob("*.json")):
                mlflow.log_artifact(str(f), artifact_path=dest)


def log_as(path: Path, artifact: str) -> None:
    """Log `path` under the artifact path `artifact` whatever the file's own name."""
    import shutil
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / Path(artifact).name
        shutil.copyfile(path, target)
        mlflow.log_artifact(str(target), artifact_path=str(Path(artifact).parent))


MIN_SHARED_ROWS = 10     # fewer unseen rows than this (or one class only): compare registered metrics


@dataclass(frozen=True)
class HeadToHead:
    challenger: dict | None      # {recall, accuracy, robust_recall} on the shared rows; None: not comparable
    champion: dict | None
    rows: int
    note: str


def _champion_seen_images(client, name: str) -> set[str] | None:
    """Images the champion was fitted or calibrated on (its run's split: train and val), if logged."""
    import mlflow
    import pandas as pd

    from flows.registry import CHAMPION

    run_id = client.get_model_version_by_alias(name, CHAMPION).run_id
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"data/{SPLIT_ARTIFACT}")
    except Exception:   # noqa: BLE001 - MLflow raises several types for "no such artifact"
        return None
    split = pd.read_parquet(path)
    return set(split.loc[split["split"] != "test", "image"])


def head_to_head(client, name: str, p, device: str = "cpu") -> HeadToHead | None:
    """Champion and challenger scored by the same code on this run's test rows that the champion
    never saw: with a growing dataset the split moves, and rows the champion trained on would
    flatter it. None without a champion."""
    import mlflow

    from flows.registry import CHAMPION, alias_holder
    from oanet.fusion.data import load_rois
    from oanet.gate.stage import score_gate
    from oanet.serving import DefectPipeline
    from oanet.split import load_parts

    if alias_holder(client, name, CHAMPION) is None:
        return None
    champion = DefectPipeline.load(Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion"))
                                   / "artifacts" / "bundle", device=device)
    challenger = DefectPipeline.load(p.register.bundle_dir, device=device)
    seen = _champion_seen_images(client, name)
    rows = load_parts(p.gate.table, p.gate.split)["test"]
    rows = rows[~rows["image"].isin(seen or set())]
    labels = set(rows["label"].astype(int))
    if len(rows) < MIN_SHARED_ROWS or labels != {0, 1}:
        return HeadToHead(None, None, len(rows), f"only {len(rows)} test rows unseen by the champion "
                          f"(classes {sorted(labels)}): compared on the metrics each was registered with")
    scored, images = {}, {}
    for role, pipe in (("challenger", challenger), ("champion", champion)):
        size, roi = pipe.members.image_size, tuple(pipe.members.object_roi)
        if (size, roi) not in images:     # both models usually crop the same way: read the images once
            images[size, roi] = load_rois(p.gate.data, rows["image"].tolist(), roi, size)
        scores, _, _ = score_gate(pipe.members, pipe.gate, rows, images[size, roi], ("clean", "both"),
                                  p.gate.seed + 100, device)
        scored[role] = candidate_metrics({"scenarios": scores})
    note = (f"compared on {len(rows)} test rows neither model was fitted on" if seen is not None else
            f"compared on all {len(rows)} test rows (the champion's split was not logged)")
    return HeadToHead(scored["challenger"], scored["champion"], len(rows), note)


def run(params_path: str | Path = "params.yaml", echo=print) -> Registered:
    import mlflow

    from flows.mlflow_model import log_oanet_model
    from flows.registry import apply_promotion, register_challenger
    from flows.tracking import flatten, lineage_tags, setup
    from oanet.config import load_params
    from oanet.promotion import PromotionRule
    from oanet.serving import package_bundle

    p = load_params(params_path)
    client = setup(p.register)
    outputs = stage_outputs(p)
    missing = [f"{k}: {outputs[k]}" for k in REQUIRED if not outputs[k].is_file()]
    gate = read_json(outputs["gate"])
    metrics = candidate_metrics(gate) if gate else {}
    with mlflow.start_run(run_name="oanet-pipeline") as run:
        mlflow.set_tags({**lineage_tags(Path(params_path)), "oanet.missing_outputs": "; ".join(missing) or "none"})
        mlflow.log_params(flatten(yaml.safe_load(Path(params_path).read_text())))
        log_stage_runs(outputs)
        log_reports(p)
        mlflow.log_artifact(str(Path(p.fuse.data) / "layout.yaml"), artifact_path="reports")
        if Path(p.split.out).is_file():    # which rows this model saw: the next promotion compares on others
            log_as(Path(p.split.out), f"data/{SPLIT_ARTIFACT}")
        if missing:
            echo("register: stage outputs missing, the run is registered as incomplete: " + "; ".join(missing))
            info = None
        else:
            bundle = package_bundle(p.register.bundle_dir, Path(p.fuse.data) / "layout.yaml", p.ingest,
                                    p.bag.out_dir, p.fuse.out_dir, p.gate.out)
            example = sorted((Path(p.fuse.data) / "images").glob("*"))[0]
            info = log_oanet_model(bundle, example)
            mlflow.log_metrics({f"candidate.{k}": v for k, v in metrics.items()})
    source = info.model_uri if info else f"runs:/{run.info.run_id}/model"
    version = register_challenger(client, p.register.model_name, source, run.info.run_id, metrics or None,
                                  complete=not missing)
    decision = None
    if not missing:
        rule = PromotionRule(max_accuracy_drop=p.register.max_accuracy_drop,
                             max_robust_recall_drop=p.register.max_robust_recall_drop,
                             max_robust_accuracy_drop=p.register.max_robust_accuracy_drop,
                             min_recall_gain=p.register.min_recall_gain)
        shared = head_to_head(client, p.register.model_name, p)
        if shared is not None:
            echo(f"register: {shared.note}")
        decision = apply_promotion(client, p.register.model_name, version, rule,
                                   champion_metrics=shared and shared.champion,
                                   challenger_metrics=shared and shared.challenger)
    return Registered(run.info.run_id, version, not missing, metrics, decision)


@flow(name="oanet-register", log_prints=True)
def register_flow(params_path: str = "params.yaml", data_version: str | None = None, fresh: bool = False) -> str:
    """Log the run, register a challenger and apply the promotion rule, as a Prefect flow."""
    from flows.train import stages_flow

    return stages_flow(("register",), params_path, data_version, fresh)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.register", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    print(run(args.params).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
