"""Stage `register`: log the pipeline run to MLflow, register the model, apply the promotion rule.

    oanet register [--params params.yaml]      (DVC stage `register`)

One MLflow run per pipeline run, with a nested run per stage: params (params.yaml,
flattened), metrics (per-epoch training curves, CV metrics with spread, test metrics,
the gate's scenarios, the evaluation), artifacts (reports, plots, the GX validation
summary, the gate, the layout) and lineage tags (git commit, data version, params
hash, card). Then the bundle is logged as the pyfunc model `oanet`, registered as a
new version with alias `challenger`, and compared with the `champion` on the
challenger's own test rows (the champion is re-scored there, clean and under 60%
OCR loss + GridMask) before `champion` moves, and only past the absolute floors
(register.min_*). A run with a missing or stale stage output (made by another run: other
rows, other params, or models that do not reproduce the gate's recorded scores) is
registered as incomplete and moves no alias.

Safe to retry: the version carries the bundle's sha256, so a register that died after
registering is finished by the next one instead of doubled; the run's tag
`oanet.registered_version` is set last, so only a finished register counts as done
(`completed_run`, the nightly's "nothing new to train").
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from oanet.promotion import HeadToHead, candidate_metrics, gate_scorer, head_to_head
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
    paths = p.paths
    return {"bag": Path(paths.bag_metrics), "fuse": Path(paths.fusion_metrics), "gate": Path(paths.gate_metrics),
            "gate_artifact": Path(paths.gate), "evaluate": Path(paths.evaluation)}


def missing_outputs(outputs: dict[str, Path]) -> list[str]:
    return [f"{k}: {outputs[k]} missing" for k in REQUIRED if not outputs[k].is_file()]


def stale_outputs(p) -> list[str]:
    """Why the stage outputs on disk are not one run's work on the current split and params
    (empty: they are). A stage that failed leaves its previous outputs behind."""
    import pandas as pd

    paths = p.paths
    if not Path(paths.split).is_file():
        return [f"split: {paths.split} missing"]
    split = pd.read_parquet(paths.split, columns=["image", "split"])
    scored = {"bag": (paths.bag_predictions, split),
              "fuse": (paths.fusion_predictions, split[split["split"] != "train"]),
              "gate": (paths.gate_predictions, split[split["split"] == "test"])}
    problems = []
    for stage, (path, rows) in scored.items():
        if not Path(path).is_file():
            problems.append(f"{stage}: {path} missing")
        elif sorted(pd.read_parquet(path, columns=["image"])["image"]) != sorted(rows["image"]):
            problems.append(f"{stage}: {path} scored other rows than {paths.split} holds "
                            "(the stage did not re-run after the split changed)")
    manifest = Path(paths.bag_models) / "manifest.json"
    bag_params = json.loads(manifest.read_text()).get("params") if manifest.is_file() else None
    problems += _params_differ("fuse", read_json(Path(paths.fusion_metrics)).get("settings"), p.fuse)
    problems += _params_differ("bag", bag_params, p.bag)
    return problems


def _differing(pairs: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose (recorded, now) values differ, sub-sections entered key by key."""
    out = []
    for k, (was, now) in pairs.items():
        if isinstance(was, dict) and isinstance(now, dict):
            out += _differing({j: (was[j], now[j]) for j in was.keys() & now.keys()}, f"{prefix}{k}.")
        elif was != now:
            out.append(prefix + k)
    return out


def _params_differ(stage: str, recorded: dict | None, cfg) -> list[str]:
    """The params of `cfg` that differ from those `stage`'s outputs were made with."""
    if not recorded:
        return [f"{stage}: its outputs do not record their params (made by older code): re-run the stage"]
    now = json.loads(json.dumps(dataclasses.asdict(cfg)))       # tuples as lists, like the record
    shared = {k: (recorded[k], now[k]) for k in (recorded.keys() & now.keys()) - {"device"}}
    changed = sorted(_differing(shared))
    if changed:
        return [f"{stage}: made with other params than now ({', '.join(changed)}): the stage did not re-run"]
    return []


