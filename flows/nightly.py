"""Prefect flow `oanet-nightly`: take in the night's images, OCR what is new, retrain, register.

    oanet nightly [--params params.yaml] [--force] [--fresh]

1. intake: move incoming/ into the raw dataset (oanet.intake), then record the new data
   version with DVC (`dvc commit data`, `dvc push` to the default remote).
2. ingest: OCR + data-quality gate; the OCR cache means only new images are read.
   drift: tonight's new rows against the last training's reference (oanet.drift), before any
   training; a night past a threshold gets a `drift-alert` artifact and says so in one line.
3. If the registry already holds a complete run on this data version with these params,
   the night stops here and says so: no new data, no training (`dvc commit` of ingest and
   validate, whose reports were rewritten, keeps `dvc repro` a no-op).
4. train (split, bag, fuse, gate, drift reference) -> evaluate (+ report) -> register (challenger + promotion),
   then `dvc commit` of every stage so `dvc repro` agrees with what the night produced.

The night holds the project lock (oanet.runlock) from start to end; `nightly.train: false`
makes it a data-only night that stops after step 2.

Every training step is a persisted Prefect task keyed by params, data version and code, so
re-running a night that failed half-way redoes only what had not finished (flows/tasks.py).
The schedule (cron 02:00 by default) lives in prefect.yaml; `oanet schedule` serves it.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, task

from flows.evaluate import evaluate_flow
from flows.ingest import _transient_io_error, ocr_panels, validate_table
from flows.pipeline import register_flow
from flows.train import train_flow
from oanet.config import NightlyConfig, Params, load_params
from oanet.intake import IntakeResult, dataset_version
from oanet.runlock import project_lock


@dataclass(frozen=True)
class NightlyReport:
    data_version: str
    intake: str
    ingest: str
    trained: bool
    reason: str                 # why it trained, or why not
    register: str = ""
    dvc: str = ""
    drift: str = ""             # tonight's rows against the champion's (or last training's) reference: one line

    def summary(self) -> str:
        lines = [f"nightly: data version {self.data_version}", self.intake, self.ingest, self.drift,
                 f"{'trained' if self.trained else 'no training'}: {self.reason}"]
        return "\n".join(line for line in [*lines, self.register, self.dvc] if line)


@task(name="intake", retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=_transient_io_error)
def intake_task(params_path: str) -> IntakeResult:
    from oanet.intake import run

    p = load_params(params_path)
    result = run(p.data, p.synth, p.paths, progress=False)
    print(result.summary())
    return result


def _dvc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)


@task(name="dvc-record", retries=2, retry_delay_seconds=[10, 60])
def dvc_record(cfg: NightlyConfig, targets: list[str]) -> str:
    """`dvc commit` the targets (stages; none = all) and push to the default remote: the data version."""
    if not cfg.record_dvc:
        return "dvc: recording off (nightly.record_dvc)"
    if not (Path(".dvc").is_dir() and Path("dvc.yaml").is_file()):
        return "dvc: not a DVC project here, nothing recorded (the data version is tagged in MLflow)"
    done = _dvc("commit", "--force", "--quiet", *targets)
    if done.returncode:
        raise RuntimeError(f"dvc commit {' '.join(targets)} failed:\n{done.stderr or done.stdout}")
    what = f"dvc: committed {', '.join(targets) or 'every stage'}"
    if not cfg.push or not _dvc("remote", "list").stdout.strip():
        return what + " (no push: nightly.push off or no DVC remote)"
    pushed = _dvc("push", "--quiet", *targets)
    if pushed.returncode:
        raise RuntimeError(f"dvc push failed:\n{pushed.stderr or pushed.stdout}")
    return what + ", pushed to the default remote"


def _flag_drift(line: str, markdown: str) -> None:
    """The flow run's `drift-alert` artifact: what an operator sees first in the Prefect UI."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(key="drift-alert", description=line, markdown=f"# {line}\n\n{markdown}")


