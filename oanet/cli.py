"""The library's commands of the `oanet` command line.

A stage command folds its options into the params and runs the stage's one function from the stage
table (oanet/stages.py), under the project lock; the other commands are tools around the stages.
`commands` holds them; `make_app` puts command groups under one root. `app` is the library's own
(`python -m oanet.cli`); the `oanet` console script is flows/cli.py's, which composes these commands
with the ones that need Prefect, MLflow or Great Expectations.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from oanet.env import apply_offline_defaults
from oanet.stages import STAGES, TRAIN_STAGES, Echo, Stage

# Panels of `oanet --help`, so that its one list of commands reads by purpose.
STAGE_PANEL = "Stages (one per dvc.yaml stage)"
RUN_PANEL = "Runs (several stages)"
TOOL_PANEL = "Tools"
DEFAULT_PARAMS = Path("params.yaml")
PARAMS = typer.Option(DEFAULT_PARAMS, help="Parameter file.")
# options several commands share, declared once
LAYOUT = typer.Option(None, help="Layout file (default: <paths.raw>/layout.yaml).")
DEVICE = typer.Option(None, help="auto | cpu | cuda (default: params).")

commands = typer.Typer()


def make_app(*groups: typer.Typer) -> typer.Typer:
    """One `oanet` app holding the commands of every group, with the offline defaults applied first."""
    root = typer.Typer(help="OANet: OCR-augmented defect detection for AOI images.", no_args_is_help=True,
                       add_completion=False)
    root.callback()(_offline_defaults)
    for group in groups:
        root.add_typer(group)        # no name: its commands join the root's
    return root


def _offline_defaults() -> None:
    apply_offline_defaults()       # before any command's import of a tool that reads them at import time


def _params(path: Path):
    """The params of `path`. Without a params.yaml here the defaults serve (a tool run outside a project),
    but a file named on purpose must exist: a typo must not fall back to the defaults unnoticed."""
    from oanet.config import ConfigError, load_params

    if path != DEFAULT_PARAMS and not path.is_file():
        raise ConfigError(f"--params {path}: no such file")
    return load_params(path)


def _locked(command: str, params: Path):
    """The project lock (oanet.runlock) for a command that writes a stage's outputs: one writer at a time."""
    from oanet.runlock import project_lock

    return project_lock(f"oanet {command}", params)


def _given(options: dict) -> dict:
    """The options the user gave (not None) as a mapping shaped like params.yaml."""
    out = {}
    for k, v in options.items():
        if isinstance(v, dict):
            if sub := _given(v):
                out[k] = sub
        elif v is not None:
            out[k] = v
    return out


def _override(cfg, **options):
    """The config with every command-line option the user gave replacing params.yaml's, checked as
    params.yaml is (a bad value names its key); sub-sections are given as mappings."""
    from oanet.config import updated

    return updated(cfg, _given(options))


def _overridden(params: Path, section: str, **options):
    """The params of `params`, with the options the user gave replacing theirs in `section`."""
    return _override(_params(params), **{section: options})


def run_stage(table: Mapping[str, Stage], name: str, params: Path, p=None, layout: Path | None = None,
              echo: Echo = typer.echo, **options) -> None:
    """Run stage `name` of `table` (on `p`, default: the params of `params`) and print its summary."""
    p = p or _params(params)
    with _locked(name, params):
        typer.echo(table[name].run(p, params, layout, echo, **options))


@commands.command(rich_help_panel=STAGE_PANEL)
def data(params: Path = PARAMS) -> None:
    """Stage `data`: move new images from the incoming folder into the raw dataset (demo set if empty)."""
    run_stage(STAGES, "data", params)