REPRODUCE_TOLERANCE = 0.01   # CPU here vs GPU in the gate stage (TF32): ~1e-3; another model: far more


def bundle_mismatch(p, bundle: Path) -> list[str]:
    """The bundle re-scored on the gate's test rows must give the probabilities the gate stage
    recorded; otherwise the metrics to promote were measured on other models than those shipped."""
    import numpy as np
    import pandas as pd

    from oanet.errors import OanetError
    from oanet.fusion.data import load_rois
    from oanet.gate.stage import score_gate
    from oanet.serving import DefectPipeline
    from oanet.split import load_parts

    try:
        pipe = DefectPipeline.load(bundle, device="cpu")
    except OanetError as exc:
        return [f"the bundle does not load: {exc}"]
    paths = p.paths
    recorded = pd.read_parquet(paths.gate_predictions, columns=["image", "prob_gate"])
    rows = load_parts(paths.clean, paths.split)["test"].set_index("image").loc[recorded["image"]].reset_index()
    images = load_rois(paths.raw, rows["image"].tolist(), tuple(pipe.members.object_roi), pipe.members.image_size)
    _, clean, _ = score_gate(pipe.members, pipe.gate, rows, images, ("clean",), p.gate.seed + 100, "cpu")
    gap = float(np.max(np.abs(clean.prob - recorded["prob_gate"].to_numpy()), initial=0.0))
    if gap > REPRODUCE_TOLERANCE:
        return [f"bag, fusion and gate outputs come from different runs: the bundle does not reproduce "
                f"{paths.gate_predictions} (probabilities differ by up to {gap:.3f})"]
    return []


def _older(output: Path, source: Path) -> bool:
    return output.is_file() and source.is_file() and output.stat().st_mtime < source.stat().st_mtime


def bundle_sha256(folder: Path) -> str:
    """Content hash of a bundle folder: every file's path and bytes (bundle.json, which only
    adds a creation time, left out), so a retry recognises the bundle it already registered."""
    digest = hashlib.sha256()
    for path in sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.name != "bundle.json"):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def log_stage_runs(outputs: dict[str, Path]) -> None:
    import mlflow

    for stage in ("bag", "fuse", "gate", "evaluate"):
        data = read_json(outputs.get(stage))
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

    out = Path(p.paths.evaluation_dir)
    for path in [out / "ablation.md", out / "robustness.md", Path(p.paths.metrics), Path(p.paths.gate)]:
        if path.is_file():
            mlflow.log_artifact(str(path), artifact_path="reports")
    for folder, dest in ((out / "plots", "reports/plots"), (Path(p.paths.validation_reports), "validation"),
                         *drift_report_folders(p.paths)):
        if folder.is_dir():
            for f in sorted(folder.glob("*.png")) + sorted(folder.glob("*.md")) + sorted(folder.glob("*.json")) \
                    + sorted(folder.glob("index.html")):
                mlflow.log_artifact(str(f), artifact_path=dest)


def drift_report_folders(paths) -> list[tuple[Path, str]]:
    """(folder, artifact path) of the drift reports a run logs: the test rows' and the latest night's."""
    from oanet.drift.history import read_history
    from oanet.drift.stage import TEST_ROWS

    out = Path(paths.drift_reports)
    nights = read_history(out)
    latest = [(out / nights[-1]["night"], f"drift/{nights[-1]['night']}")] if nights else []
    history = [(out, "drift")] if (out / "history.png").is_file() else []
    return [(out / TEST_ROWS, f"drift/{TEST_ROWS}"), *latest, *history]


def log_as(path: Path, artifact: str) -> None:
    """Log `path` under the artifact path `artifact` whatever the file's own name."""
    import shutil
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / Path(artifact).name
        shutil.copyfile(path, target)
        mlflow.log_artifact(str(target), artifact_path=str(Path(artifact).parent))