@task(name="drift")
def drift_task(params_path: str, taken: list[str], night: str) -> str:
    """Tonight's new rows against the champion's reference (the registry's champion bundle), else the
    last training's, before anything trains on them. A night past a threshold is flagged: a
    `drift-alert` artifact on the flow run, and the one line. A night that cannot be compared (an
    unreadable reference, another layout) is flagged the same way and the night goes on: the next
    training writes a fresh reference."""
    import time

    from flows.register import drift_baseline
    from oanet.drift.nights import report_taken
    from oanet.drift.reference import DriftError

    start = time.perf_counter()
    p = load_params(params_path)
    bundle, against = drift_baseline(p)
    try:
        result = report_taken(p, taken, night, against=bundle, against_name=against)
    except DriftError as err:
        line = f"DRIFT NOT COMPARED: {err}"
        _flag_drift(line, f"Tonight's rows could not be compared with {against}.")
        print(line)
        return line
    if isinstance(result, str):
        return result
    if result.alert:
        drifted = "\n".join(f"- {item}" for item in result.summary["drifted"])
        _flag_drift(result.line(), f"{drifted}\n\nReport: `{result.page}`")
    line = f"{result.line()} (against {against}; report: {result.page}; {time.perf_counter() - start:.1f} s)"
    print(line)
    return line


def trained_run(params_path: str, version: str) -> str | None:
    """The id of a finished, registered run on this data version with these exact params, if any
    (a run whose register died half-way does not count: the night trains again)."""
    from flows.register import completed_run
    from flows.tracking import params_hash, setup

    p = load_params(params_path)
    client = setup(p.register)
    experiment = client.get_experiment_by_name(p.register.experiment)
    if experiment is None:
        return None
    return completed_run(client, experiment.experiment_id, p.register.model_name, version, params_hash(params_path))


@flow(name="oanet-nightly", log_prints=True)
def nightly_flow(params_path: str = "params.yaml", force: bool = False, fresh: bool = False) -> NightlyReport:
    """One night, as the project's only writer: cron, a manual run, a deployment run and `dvc repro`
    may overlap, and the second one waits for the lock (nightly.lock_wait_s) or refuses, naming the holder."""
    p = load_params(params_path)
    with project_lock("oanet nightly", params_path):
        return _night(p, params_path, force, fresh)


def _night(p: Params, params_path: str, force: bool, fresh: bool) -> NightlyReport:
    fresh = fresh or force        # forcing a retrain must not be answered from the resume cache
    intake = intake_task(params_path)
    version = dataset_version(p.paths.raw)
    recorded = dvc_record(p.nightly, ["data"]) if intake.new_data else ""
    ingested = ocr_panels(p.ingest, p.paths)
    validate_table(p.validate, p.paths)
    ingest_line = ingested.summary().splitlines()[1].strip()
    drift = drift_task(params_path, list(intake.taken), datetime.now(UTC).strftime("night-%Y%m%dT%H%M%S"))
    if not p.nightly.train:
        recorded = dvc_record(p.nightly, ["ingest", "validate"])
        return NightlyReport(version, intake.summary(), ingest_line, False, "nightly.train is off (a data-only night)",
                             dvc=recorded, drift=drift)
    previous = None if force else trained_run(params_path, version)
    if previous:
        reason = f"no new data since run {previous[:8]} (data version {version}, same params)"
        print(f"nightly: {reason}; nothing to train")
        recorded = dvc_record(p.nightly, ["ingest", "validate"])   # their reports were rewritten
        return NightlyReport(version, intake.summary(), ingest_line, False, reason, dvc=recorded, drift=drift)
    reason = "forced" if force else (f"{intake.moved} new images" if intake.moved else "no model on this data yet")
    train_flow(params_path, version, fresh)
    evaluate_flow(params_path, version, fresh)
    registered = register_flow(params_path, version, fresh)
    recorded = dvc_record(p.nightly, [])
    report = NightlyReport(version, intake.summary(), ingest_line, True, reason, registered, recorded, drift)
    print(report.summary())
    return report

