"""The `oanet` console script: every entry point of the project, as one Typer app.

`app` is composed here, explicitly: the library's commands (`oanet.cli.commands`, which never
import Prefect, MLflow or Great Expectations) and `orchestration`, the commands that need them:
the stages `validate` and `register`, the Prefect runs (`nightly`, `schedule`, `flow ...`) and the
registry tools (`predict`, `registry ...`). Each command imports what it needs when it runs, so
`oanet --help` starts none of them. DVC's stages, the Makefile and the Dockerfile call this app.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import typer

from oanet import cli as library
from oanet.cli import DEFAULT_PARAMS, PARAMS, RUN_PANEL, STAGE_PANEL, TOOL_PANEL, _locked, _params, make_app, run_stage

orchestration = typer.Typer()
registry_app = typer.Typer(help="The MLflow model registry: promotion history and rollback.", no_args_is_help=True)
orchestration.add_typer(registry_app, name="registry", rich_help_panel=TOOL_PANEL)
flow_app = typer.Typer(help="Prefect flows, with retries on I/O, resume and a run history: "
                            "ingest, train, evaluate, register.", no_args_is_help=True)
orchestration.add_typer(flow_app, name="flow", rich_help_panel=RUN_PANEL)
FRESH = typer.Option(False, help="Redo every stage, even those finished on this data.")
CHUNK = 16


@contextmanager
def _failed_batch_exits_1():
    """A batch failing a critical expectation is a data problem, not a crash: its message on stderr, exit 1."""
    from oanet.quality.expectations import ValidationFailed

    try:
        yield
    except ValidationFailed as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None


@orchestration.command(rich_help_panel=STAGE_PANEL)
def validate(
    expectations: Path | None = typer.Option(
        None, help="Folder holding batch.json (default: expectations/ beside the params file, else here)."),
    params: Path = PARAMS,
) -> None:
    """Stage `validate`: the Great Expectations gate on the OCR table: clean rows, quarantine and reports."""
    from flows.stages import PIPELINE
    from oanet.quality.expectations import project_expectations

    with _failed_batch_exits_1():          # which stops `dvc repro` before split
        run_stage(PIPELINE, "validate", params, expectations=expectations or project_expectations(params))


@orchestration.command(rich_help_panel=STAGE_PANEL)
def drift(
    data: Path | None = typer.Option(
        None, help="A night's folder (images/, labels.csv, layout.yaml): OCR it and report it against the "
                   "baseline. Without it: the stage (fit the reference, report the split's test rows)."),
    table: Path | None = typer.Option(None, help="With --data: the night's rows already read (an OCR table, "
                                                    ".parquet) instead of reading DATA's images."),
    lot: str | None = typer.Option(None, help="With --table: only the rows of this lot."),
    against: str | None = typer.Option(
        None, metavar="champion|latest|PATH",
        help="What the night is compared with: `champion` (the registry's champion bundle: its drift reference "
             "and models), `latest` (the last training's, params paths.drift_reference), a drift reference "
             "file, or a model bundle folder. Default: the champion when the registry has one, else latest."),
    night: str | None = typer.Option(None, help="Name of the night in the report (default: DATA's name)."),
    fail_on_alert: bool = typer.Option(False, help="Exit with status 3 when the night alerts (for scripts)."),
    params: Path = PARAMS,
) -> None:
    """Stage `drift`: each OCR field and image statistic of a night against the rows the models learned on."""
    if data is None:
        if table or lot or against or night:
            raise typer.BadParameter("--table, --lot, --against and --night go with --data")
        run_stage(library.STAGES, "drift", params)
        return
    from flows.register import drift_baseline
    from oanet.drift.nights import report_night

    p = _params(params)
    bundle, name = drift_baseline(p, against)
    with _locked("drift", params):       # the history file is shared with the nightly's drift step
        result = report_night(p, data, table=table, lot=lot, against=bundle, night=night, against_name=name)
    typer.echo(f"{result.line()}\n  against: {result.summary['reference']['against']}\n  written: {result.page}")
    if result.alert and fail_on_alert:
        raise typer.Exit(3)


@orchestration.command(rich_help_panel=STAGE_PANEL)
def register(params: Path = PARAMS) -> None:
    """Stage `register`: log this pipeline run to MLflow, register a model version, apply the promotion rule."""
    from flows.stages import PIPELINE

    run_stage(PIPELINE, "register", params)


def _load_predictor(model: str):
    """A callable [(name, bytes)] -> DataFrame, from a bundle folder or any MLflow model URI."""
    if Path(model).is_dir() and (Path(model) / "bundle.json").is_file():
        from oanet.serving import DefectPipeline

        return DefectPipeline.load(model).predict
    import base64

    import mlflow.pyfunc
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from oanet.errors import OanetError

    if not re.match(r"[A-Za-z][\w+.-]*:/", model):          # models:/, runs:/, file://, s3:// ...
        raise OanetError(f"--model {model}: no bundle folder there (a folder holding bundle.json), "
                         "and not an MLflow model URI such as models:/oanet@champion")
    try:
        pyfunc = mlflow.pyfunc.load_model(model)
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OanetError(f"cannot load the model {model}: {first}. Train and register one first (make demo, "
                         "or oanet nightly), or pass --model with a bundle folder") from None
    return lambda items: pyfunc.predict(pd.DataFrame({"path": [n for n, _ in items],
                                                      "image_b64": [base64.b64encode(b).decode() for _, b in items]}))


@orchestration.command(rich_help_panel=TOOL_PANEL)
def predict(
    images: list[Path] = typer.Argument(..., help="Image files, or one folder (every image in it; writes a CSV)."),
    model: str = typer.Option("models:/oanet@champion", help="MLflow model URI or a bundle folder."),
    out: Path | None = typer.Option(None, help="CSV for folder mode (default: <folder>/oanet_predictions.csv)."),
    params: Path = typer.Option(DEFAULT_PARAMS, help="Parameter file (for the tracking URI)."),
) -> None:
    """Defect decision per image: JSON lines for files, a CSV (with a progress bar) for a folder."""
    from tqdm import tqdm

    from oanet.ingest.inventory import IMAGE_SUFFIXES

    if not Path(model).is_dir():
        from flows.tracking import setup

        setup(_params(params).register)
    folder = len(images) == 1 and images[0].is_dir()
    paths = sorted(p for p in images[0].rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder else images
    if not paths:
        raise typer.BadParameter(f"no images found in {images[0]}")
    predictor = _load_predictor(model)
    frames = []
    for i in tqdm(range(0, len(paths), CHUNK), desc="predict", unit="batch", disable=not folder):
        chunk = paths[i:i + CHUNK]
        frames.append(predictor([(str(p), p.read_bytes() if p.is_file() else b"") for p in chunk]))
    import pandas as pd

    result = pd.concat(frames, ignore_index=True)
    if folder:
        from oanet.csvsafe import escape_frame

        target = out or images[0] / "oanet_predictions.csv"
        escape_frame(result).to_csv(target, index=False)        # no cell opens as a spreadsheet formula
        counts = result["decision"].value_counts().to_dict()
        typer.echo(f"predict: {len(result)} images -> {counts.get(1, 0)} defective, {counts.get(0, 0)} pass, "
                   f"{counts.get(-1, 0)} unusable; written: {target}")
        return
    for row in result.to_dict(orient="records"):
        row["weights"], row["fields"] = json.loads(row["weights"]), json.loads(row["fields"])
        typer.echo(json.dumps(row, default=str))


@orchestration.command(rich_help_panel=RUN_PANEL)
def nightly(
    force: bool = typer.Option(False, help="Train even when the data and params have not changed."),
    fresh: bool = FRESH,
    params: Path = PARAMS,
) -> None:
    """Run the nightly flow once now: intake, OCR, retrain if anything is new, register, promote."""
    from flows.nightly import nightly_flow

    typer.echo(nightly_flow(str(params), force, fresh).summary())    # the flow holds the project lock itself


@orchestration.command(rich_help_panel=RUN_PANEL)
def schedule(
    host: str = typer.Option("127.0.0.1", help="Address the local Prefect server binds to."),
    port: int = typer.Option(4200, help="Port of the local Prefect server."),
    server: str | None = typer.Option(None, help="Use this running Prefect API instead (http://.../api)."),
    prefect_yaml: Path = typer.Option(Path("prefect.yaml"), help="Where the deployment and its cron are defined."),
) -> None:
    """Serve the nightly deployment on its cron schedule (prefect.yaml) with a local Prefect server."""
    import os

    from flows.schedule import read_deployment, serve, start_server, wait_healthy

    deployment = read_deployment(prefect_yaml)
    os.environ.setdefault("OANET_PROJECT_DIR", str(Path.cwd()))
    process = None if server else start_server(host, port)
    api_url = server or f"http://{host}:{port}/api"
    try:
        wait_healthy(api_url)
        serve(deployment, api_url, echo=typer.echo)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


@registry_app.command("history")
def registry_history(params: Path = PARAMS) -> None:
    """Every alias move and refusal of the registered model, oldest first."""
    from flows.registry import format_history, history
    from flows.tracking import setup

    cfg = _params(params).register
    typer.echo(format_history(history(setup(cfg), cfg.model_name)))


@registry_app.command("rollback")
def registry_rollback(params: Path = PARAMS) -> None:
    """Move `champion` back to its previous holder (recorded in the history)."""
    from flows.registry import rollback
    from flows.tracking import setup

    cfg = _params(params).register
    event = rollback(setup(cfg), cfg.model_name, lock_dir=cfg.lock_dir)
    typer.echo(f"registry: champion v{event['from_version']} -> v{event['to_version']}")


def _run_flow(command: str, flow_fn, params: Path, **arguments):
    """Run a Prefect flow as the project's only writer (the project lock, held as `oanet flow <command>`)."""
    from oanet.runlock import project_lock

    with project_lock(f"oanet flow {command}", params):
        return flow_fn(params_path=str(params), **arguments)


