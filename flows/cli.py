"""The `oanet` console script: the library's commands plus those that need MLflow.

`oanet.cli` holds the stage commands and never imports MLflow; this module adds
`register`, `predict` and `registry history|rollback` to the same Typer app.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from oanet.cli import _params, app
from oanet.cli import main as _run_app

registry_app = typer.Typer(help="The MLflow model registry: promotion history and rollback.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
CHUNK = 16


@app.command()
def register(params: Path = typer.Option(Path("params.yaml"), help="Parameter file.")) -> None:
    """Log this pipeline run to MLflow, register a model version, apply the promotion rule."""
    from flows.register import run

    typer.echo(run(params, echo=typer.echo).summary())


def _load_predictor(model: str):
    """A callable [(name, bytes)] -> DataFrame, from a bundle folder or any MLflow model URI."""
    if Path(model).is_dir() and (Path(model) / "bundle.json").is_file():
        from oanet.serving import DefectPipeline

        return DefectPipeline.load(model).predict
    import base64

    import mlflow.pyfunc
    import pandas as pd

    pyfunc = mlflow.pyfunc.load_model(model)
    return lambda items: pyfunc.predict(pd.DataFrame({"path": [n for n, _ in items],
                                                      "image_b64": [base64.b64encode(b).decode() for _, b in items]}))


@app.command()
def predict(
    images: list[Path] = typer.Argument(..., help="Image files, or one folder (every image in it; writes a CSV)."),
    model: str = typer.Option("models:/oanet@champion", help="MLflow model URI or a bundle folder."),
    out: Optional[Path] = typer.Option(None, help="CSV for folder mode (default: <folder>/oanet_predictions.csv)."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file (for the tracking URI)."),
) -> None:
    """Defect decision per image: JSON lines for files, a CSV (with a progress bar) for a folder."""
    from tqdm import tqdm

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


@app.command()
def nightly(
    force: bool = typer.Option(False, help="Train even when the data and params have not changed."),
    fresh: bool = typer.Option(False, help="Redo every stage, even those finished on this data."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Run the nightly flow once now: intake, OCR, retrain if anything is new, register, promote."""
    from flows.nightly import nightly_flow

    typer.echo(nightly_flow(str(params), force, fresh).summary())


@app.command()
def schedule(
    host: str = typer.Option("127.0.0.1", help="Address the local Prefect server binds to."),
    port: int = typer.Option(4200, help="Port of the local Prefect server."),
    server: Optional[str] = typer.Option(None, help="Use this running Prefect API instead (http://.../api)."),
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
def registry_history(params: Path = typer.Option(Path("params.yaml"), help="Parameter file.")) -> None:
    """Every alias move and refusal of the registered model, oldest first."""
    from flows.registry import format_history, history
    from flows.tracking import setup

    cfg = _params(params).register
    typer.echo(format_history(history(setup(cfg), cfg.model_name)))


@registry_app.command("rollback")
def registry_rollback(params: Path = typer.Option(Path("params.yaml"), help="Parameter file.")) -> None:
    """Move `champion` back to its previous holder (recorded in the history)."""
    from flows.registry import rollback
    from flows.tracking import setup

    cfg = _params(params).register
    event = rollback(setup(cfg), cfg.model_name, lock_dir=cfg.lock_dir)
    typer.echo(f"registry: champion v{event['from_version']} -> v{event['to_version']}")


def main() -> None:
    _run_app()