def _champion_seen_images(client, name: str, holder: str) -> set[str] | None:
    """Images the champion was fitted or calibrated on (its run's split: train and val), if logged."""
    import mlflow
    import pandas as pd

    run_id = client.get_model_version(name, holder).run_id
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"data/{SPLIT_ARTIFACT}")
    except Exception:   # noqa: BLE001 - MLflow raises several types for "no such artifact"
        return None
    split = pd.read_parquet(path)
    return set(split.loc[split["split"] != "test", "image"])


BUNDLE_CACHE = Path(".cache/registry")     # downloaded bundles, one folder per version (see below)


def registered_bundle_folder(client, name: str, version: str, cache: Path = BUNDLE_CACHE) -> Path:
    """Version `version`'s bundle, checked against the hash it was registered with. Kept under
    `cache`/<name>-v<version> and reused while it matches that hash: the nightly drift step and every
    register read the champion's bundle, and a fresh temporary download each time was never removed."""
    import shutil

    import mlflow

    from flows.registry import BUNDLE_TAG

    expected = (client.get_model_version(name, version).tags or {}).get(BUNDLE_TAG)
    folder = Path(cache).resolve() / f"{name}-v{version}"
    kept = folder / "artifacts" / "bundle"
    if expected and kept.is_dir() and bundle_sha256(kept) == expected:
        return kept
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    bundle = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(folder)))
    bundle = bundle / "artifacts" / "bundle"
    if expected and bundle_sha256(bundle) != expected:
        raise ValueError("its bundle does not match the sha256 it was registered with")
    return bundle


def load_champion(client, name: str, holder: str, device: str):
    """The champion's DefectPipeline, its bundle checked against the hash it was registered with."""
    from oanet.serving import DefectPipeline

    return DefectPipeline.load(registered_bundle_folder(client, name, holder), device=device)


def champion_drift_bundle(cfg) -> tuple[Path | None, str]:
    """(the champion's bundle folder, its name for the report) when the registry has a champion whose
    bundle carries a drift reference; else (None, why not). cfg: the register section. A project
    without a registry yet is not given one."""
    from flows.registry import CHAMPION, alias_holder
    from flows.tracking import setup, tracking_uri
    from oanet.drift.nights import BUNDLE_REFERENCE

    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None, "no model registry yet"
    client = setup(cfg)
    try:
        holder = alias_holder(client, cfg.model_name, CHAMPION)
    except Exception:   # noqa: BLE001 - MLflow raises one type for "no such model" and for a broken store
        return None, f"no registered model {cfg.model_name!r}"
    if holder is None:
        return None, "no champion yet"
    bundle = registered_bundle_folder(client, cfg.model_name, holder)
    if not (bundle / BUNDLE_REFERENCE).is_file():
        return None, f"the champion (v{holder}) was registered without a drift reference"
    return bundle, f"the champion's bundle ({cfg.model_name} v{holder})"


def drift_baseline(p, against: str | None = None) -> tuple[Path | None, str | None]:
    """What `oanet drift --data` and the nightly compare a night with: (a bundle folder or reference file,
    or None for the last training's; the baseline's name for the report, None for the default name).
    against: None (the champion when there is one, else the last training's), "champion" (refused
    without one, naming why), "latest", or a path."""
    from oanet.drift.reference import DriftError

    if against not in (None, "champion"):
        return (None, None) if against == "latest" else (Path(against), None)
    try:
        bundle, why = champion_drift_bundle(p.register)
    except Exception as err:  # noqa: BLE001 - a champion that cannot be fetched must not stop a night
        bundle, why = None, f"the champion's bundle could not be fetched: {err}"
    if bundle is None and against == "champion":
        raise DriftError(f"--against champion: {why}")
    return (bundle, why) if bundle else (None, f"the last training's reference, {p.paths.drift_reference} ({why})")