@commands.command(rich_help_panel=TOOL_PANEL)
def synth(
    out: Path = typer.Option(..., help="Output folder: images/, labels.csv, truth.csv, layout.yaml."),
    n: int | None = typer.Option(None, help="Number of units (default: params.yaml synth.n)."),
    seed: int | None = typer.Option(None, help="Random seed (default: params.yaml)."),
    objects: Path | None = typer.Option(None, help="Folder laid out like magnetic-tile; default: procedural objects."),
    preset: str | None = typer.Option(None, help="clean | noisy"),
    style: str | None = typer.Option(
        None, metavar="NAME|PATH",
        help="Panel style: " + ", ".join(
            ["aoi-v1", *sorted(p.stem for p in (Path(__file__).parent / "synth" / "styles").glob("*.yaml"))])
             + ", or the path of a style .yaml (default: params.yaml synth.style). "
               "Without --seed, the style's own seed."),
    incident: str | None = typer.Option(
        None, metavar="NAME", help="A night with a simulated incident: none | exposure | font | process | camera "
                                   "(oanet/synth/incidents.py); DIR/incident.json records what changed."),
    incident_field: str | None = typer.Option(
        None, help="process incident: the process value whose mean shifts (default sinter_temp_c)."),
    incident_magnitude: float | None = typer.Option(
        None, help="exposure: gray factor (1.35); process: shift in process sd (3.5); "
                   "camera: shift as a share of the object box (0.2)."),
    lot_prefix: str | None = typer.Option(
        None, metavar="YYMM|seed", help="Lots L<prefix>-0001...: 4 digits (default: params.yaml synth.lot_yymm), "
                                        "or `seed`: the seed's last 4 digits, so nights of other seeds share no lot."),
    params: Path = PARAMS,
) -> None:
    """Write a synthetic AOI data set with a known printed value for every field."""
    from oanet.synth.incidents import IncidentSpec
    from oanet.synth.stage import run, with_lot_prefix
    from oanet.synth.styles import load_style

    if style is not None and seed is None:      # a style named here renders with its own seed
        seed = load_style(style).seed
    cfg = _override(_params(params).synth, n=n, seed=seed, preset=preset, style=style,
                    objects=str(objects) if objects else None)
    asked = (incident, incident_field, incident_magnitude) != (None, None, None)
    spec = IncidentSpec(incident or "none", incident_field, incident_magnitude) if asked else None
    result = run(with_lot_prefix(cfg, lot_prefix), out, incident=spec)
    typer.echo(result.summary())


@commands.command(rich_help_panel=STAGE_PANEL)
def ingest(
    data: Path | None = typer.Option(
        None, help="AOI folder: images, labels.csv, layout.yaml (default: params paths.raw)."),
    out: Path | None = typer.Option(None, help="Output table, .parquet (default: params paths.ocr)."),
    layout: Path | None = typer.Option(None, help="Layout file (default: DATA/layout.yaml)."),
    quarantine: Path | None = typer.Option(
        None, help="Quarantine table (default: params paths.ocr_quarantine, or beside OUT)."),
    no_cache: bool = typer.Option(False, help="Ignore and do not write the OCR cache."),
    workers: int | None = typer.Option(
        None, help="OCR on a local Dask cluster of N single-threaded workers; 0: in this process (default: params)."),
    scheduler: str | None = typer.Option(
        None, help="OCR on the workers of a running Dask scheduler, e.g. tcp://host:8786 (default: params)."),
    params: Path = PARAMS,
) -> None:
    """Stage `ingest`: OCR every panel, parse its fields by the layout, and quarantine unusable images."""
    import dataclasses

    q = quarantine or (out.with_name(out.stem + "_quarantine.parquet") if out else None)
    p = _override(_params(params), paths={"raw": _text(data), "ocr": _text(out), "ocr_quarantine": _text(q)},
                  ingest={"workers": workers, "scheduler": scheduler})
    if no_cache:                         # None is "not given" to _override: set it here
        p = dataclasses.replace(p, ingest=dataclasses.replace(p.ingest, cache=None))
    run_stage(STAGES, "ingest", params, p, layout=layout)


def _text(path: Path | None) -> str | None:
    """A path option as the config's string (None stays None: not given)."""
    return None if path is None else str(path)


layout_app = typer.Typer(help="Check a layout against real images before ingesting them.", no_args_is_help=True)
commands.add_typer(layout_app, name="layout", rich_help_panel=TOOL_PANEL)


