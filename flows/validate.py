"""The validate stage: run the Great Expectations suites on the OCR table, split it into
a clean table and a quarantine, write the reports, and stop on a critical failure.

    oanet validate [--params params.yaml] [--expectations expectations]

`run()` is the stage function; the DVC stage, `oanet validate` and the Prefect flows all call it.
GX runs in an ephemeral context (in-memory stores, nothing under $HOME or gx/uncommitted);
the only files it writes are the Data Docs under `<reports>/data_docs/`.
The page an operator opens is `<reports>/index.html` (`oanet.quality.page`): one file that
renders offline, unlike the Data Docs, which load their styles and scripts from CDNs.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from oanet.config import PathsConfig, ValidateConfig
from oanet.ingest.inventory import QUARANTINE_COLUMNS
from oanet.jsonsafe import strict_json
from oanet.layout import Layout
from oanet.quality.expectations import (
    FailedExpectation,
    ValidationFailed,
    batch_suite,
    check_suite,
    failures,
    field_suite,
    render_summary,
    row_flags,
)
from oanet.quality.page import write_page

__all__ = ["ValidationFailed", "ValidationOutcome", "run"]

KEY = "image"
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [KEY],
    "return_unexpected_index_query": False,
    "include_unexpected_rows": False,
}
DOCS_SITE = "oanet_local_site"
_DATASOURCE, _ASSET, _BATCH = "oanet", "ocr_table", "whole_table"


@dataclass
class ValidationOutcome:
    n_input: int
    n_ingest_quarantine: int
    n_clean: int
    n_gx_quarantine: int
    n_expectations: int
    failed: list[FailedExpectation]
    clean_path: Path | None
    quarantine_path: Path
    result_path: Path
    summary_path: Path
    data_docs: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    page: Path | None = None           # <reports>/index.html: the self-contained report

    @property
    def critical_failures(self) -> list[FailedExpectation]:
        return [f for f in self.failed if f.critical]

    @property
    def success(self) -> bool:
        return not self.critical_failures

    @property
    def n_quarantine(self) -> int:
        return self.n_ingest_quarantine + self.n_gx_quarantine

    def summary(self) -> str:
        warn = len(self.failed) - len(self.critical_failures)
        return (f"validate: {self.n_input} rows in (+{self.n_ingest_quarantine} quarantined by ingest) -> "
                f"{self.n_clean} clean, {self.n_gx_quarantine} quarantined here; "
                f"{self.n_expectations} expectations, {len(self.critical_failures)} critical failures, "
                f"{warn} warnings; clean: {self.clean_path}, quarantine: {self.quarantine_path}, "
                f"report: {self.page}, summary: {self.summary_path}, data docs: {self.data_docs}")


# ---------------------------------------------------------------------------------------
# Great Expectations plumbing (the only place that imports it)
# ---------------------------------------------------------------------------------------

def gx_context(docs_dir: Path):
    """A fresh ephemeral GX context: in-memory stores, one local Data Docs site at `docs_dir`.

    Fresh per run (about 10 ms once GX is imported), so no suite, validation definition or
    result of an earlier run leaks into this run's Data Docs, and nothing is written to
    $HOME or a gx/ folder.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={DOCS_SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(docs_dir).resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }},
    )
    ctx = gx.get_context(project_config=config, mode="ephemeral")
    ctx.data_sources.add_pandas(_DATASOURCE).add_dataframe_asset(_ASSET).add_batch_definition_whole_dataframe(_BATCH)
    return ctx


