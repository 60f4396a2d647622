"""The `oanet` command line. Each command is a thin wrapper around one stage function."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from oanet.env import apply_offline_defaults

app = typer.Typer(help="OANet: OCR-augmented defect detection for AOI images.", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def _main() -> None:
    apply_offline_defaults()


def _params(path: Path):
    from oanet.config import load_params
    return load_params(path)


def _locked(command: str, params: Path):
    """The project lock (oanet.runlock) for a command that writes a stage's outputs: one writer at a time."""
    from oanet.runlock import project_lock

    return project_lock(f"oanet {command}", params)


def _override(cfg, **options):
    """The config with every command-line option the user gave (not None) replacing params.yaml."""
    import dataclasses

    return dataclasses.replace(cfg, **{k: v for k, v in options.items() if v is not None})


@app.command()
def data(params: Path = typer.Option(Path("params.yaml"), help="Parameter file.")) -> None:
    """Stage `data`: move new images from the incoming folder into the raw dataset (demo set if empty)."""
    from oanet.intake import run

    p = _params(params)
    with _locked("data", params):
        typer.echo(run(p.data, p.synth).summary())


@app.command()
def synth(
    out: Path = typer.Option(..., help="Output folder: images/, labels.csv, truth.csv, layout.yaml."),
    n: Optional[int] = typer.Option(None, help="Number of units (default: params.yaml synth.n)."),
    seed: Optional[int] = typer.Option(None, help="Random seed (default: params.yaml)."),
    objects: Optional[Path] = typer.Option(None, help="Folder laid out like magnetic-tile; default: procedural objects."),
    preset: Optional[str] = typer.Option(None, help="clean | noisy"),
    style: Optional[str] = typer.Option(
        None, metavar="NAME|PATH",
        help="Panel style: " + ", ".join(
            ["aoi-v1", *sorted(p.stem for p in (Path(__file__).parent / "synth" / "styles").glob("*.yaml"))])
             + ", or the path of a style .yaml (default: params.yaml synth.style). "
               "Without --seed, the style's own seed."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Write a synthetic AOI data set with a known printed value for every field."""
    from oanet.synth.stage import run
    from oanet.synth.styles import load_style

    if style is not None and seed is None:      # a style named here renders with its own seed
        seed = load_style(style).seed
    cfg = _override(_params(params).synth, n=n, seed=seed, preset=preset, style=style,
                    objects=str(objects) if objects else None)
    result = run(cfg, out)
    typer.echo(result.summary())


@app.command()
def ingest(
    data: Optional[Path] = typer.Option(None, help="AOI folder: images, labels.csv, layout.yaml (default: params)."),
    out: Optional[Path] = typer.Option(None, help="Output table, .parquet (default: params)."),
    layout: Optional[Path] = typer.Option(None, help="Layout file (default: DATA/layout.yaml)."),
    quarantine: Optional[Path] = typer.Option(None, help="Quarantine table (default: params, or beside OUT)."),
    no_cache: bool = typer.Option(False, help="Ignore and do not write the OCR cache."),
    workers: Optional[int] = typer.Option(
        None, help="OCR on a local Dask cluster of N single-threaded workers; 0: in this process (default: params)."),
    scheduler: Optional[str] = typer.Option(
        None, help="OCR on the workers of a running Dask scheduler, e.g. tcp://host:8786 (default: params)."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """OCR every panel, parse its fields by the layout, and quarantine unusable images."""
    import dataclasses

    from oanet.ingest.stage import run

    cfg = _override(_params(params).ingest, workers=workers, scheduler=scheduler)
    if no_cache:
        cfg = dataclasses.replace(cfg, cache=None)
    q = quarantine or (out.with_name(out.stem + "_quarantine.parquet") if out else Path(cfg.quarantine))
    with _locked("ingest", params):
        result = run(cfg, data or cfg.data, out or cfg.out, q, layout_path=layout)
    typer.echo(result.summary())


layout_app = typer.Typer(help="Check a layout against real images before ingesting them.", no_args_is_help=True)
app.add_typer(layout_app, name="layout")


@layout_app.command("preview")
def layout_preview(
    data: Path = typer.Option(..., help="AOI folder: images, labels.csv, layout.yaml."),
    n: int = typer.Option(12, min=1, help="Images to show: the first N that labels.csv lists."),
    layout: Optional[Path] = typer.Option(None, help="Layout file (default: DATA/layout.yaml)."),
    out: Path = typer.Option(Path("reports/layout_preview.png"), help="Contact sheet to write, PNG."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file (its ingest settings read the images)."),
) -> None:
    """A contact sheet of what ingest reads in every field of N images: crop, raw read, value, reason."""
    from oanet.ingest.preview import preview
    from oanet.layout import load_layout

    result = preview(data, load_layout(layout or data / "layout.yaml"), _params(params).ingest, n=n, out=out)
    typer.echo(result.summary())


@layout_app.command("suggest")
def layout_suggest(
    images: list[Path] = typer.Argument(..., help="A few images of one machine (3-8), or a folder: its first 8."),
    out: Path = typer.Option(Path("layout.yaml"), help="Where to write the draft layout."),
    name: str = typer.Option("suggested", help="The layout's name."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file (its ingest.rec_model reads the images)."),
) -> None:
    """Draft a layout.yaml: keys, line boxes, dtypes, decimals, units and ranges from CnOCR's detector."""
    from oanet.ingest.engine import Ocr
    from oanet.ingest.inventory import image_files
    from oanet.ingest.suggest import suggest

    paths = [p for i in images for p in ([i / f for f in image_files(i)[:8]] if i.is_dir() else [i])]
    layout = suggest(paths, Ocr(_params(params).ingest.rec_model), name=name)
    out.parent.mkdir(parents=True, exist_ok=True)
    layout.save(out)
    typer.echo(f"layout suggest: {len(layout.fields)} fields from {len(paths)} images -> {out}")
    for f in layout.fields:
        extra = f"decimals {f.decimals}" if f.decimals is not None else (f"pattern {f.pattern}" if f.pattern else "")
        typer.echo(f"  {f.name:<18} key {f.key!r:<16} {f.dtype:<6} {f.unit or '':<5} {extra:<22} box {list(f.roi)}")
    typer.echo(f"  object_roi {list(layout.object_roi)}; check it with: oanet layout preview --layout {out} --data DIR")


@app.command()
def expectations(
    layout: Path = typer.Option(..., help="Layout file to derive the per-field suite from."),
    out: Path = typer.Option(Path("expectations"), help="Folder for the suite JSON files."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Write the per-field Great Expectations suite generated from a layout."""
    from oanet.layout import load_layout
    from oanet.quality.expectations import write_field_suite

    path = write_field_suite(load_layout(layout), _params(params).validate, out)
    typer.echo(f"wrote {path}")


@app.command()
def split(
    layout: Optional[Path] = typer.Option(None, help="Layout file (default: <ingest.data>/layout.yaml)."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Write the stratified 7:3 train/test split and CV folds, grouped by lot."""
    from oanet.split import describe, run

    p = _params(params)
    with _locked("split", params):
        result = run(p.split, layout or Path(p.ingest.data) / "layout.yaml")
    typer.echo(describe(result) + f"\n  written: {p.split.out}")


@app.command()
def report(params: Path = typer.Option(Path("params.yaml"), help="Parameter file.")) -> None:
    """Collect every model's test metrics into reports/metrics.json and print them."""
    from oanet.report import run, table

    p = _params(params)
    with _locked("report", params):
        rows = run(p.bag.metrics, p.fuse.metrics, p.report.out, p.gate.metrics)
    typer.echo(table(rows) + f"\n  written: {p.report.out}")


@app.command()
def bag(
    layout: Optional[Path] = typer.Option(None, help="Layout file (default: <fuse.data or ingest.data>/layout.yaml)."),
    n_jobs: int = typer.Option(1, help="Threads per tabular model."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Cross-validate, refit and evaluate the tabular models (intra-bagging) on the OCR table."""
    from oanet.tabular.stage import run

    p = _params(params)
    with _locked("bag", params):
        result = run(p.bag, layout or Path(p.fuse.data or p.ingest.data) / "layout.yaml", n_jobs=n_jobs)
    typer.echo(result.summary())


@app.command()
def fuse(
    layout: Optional[Path] = typer.Option(None, help="Layout file (default: <fuse.data>/layout.yaml)."),
    encoder: Optional[str] = typer.Option(None, help="alexnet | vgg16 | resnet18 (default: params)."),
    image_size: Optional[int] = typer.Option(None, help="Object image side in pixels (default: params)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default: params)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (default: params)."),
    quiet: bool = typer.Option(False, help="No per-epoch progress lines."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Train the image-only CNN and the OANet fusion model; score the test split."""
    from oanet.fusion.stage import run

    cfg = _override(_params(params).fuse, encoder=encoder, image_size=image_size, epochs=epochs, device=device)
    with _locked("fuse", params):
        result = run(cfg, layout or Path(cfg.data) / "layout.yaml", echo=None if quiet else typer.echo)
    typer.echo(result.summary())


@app.command()
def gate(
    min_accuracy: Optional[float] = typer.Option(None, help="Accuracy floor of the calibration (default: params)."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (default: params)."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Calibrate the KL-divergence gate over all models on the val rows; score the test split."""
    from oanet.gate.stage import run

    with _locked("gate", params):
        typer.echo(run(_override(_params(params).gate, min_accuracy=min_accuracy, device=device)).summary())


@app.command()
def evaluate(
    layout: Optional[Path] = typer.Option(None, help="Layout file (default: <evaluate.data>/layout.yaml)."),
    profile: Optional[str] = typer.Option(
        None, help="quick | cpu | cpu_paper_encoders | paper (default: params evaluate.profile)."),
    repeats: Optional[int] = typer.Option(None, help="Override the profile's number of repeats."),
    encoders: Optional[str] = typer.Option(None, help="Comma-separated encoders, overriding the profile's."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (default: params)."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Paper Tables 1 and 2, the baselines and the robustness sweeps over repeated splits."""
    from oanet.evaluate.stage import run

    p = _params(params)
    cfg = _override(p.evaluate, profile=profile, device=device)
    chosen = _override(cfg.chosen(), repeats=repeats,
                       encoders=tuple(e.strip() for e in encoders.split(",")) if encoders else None)
    p = _override(p, evaluate=_override(cfg, **{cfg.profile: chosen}))
    with _locked("evaluate", params):
        typer.echo(run(p, layout or Path(cfg.data) / "layout.yaml", echo=typer.echo).summary())


@app.command()
def train(
    layout: Optional[Path] = typer.Option(None, help="Layout file (default: <fuse.data>/layout.yaml)."),
    params: Path = typer.Option(Path("params.yaml"), help="Parameter file."),
) -> None:
    """Split, bag, fuse, gate and report in one go, on the validated table named in params.yaml."""
    from oanet import report, split as split_stage
    from oanet.fusion.stage import run as fuse_run
    from oanet.gate.stage import run as gate_run
    from oanet.tabular.stage import run as bag_run

    p = _params(params)
    layout = layout or Path(p.fuse.data) / "layout.yaml"
    with _locked("train", params):
        typer.echo(split_stage.describe(split_stage.run(p.split, layout)))
        typer.echo(bag_run(p.bag, layout).summary())
        typer.echo(fuse_run(p.fuse, layout, echo=typer.echo).summary())
        typer.echo(gate_run(p.gate).summary())
        typer.echo(report.table(report.run(p.bag.metrics, p.fuse.metrics, p.report.out, p.gate.metrics))
                   + f"\n  written: {p.report.out}")


def main() -> None:
    from oanet.errors import OanetError

    try:
        app()
    except OanetError as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