@layout_app.command("preview")
def layout_preview(
    data: Path = typer.Option(..., help="AOI folder: images, labels.csv, layout.yaml."),
    n: int = typer.Option(12, min=1, help="Images to show: the first N that labels.csv lists."),
    layout: Path | None = typer.Option(None, help="Layout file (default: DATA/layout.yaml)."),
    out: Path = typer.Option(Path("reports/layout_preview.png"), help="Contact sheet to write, PNG."),
    params: Path = typer.Option(DEFAULT_PARAMS, help="Parameter file (its ingest settings read the images)."),
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
    params: Path = typer.Option(DEFAULT_PARAMS, help="Parameter file (its ingest.rec_model reads the images)."),
) -> None:
    """Draft a layout.yaml: keys, line boxes, dtypes, decimals, units and ranges from CnOCR's detector."""
    from oanet.ingest.engine import Ocr
    from oanet.ingest.inventory import image_files
    from oanet.ingest.suggest import draft, needs_full_charset, read_panels, unclaimed_lines

    paths = [p for i in images for p in ([i / f for f in image_files(i)[:8]] if i.is_dir() else [i])]
    reads, size = read_panels(paths, Ocr(_params(params).ingest.rec_model))
    drafted = draft(reads, size, name, [p.name for p in paths])
    layout = drafted.layout
    out.parent.mkdir(parents=True, exist_ok=True)
    layout.save(out)
    typer.echo(f"layout suggest: {len(layout.fields)} fields from {len(paths)} images -> {out}")
    for f in layout.fields:
        extra = (f"decimals {f.decimals}" if f.decimals is not None else f"pattern {f.pattern}" if f.pattern
                 else f"categories {','.join(f.categories)}" if f.categories else "")
        role = "" if f.role == "feature" else f" ({f.role})"
        box = list(f.roi) if f.roi else f"none ({drafted.unboxed[f.name]}): found by key"
        typer.echo(f"  {f.name:<18} key {f.key!r:<16} {f.dtype:<8} {f.unit or '':<5} {extra:<22} box {box}" + role)
    wide = needs_full_charset(layout)
    if wide:
        typer.echo(f"  hint: {', '.join(wide)} print letters outside ASCII: set ingest.charset: full in params.yaml "
                   "(the default reads only ASCII and the characters of the layout's keys, units and categories)")
    for text, n in unclaimed_lines(reads, layout)[:8]:
        typer.echo(f"  not understood, in {n} of {len(paths)} images: {text!r} (add it by hand if it is a field)")
    typer.echo(f"  object_roi {list(layout.object_roi)}; check it with: oanet layout preview --layout {out} --data DIR")


@commands.command(rich_help_panel=TOOL_PANEL)
def expectations(
    layout: Path = typer.Option(..., help="Layout file to derive the per-field suite from."),
    out: Path = typer.Option(Path("expectations"), help="Folder for the suite JSON files."),
    params: Path = PARAMS,
) -> None:
    """Write the per-field Great Expectations suite generated from a layout."""
    from oanet.layout import load_layout
    from oanet.quality.expectations import BATCH_SUITE_FILE, complete_suite_folder, write_field_suite

    path = write_field_suite(load_layout(layout), _params(params).validate, out)
    typer.echo(f"wrote {path}")
    copied = complete_suite_folder(out, params)
    if copied:
        typer.echo(f"wrote {copied}: the project's hand-written batch suite, so `oanet validate --expectations {out}` "
                   "finds both")
    elif not (out / BATCH_SUITE_FILE).exists():
        typer.echo(f"note: {out} has no {BATCH_SUITE_FILE} (the batch suite `oanet validate` also needs) and no "
                   "project expectations/ holds one: copy it there from the project")


@commands.command(rich_help_panel=STAGE_PANEL)
def split(
    layout: Path | None = LAYOUT,
    params: Path = PARAMS,
) -> None:
    """Stage `split`: write the stratified 7:3 train/test split and CV folds, grouped by lot."""
    run_stage(STAGES, "split", params, layout=layout)