def gx_suite(suite: dict):
    """A GX ExpectationSuite from our JSON dict; an invalid expectation raises (GX would only log it)."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    exps = []
    for i, e in enumerate(suite["expectations"]):
        try:
            conf = ExpectationConfiguration(type=e["type"], kwargs=dict(e.get("kwargs") or {}),
                                            meta=e.get("meta"), severity=e.get("severity", "critical"))
            exps.append(conf.to_domain_obj())
        except Exception as err:  # GX raises several unrelated types here; name the expectation
            raise ValueError(f"suite {suite['name']}: expectation {i} ({e.get('type')}, "
                             f"kwargs {e.get('kwargs')}) is not valid: {err}") from err
    return gx.ExpectationSuite(name=suite["name"], expectations=exps, meta=suite.get("meta"),
                               notes=suite.get("notes"))


def gx_validate(ctx, suite: dict, df: pd.DataFrame) -> tuple[dict, Any]:
    """Run `suite` on `df` through a ValidationDefinition; return the result dict and its GX object."""
    import great_expectations as gx

    batch_def = ctx.data_sources.get(_DATASOURCE).get_asset(_ASSET).get_batch_definition(_BATCH)
    # One add_or_update: the validation-definition factory also add_or_updates its suite, and
    # suites.add_or_update on an existing suite matches every expectation against every stored
    # one (O(n^2) pydantic comparisons; docs/benchmarks.md, "Smaller measurements"). On a fresh context both
    # take the cheap `add` path.
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"validate.{suite['name']}", data=batch_def, suite=gx_suite(suite)))
    fmt = dict(RESULT_FORMAT)
    if KEY not in df.columns:                      # trace rows by their index instead
        fmt.pop("unexpected_index_column_names")
    result = vd.run(batch_parameters={"dataframe": df}, result_format=fmt)
    out = result.to_json_dict()
    # GX lists errored expectations first; put the results back in suite order.
    order = {e.id: i for i, e in enumerate(vd.suite.expectations)}
    out["results"].sort(key=lambda r: order.get((r.get("expectation_config") or {}).get("id"), len(order)))
    return out, result


def build_data_docs(ctx, docs_dir: Path) -> Path | None:
    docs_dir = Path(docs_dir)
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    built = ctx.build_data_docs(site_names=[DOCS_SITE])
    index = docs_dir / "index.html"
    return index if built and index.exists() else None


# ---------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------

def combined_suite(cfg: ValidateConfig, layout: Layout, expectations_dir: str | Path) -> dict:
    """The hand-written batch suite followed by the per-field suite generated from the layout.

    The field suite is generated here rather than read from `expectations/fields.<name>.json`,
    so a change to the layout or to params.yaml can never leave a stale suite in force; the
    committed JSON is the reviewable copy (a test keeps it equal to the generator's output).
    """
    batch = batch_suite(cfg, Path(expectations_dir) / "batch.json")
    fields = field_suite(layout, cfg)
    return check_suite({
        "name": f"ocr.{layout.name}",
        "expectations": batch["expectations"] + fields["expectations"],
        "meta": {"parts": [batch["name"], fields["name"]], "layout": layout.name,
                 "thresholds": {k: v for k, v in vars(cfg).items() if isinstance(v, (int, float))}},
        "notes": "batch.json (hand-written, thresholds from params.yaml) + the per-field suite from the layout",
    })


def _read_ingest_quarantine(path: Path) -> pd.DataFrame:
    q = pd.read_parquet(path)
    missing = [c for c in QUARANTINE_COLUMNS if c not in q.columns]
    if missing:
        raise ValueError(f"{path}: ingest quarantine lacks columns {missing}")
    return q


def split_rows(df: pd.DataFrame, flags: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows flagged by a row-level expectation -> quarantine (first reason wins); the rest -> clean."""
    keys = df[KEY] if KEY in df.columns else pd.Series(df.index, index=df.index)
    bad = keys.map(lambda k: k in flags).astype(bool)
    quarantined = df.loc[bad]
    qkeys = keys[bad]
    q = pd.DataFrame({
        "image": quarantined[KEY].astype("object") if KEY in df.columns else qkeys.astype(str),
        "reason": [flags[k][0][0] for k in qkeys],
        "detail": ["; ".join(d if len(flags[k]) == 1 else f"{r}: {d}" for r, d in flags[k]) for k in qkeys],
    })
    return df.loc[~bad].reset_index(drop=True), q.reset_index(drop=True)


def run(cfg: ValidateConfig, layout: Layout, paths: PathsConfig, expectations_dir: str | Path = "expectations",
        ) -> ValidationOutcome:
    """Validate the OCR table (paths.ocr, with ingest's quarantine paths.ocr_quarantine); write the clean
    table (paths.clean), the quarantine (paths.quarantine) and the reports (paths.validation_reports);
    raise ValidationFailed (after writing the reports) if a critical expectation fails.
    """
    t0 = time.perf_counter()
    table_path, quarantine_path = Path(paths.ocr), Path(paths.ocr_quarantine)
    reports = Path(paths.validation_reports)
    reports.mkdir(parents=True, exist_ok=True)
    docs_dir = reports / "data_docs"

    df = pd.read_parquet(table_path).reset_index(drop=True)
    ingest_q = _read_ingest_quarantine(quarantine_path)
    suite = combined_suite(cfg, layout, expectations_dir)
    (reports / "suite.json").write_text(json.dumps(suite, indent=2) + "\n")
    t_load = time.perf_counter()

    ctx = gx_context(docs_dir)
    t_ctx = time.perf_counter()
    result, _ = gx_validate(ctx, suite, df)
    t_val = time.perf_counter()

    clean, gx_q = split_rows(df, row_flags(result, KEY))
    extra = []       # checks GX cannot express: they need the row-level outcome
    if len(clean) < cfg.min_rows <= len(df):
        extra.append(FailedExpectation(
            type="clean_row_count_at_least_min_rows", column=None, observed=f"{len(clean)} clean of {len(df)}",
            critical=True, why="Row-level quarantine left fewer clean rows than validate.min_rows: "
                               "a systematic misread, not a few bad units."))
    failed = failures(result) + extra
    quarantine = pd.concat([ingest_q[QUARANTINE_COLUMNS].astype("object"), gx_q.astype("object")],
                           ignore_index=True)
    if len(clean) + len(quarantine) != len(df) + len(ingest_q):
        raise AssertionError(f"row accounting broke: {len(clean)} clean + {len(quarantine)} quarantined != "
                             f"{len(df)} input + {len(ingest_q)} ingest-quarantined")
    critical = [f for f in failed if f.critical]

    out, out_q = Path(paths.clean), Path(paths.quarantine)
    for p in (out, out_q):
        p.parent.mkdir(parents=True, exist_ok=True)
    quarantine.to_parquet(out_q, index=False)
    if critical:          # never leave a clean table (or a stale one) behind a failed gate
        out.unlink(missing_ok=True)
    else:
        clean.to_parquet(out, index=False)

    result_path = reports / "result.json"
    result_path.write_text(json.dumps(strict_json(result), indent=2, default=str) + "\n")
    counts = {"input_rows": len(df), "ingest_quarantine": len(ingest_q), "clean_rows": len(clean),
              "quarantined_here": len(gx_q)}
    summary_path = reports / "summary.md"
    summary_path.write_text(render_summary(result, counts, title=f"Data-quality gate ({suite['name']})",
                                           extra=extra))
    page = write_page(reports / "index.html", result, counts, table=df, quarantine=quarantine, extra=extra,
                      fields=[f.name for f in layout.fields], max_missing_rate=cfg.max_missing_rate,
                      title=f"Data-quality gate ({suite['name']})")
    index = build_data_docs(ctx, docs_dir)
    t_end = time.perf_counter()

    outcome = ValidationOutcome(
        n_input=len(df), n_ingest_quarantine=len(ingest_q), n_clean=len(clean), n_gx_quarantine=len(gx_q),
        n_expectations=len(suite["expectations"]), failed=failed, clean_path=None if critical else out,
        quarantine_path=out_q, result_path=result_path, summary_path=summary_path, data_docs=index, page=page,
        seconds={"load": t_load - t0, "context": t_ctx - t_load, "validate": t_val - t_ctx,
                 "write_and_docs": t_end - t_val, "total": t_end - t0})
    if critical:
        raise ValidationFailed(critical, reports=summary_path, outcome=outcome)
    return outcome