@flow_app.command("ingest")
def flow_ingest(
    data: Path | None = typer.Option(None, help="AOI folder (default: params.yaml paths.raw)."),
    params: Path = PARAMS,
) -> None:
    """Flow `oanet-ingest`: OCR the panels, then the data-quality gate."""
    from flows.ingest import ingest_flow

    with _failed_batch_exits_1():
        _run_flow("ingest", ingest_flow, params, data=None if data is None else str(data))


@flow_app.command("train")
def flow_train(fresh: bool = FRESH, params: Path = PARAMS) -> None:
    """Flow `oanet-train`: split, bag, fuse and gate; a step finished on these params, data and code is kept."""
    from flows.train import train_flow

    _run_flow("train", train_flow, params, fresh=fresh)


@flow_app.command("evaluate")
def flow_evaluate(fresh: bool = FRESH, params: Path = PARAMS) -> None:
    """Flow `oanet-evaluate`: the paper's evaluation protocol, then the metrics report."""
    from flows.evaluate import evaluate_flow

    _run_flow("evaluate", evaluate_flow, params, fresh=fresh)


@flow_app.command("register")
def flow_register(fresh: bool = FRESH, params: Path = PARAMS) -> None:
    """Flow `oanet-register`: the register stage as a Prefect task (retried when the tracking store is down)."""
    from flows.pipeline import register_flow

    _run_flow("register", register_flow, params, fresh=fresh)


app = make_app(library.commands, orchestration)


def main() -> None:
    library.main(app)