def rescore_champion(client, name: str, p, holder: str | None, device: str = "cpu") -> HeadToHead | None:
    """Champion `holder` and the challenger scored by the same code on this run's test rows the
    champion never saw (oanet.promotion.head_to_head; here: fetching both from MLflow). None
    without a champion. A champion that cannot be loaded (deleted artifacts, an older format, a
    bad hash) is not re-scored: the note says why, and promotion falls back to the metrics each
    model was registered with."""
    from oanet.serving import DefectPipeline
    from oanet.split import load_parts

    if holder is None:
        return None
    try:
        champion = load_champion(client, name, holder, device)
    except Exception as exc:   # noqa: BLE001 - whatever breaks the old model must not block every new one
        return HeadToHead(None, None, 0, f"champion v{holder} could not be loaded for re-scoring "
                          f"({type(exc).__name__}: {str(exc)[:300]}): compared on the metrics each was registered with")
    challenger = DefectPipeline.load(p.paths.bundle, device=device)
    test_rows = load_parts(p.paths.clean, p.paths.split)["test"]
    return head_to_head(challenger, champion, test_rows, _champion_seen_images(client, name, holder),
                        gate_scorer(p.paths.raw, p.gate.seed + 100, device))


DONE_TAG = "oanet.registered_version"   # set on the run last: its register finished
CAS_TRIES = 3                           # champion moved by a concurrent register: score again


def log_pipeline_run(p, params_path: Path, outputs: dict[str, Path], problems: list[str],
                     metrics: dict, bundle: Path | None):
    """The MLflow run of this pipeline run (stage runs, reports, the model); returns (run id, model URI)."""
    import mlflow

    from flows.mlflow_model import log_oanet_model
    from flows.tracking import flatten, lineage_tags

    with mlflow.start_run(run_name="oanet-pipeline") as run:
        mlflow.set_tags({**lineage_tags(params_path), "oanet.missing_outputs": "; ".join(problems) or "none"})
        mlflow.log_params(flatten(yaml.safe_load(params_path.read_text())))   # credentials redacted
        log_stage_runs(outputs)
        log_reports(p)
        mlflow.log_artifact(str(p.paths.layout), artifact_path="reports")
        if Path(p.paths.split).is_file():    # which rows this model saw: the next promotion compares on others
            log_as(Path(p.paths.split), f"data/{SPLIT_ARTIFACT}")
        if bundle is None:
            return run.info.run_id, f"runs:/{run.info.run_id}/model"
        example = sorted((Path(p.paths.raw) / "images").glob("*"))[0]
        info = log_oanet_model(bundle, example)
        mlflow.log_metrics({f"candidate.{k}": v for k, v in metrics.items() if math.isfinite(v)})
        return run.info.run_id, info.model_uri


def promote(client, p, version: str, echo=print):
    """Offer `version` for champion once: compare-and-set, re-scored against whoever holds it."""
    from flows.registry import CHAMPION, ChampionMoved, alias_holder, apply_promotion, recorded_decision
    from oanet.promotion import Floors, PromotionRule

    cfg, name = p.register, p.register.model_name
    done = recorded_decision(client, name, version)
    if done is not None:                  # a retry: the decision is already in the registry
        return done
    rule = PromotionRule(max_accuracy_drop=cfg.max_accuracy_drop, max_robust_recall_drop=cfg.max_robust_recall_drop,
                         max_robust_accuracy_drop=cfg.max_robust_accuracy_drop, min_recall_gain=cfg.min_recall_gain)
    floors = Floors(min_recall=cfg.min_recall, min_accuracy=cfg.min_accuracy,
                    min_robust_recall=cfg.min_robust_recall, min_robust_accuracy=cfg.min_robust_accuracy)
    from oanet.drift.stage import test_rows_alert

    alert, line = test_rows_alert(p.paths)
    drifted = line if alert else ""
    for _ in range(CAS_TRIES):
        holder = alias_holder(client, name, CHAMPION)
        shared = rescore_champion(client, name, p, holder)
        if shared is not None:
            echo(f"register: {shared.note}")
        try:
            return apply_promotion(client, name, version, rule, champion_metrics=shared and shared.champion,
                                   challenger_metrics=shared and shared.challenger, floors=floors,
                                   note=shared.note if shared else "", expected_champion=holder,
                                   lock_dir=cfg.lock_dir, drifted=drifted)
        except ChampionMoved as moved:
            echo(f"register: {moved}; comparing again")
    raise ChampionMoved(f"{CHAMPION} of {name!r} kept moving during {CAS_TRIES} comparisons; run register again")