@commands.command(rich_help_panel=STAGE_PANEL)
def bag(
    layout: Path | None = LAYOUT,
    n_jobs: int = typer.Option(1, help="Threads per tabular model."),
    params: Path = PARAMS,
) -> None:
    """Stage `bag`: cross-validate, refit and evaluate the tabular models (intra-bagging) on the OCR table."""
    run_stage(STAGES, "bag", params, layout=layout, n_jobs=n_jobs)


@commands.command(rich_help_panel=STAGE_PANEL)
def fuse(
    layout: Path | None = LAYOUT,
    encoder: str | None = typer.Option(None, help="narrow_resnet | alexnet | vgg16 | resnet18 (default: params)."),
    image_size: int | None = typer.Option(None, help="Object image side in pixels (default: params)."),
    epochs: int | None = typer.Option(None, help="Training epochs (default: params)."),
    device: str | None = DEVICE,
    quiet: bool = typer.Option(False, help="No per-epoch progress lines."),
    params: Path = PARAMS,
) -> None:
    """Stage `fuse`: train the image-only CNN and the OANet fusion model; score the test split."""
    p = _overridden(params, "fuse", network={"encoder": encoder}, training={"image_size": image_size},
                    optimiser={"epochs": epochs}, device=device)
    run_stage(STAGES, "fuse", params, p, layout=layout, echo=None if quiet else typer.echo)


@commands.command(rich_help_panel=STAGE_PANEL)
def gate(
    min_accuracy: float | None = typer.Option(None, help="Accuracy floor of the calibration (default: params)."),
    device: str | None = DEVICE,
    params: Path = PARAMS,
) -> None:
    """Stage `gate`: calibrate the KL-divergence gate over all models on the val rows; score the test split."""
    run_stage(STAGES, "gate", params, _overridden(params, "gate", min_accuracy=min_accuracy, device=device))


@commands.command(rich_help_panel=STAGE_PANEL)
def evaluate(
    layout: Path | None = LAYOUT,
    profile: str | None = typer.Option(
        None, help="quick | cpu | cpu_paper_encoders | paper (default: params evaluate.profile)."),
    repeats: int | None = typer.Option(None, help="Override the profile's number of repeats."),
    encoders: str | None = typer.Option(None, help="Comma-separated encoders, overriding the profile's."),
    device: str | None = DEVICE,
    params: Path = PARAMS,
) -> None:
    """Stage `evaluate`: paper Tables 1 and 2, the baselines and the robustness sweeps over repeated splits."""
    p = _overridden(params, "evaluate", profile=profile, device=device)
    chosen = {"repeats": repeats, "encoders": [e.strip() for e in encoders.split(",")] if encoders else None}
    p = _override(p, evaluate={p.evaluate.profile: chosen})
    run_stage(STAGES, "evaluate", params, p, layout=layout)


@commands.command(rich_help_panel=STAGE_PANEL)
def report(params: Path = PARAMS) -> None:
    """Stage `report`: collect every model's test metrics into reports/metrics.json and print them."""
    run_stage(STAGES, "report", params)


@commands.command(rich_help_panel=RUN_PANEL)
def train(
    layout: Path | None = typer.Option(None, help="Layout file (default: each stage's own, as in dvc.yaml)."),
    params: Path = PARAMS,
) -> None:
    """Split, bag, fuse, gate and report in one go, on the validated table named in params.yaml."""
    p = _params(params)
    with _locked("train", params):        # one writer for the whole run, not a lock per stage
        for name in TRAIN_STAGES:
            typer.echo(STAGES[name].run(p, params, layout, typer.echo))


app = make_app(commands)


def main(application: typer.Typer = app) -> None:
    """Run `application`; a problem with the user's input or setup (OanetError) is one line and exit 2."""
    import warnings

    from oanet.errors import OanetError

    # a warning is one line for the user (no source line of ours, no site-packages path)
    warnings.showwarning = lambda message, category, *_, **__: typer.echo(
        f"warning: {' '.join(str(message).split())}", err=True)
    try:
        application()
    except OanetError as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