def checked_bundle(p) -> tuple[list[str], Path | None, str | None]:
    """(problems, bundle folder, its sha256): the bundle only when every stage output is there,
    comes from one run on the current split and params, and reproduces the gate's scores."""
    from oanet.serving import package_bundle

    problems = missing_outputs(stage_outputs(p)) or stale_outputs(p)
    if problems:
        return problems, None, None
    paths = p.paths
    bundle = package_bundle(paths.bundle, paths.layout, p.ingest, paths.bag_models, paths.fusion_models, paths.gate,
                            paths.drift_reference)
    problems = bundle_mismatch(p, bundle)
    return (problems, None, None) if problems else ([], bundle, bundle_sha256(bundle))


def run(params_path: str | Path = "params.yaml", echo=print) -> Registered:
    from flows.registry import offer_challenger, register_challenger, registered_bundle
    from flows.tracking import setup
    from oanet.config import load_params

    params_path = Path(params_path)
    p = load_params(params_path)
    client, name, lock_dir = setup(p.register), p.register.model_name, p.register.lock_dir
    outputs = stage_outputs(p)
    if _older(outputs["evaluate"], Path(p.paths.clean)):   # optional: left out, not blocking
        echo(f"register: {outputs.pop('evaluate')} is older than {p.paths.clean}: not logged")
    gate = read_json(outputs["gate"])
    metrics = candidate_metrics(gate) if gate else {}
    problems, bundle, digest = checked_bundle(p)
    if problems:
        echo("register: stage outputs missing or stale, the run is registered as incomplete: " + "; ".join(problems))
    version = registered_bundle(client, name, digest) if digest else None
    if version:          # the newest version holds this very bundle: a retry (or nothing changed since)
        echo(f"register: v{version} already holds this bundle; finishing its registration, nothing new registered")
        run_id = client.get_model_version(name, version).run_id
        offer_challenger(client, name, version, lock_dir)
    else:
        run_id, source = log_pipeline_run(p, params_path, outputs, problems, metrics, bundle)
        version = register_challenger(client, name, source, run_id, metrics or None, complete=not problems,
                                      bundle_sha256=digest, lock_dir=lock_dir)
    decision = None if problems else promote(client, p, version, echo)
    client.set_tag(run_id, DONE_TAG, version)      # last: only now does this run count as done
    return Registered(run_id, version, not problems, metrics, decision)


def completed_run(client, experiment_id: str, name: str, data_version: str, params_sha256: str) -> str | None:
    """The id of a FINISHED, complete pipeline run on this data and params whose register finished
    (its model version exists): the nightly's "nothing new to train". A run whose register died
    half-way never counts, so the next night trains (and registers) again."""
    runs = client.search_runs(
        [experiment_id], max_results=20, order_by=["attributes.start_time DESC"],
        filter_string=(f"tags.`oanet.data_version` = '{data_version}'"
                       f" and tags.`oanet.params_sha256` = '{params_sha256}'"
                       " and tags.`oanet.missing_outputs` = 'none' and attributes.status = 'FINISHED'"))
    for run in runs:
        version = run.data.tags.get(DONE_TAG)
        if version and client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'"):
            return run.info.run_id
    return None

