"""The data-quality gate on small generated OCR tables: suites, row quarantine, critical stops."""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from oanet.config import ValidateConfig, load_params
from oanet.quality import expectations as qe
from oanet.synth.aoi_layout import aoi_v1_layout

ROOT = Path(__file__).resolve().parents[2]
EXPECTATIONS = ROOT / "expectations"
LAYOUT = aoi_v1_layout()


# ---------------------------------------------------------------------------------------
# Pure suite building (no GX)
# ---------------------------------------------------------------------------------------

def test_field_suite_covers_every_layout_field():
    suite = qe.field_suite(LAYOUT, ValidateConfig())
    by_col: dict[str, set[str]] = {}
    for e in suite["expectations"]:
        by_col.setdefault(e["kwargs"].get("column"), set()).add(e["type"])
        assert isinstance(e["meta"]["critical"], bool) and e["meta"]["why"].strip()
        assert e["severity"] == ("critical" if e["meta"]["critical"] else "warning")
        assert not (e["meta"]["critical"] and e["meta"]["row_level"])
    for f in LAYOUT.fields:
        for col in (f.name, f"{f.name}__conf", f"{f.name}__reason"):
            assert "expect_column_to_exist" in by_col[col], col
        assert "expect_column_values_to_not_be_null" in by_col[f.name]
        assert {"expect_column_values_to_be_between", "expect_column_median_to_be_between"} <= by_col[f"{f.name}__conf"]
        if f.dtype in ("float", "int"):
            assert {"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_between"} <= by_col[f.name]
        elif f.dtype == "category":
            assert "expect_column_values_to_be_in_set" in by_col[f.name]
        else:
            assert "expect_column_values_to_match_regex" in by_col[f.name]
    unit = LAYOUT.by_role("id").name
    assert "expect_column_values_to_be_unique" in by_col[unit]


def test_field_suite_thresholds_come_from_config():
    cfg = ValidateConfig(max_missing_rate=0.25, min_median_confidence=0.7)
    suite = qe.field_suite(LAYOUT, cfg)
    missing = [e for e in suite["expectations"] if e["type"] == "expect_column_values_to_not_be_null"
               and e["meta"]["critical"]]
    assert missing and all(e["kwargs"]["mostly"] == pytest.approx(0.75) for e in missing)
    medians = [e for e in suite["expectations"] if e["type"] == "expect_column_median_to_be_between"]
    assert all(e["kwargs"]["min_value"] == 0.7 for e in medians)
    temp = next(e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_between"
                and e["kwargs"]["column"] == "sinter_temp_c")
    assert (temp["kwargs"]["min_value"], temp["kwargs"]["max_value"]) == (900.0, 1400.0)


def test_suite_json_round_trips(tmp_path):
    cfg = ValidateConfig()
    path = qe.write_field_suite(LAYOUT, cfg, tmp_path)
    assert path.name == "fields.aoi-v1.json"
    assert qe.load_suite(path) == json.loads(json.dumps(qe.field_suite(LAYOUT, cfg)))


def test_committed_field_suite_is_the_generated_one():
    cfg = load_params(ROOT / "params.yaml").validate
    committed = qe.load_suite(EXPECTATIONS / "fields.aoi-v1.json")
    assert committed == json.loads(json.dumps(qe.field_suite(LAYOUT, cfg))), \
        "expectations/fields.aoi-v1.json is stale: run `oanet expectations --layout <aoi-v1 layout.yaml>`"


def test_batch_suite_fills_placeholders_from_config():
    cfg = ValidateConfig(min_rows=33, min_defect_rate=0.11, max_defect_rate=0.66)
    suite = qe.batch_suite(cfg, EXPECTATIONS / "batch.json")
    text = json.dumps(suite["expectations"])
    assert '"$' not in text
    rows = next(e for e in suite["expectations"] if e["type"] == "expect_table_row_count_to_be_between")
    assert rows["kwargs"]["min_value"] == 33 and rows["meta"]["critical"]
    mean = next(e for e in suite["expectations"] if e["type"] == "expect_column_mean_to_be_between")
    assert (mean["kwargs"]["min_value"], mean["kwargs"]["max_value"]) == (0.11, 0.66)
    assert "$min_rows" in (EXPECTATIONS / "batch.json").read_text()   # the file keeps the placeholder


def test_unknown_placeholder_is_named(tmp_path):
    bad = {"name": "b", "expectations": [{"type": "expect_table_row_count_to_be_between",
                                          "kwargs": {"min_value": "$min_rowz"}, "meta": {"critical": True}}]}
    (tmp_path / "batch.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"\$min_rowz.*known"):
        qe.batch_suite(ValidateConfig(), tmp_path / "batch.json")


def test_load_suite_rejects_a_suite_without_critical_flags(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"name": "s", "expectations": [{"type": "x", "kwargs": {}}]}))
    with pytest.raises(ValueError, match="meta.critical"):
        qe.load_suite(tmp_path / "s.json")


def test_quality_package_imports_no_orchestration_tools():
    banned = {"great_expectations", "prefect", "mlflow", "dvc"}
    for path in (ROOT / "oanet" / "quality").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not {n.split(".")[0] for n in names} & banned, path


# ---------------------------------------------------------------------------------------
# The stage, through Great Expectations
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def validate():
    from flows import validate as v  # GX is imported once for the module
    return v


def test_good_batch_passes_and_writes_everything(tmp_path, validation_stage, validate, make_table):
    df = make_table(60, missing_every=40)
    cfg, paths = validation_stage(tmp_path, df)
    out = validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert out.success and not out.critical_failures
    assert (out.n_input, out.n_clean, out.n_gx_quarantine, out.n_ingest_quarantine) == (60, 60, 0, 3)
    clean = pd.read_parquet(paths.clean)
    assert len(clean) == 60 and list(clean.columns) == list(df.columns)
    quarantine = pd.read_parquet(paths.quarantine)
    assert list(quarantine.columns) == ["image", "reason", "detail"] and len(quarantine) == 3
    result = json.loads(out.result_path.read_text())
    assert result["success"] and len(result["results"]) == out.n_expectations
    summary = out.summary_path.read_text()
    assert "passed" in summary and "expect_table_row_count_to_be_between" in summary
    assert out.data_docs is not None and out.data_docs.name == "index.html"
    assert list((Path(paths.validation_reports) / "data_docs").rglob("validations/**/*.html"))


def test_out_of_range_row_is_quarantined_with_its_reason(tmp_path, validation_stage, validate, make_table):
    df = make_table(50)
    df.loc[7, "thickness_mm"] = 9.0            # THICK range is [3.5, 4.5]
    df.loc[11, "station"] = "AOI-99"           # not a category
    df.loc[12, "unit_id"] = df.loc[13, "unit_id"]
    cfg, paths = validation_stage(tmp_path, df)
    out = validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert out.success and out.n_gx_quarantine == 4 and out.n_clean == 46
    q = pd.read_parquet(paths.quarantine).set_index("image")
    assert q.loc["images/00007.png", "reason"] == "gx:expect_column_values_to_be_between:thickness_mm"
    assert "9.0" in q.loc["images/00007.png", "detail"]
    assert q.loc["images/00011.png", "reason"] == "gx:expect_column_values_to_be_in_set:station"
    assert q.loc["images/00012.png", "reason"] == q.loc["images/00013.png", "reason"] \
        == "gx:expect_column_values_to_be_unique:unit_id"
    clean = pd.read_parquet(paths.clean)
    assert not set(clean["image"]) & set(q.index)
    assert "**FAIL**" in out.summary_path.read_text()


def test_row_accounting(tmp_path, validation_stage, validate, make_table):
    df = make_table(40, missing_every=25)
    df.loc[[1, 2], "gain_db"] = 99.0
    df.loc[2, "exposure_ms"] = -1.0            # one row failing two expectations is counted once
    cfg, paths = validation_stage(tmp_path, df, n_ingest_q=5)
    out = validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    clean, q = pd.read_parquet(paths.clean), pd.read_parquet(paths.quarantine)
    assert len(clean) + len(q) == len(df) + 5
    assert out.n_gx_quarantine == 2 and set(clean["image"]).isdisjoint(q["image"])
    ingest_q = pd.read_parquet(paths.ocr_quarantine)
    assert set(clean["image"]) | set(q["image"]) == set(df["image"]) | set(ingest_q["image"])
    detail = q.set_index("image").loc["images/00002.png", "detail"]
    assert "gain_db" in detail and "exposure_ms" in detail


def test_missing_column_stops_the_batch_after_writing_reports(tmp_path, validation_stage, validate, make_table):
    cfg, paths = validation_stage(tmp_path, make_table(40).drop(columns=["gain_db__conf"]))
    with pytest.raises(validate.ValidationFailed) as err:
        validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    names = [f.name for f in err.value.failures]
    assert "expect_column_to_exist(gain_db__conf)" in names
    assert "expect_column_to_exist(gain_db__conf)" in str(err.value)
    reports = Path(paths.validation_reports)
    assert (reports / "result.json").exists() and "FAILED" in (reports / "summary.md").read_text()
    assert (reports / "data_docs" / "index.html").exists()
    assert not Path(paths.clean).exists()          # no clean table behind a failed gate


def test_too_few_rows_stops_the_batch(tmp_path, validation_stage, validate, make_table):
    cfg, paths = validation_stage(tmp_path, make_table(12), min_rows=20)
    with pytest.raises(validate.ValidationFailed, match="expect_table_row_count_to_be_between") as err:
        validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert [f.observed for f in err.value.failures] == ["12"]


def test_a_defect_rate_out_of_bounds_names_the_settings_that_hold_them(tmp_path, validation_stage, validate,
                                                                       make_table):
    """A line running at 0.5% defective is refused, and the message says which settings to set."""
    cfg, paths = validation_stage(tmp_path, make_table(200, defect_rate=0.005), min_defect_rate=0.01)
    with pytest.raises(validate.ValidationFailed, match=r"expect_column_mean_to_be_between\(label\)") as err:
        validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert "why: The defect rate outside [validate.min_defect_rate, validate.max_defect_rate] (params.yaml)" \
        in str(err.value)


def test_bad_labels_and_confidences_are_critical(tmp_path, validation_stage, validate, make_table):
    df = make_table(40)
    df.loc[3, "label"] = 2
    df.loc[4, "press_mpa__conf"] = 1.7
    df.loc[5, "press_mpa__reason"] = "guessed"
    cfg, paths = validation_stage(tmp_path, df)
    with pytest.raises(validate.ValidationFailed) as err:
        validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert {f.name for f in err.value.failures} == {
        "expect_column_values_to_be_in_set(label)", "expect_column_values_to_be_between(press_mpa__conf)",
        "expect_column_values_to_be_in_set(press_mpa__reason)"}


def test_low_median_confidence_warns_but_passes(tmp_path, validation_stage, validate, make_table):
    df = make_table(40)
    df["edge_frac__conf"] = 0.85
    cfg, paths = validation_stage(tmp_path, df)
    out = validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert out.success and [f.name for f in out.failed] == ["expect_column_median_to_be_between(edge_frac__conf)"]
    assert out.n_clean == 40


def test_quarantining_most_rows_stops_the_batch(tmp_path, validation_stage, validate, make_table):
    df = make_table(30)
    df.loc[:14, "thickness_mm"] = 45.0          # a unit change (mm -> 0.1 mm), not 15 bad units
    cfg, paths = validation_stage(tmp_path, df, min_rows=20)
    with pytest.raises(validate.ValidationFailed, match="clean_row_count_at_least_min_rows") as err:
        validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert err.value.outcome.n_gx_quarantine == 15
    assert "clean_row_count_at_least_min_rows" in Path(paths.validation_reports, "summary.md").read_text()


def test_field_missing_too_often_is_critical(tmp_path, validation_stage, validate, make_table):
    df = make_table(40)
    df.loc[:9, "sinter_temp_c"] = None          # 25% > max_missing_rate 10%
    cfg, paths = validation_stage(tmp_path, df)
    with pytest.raises(validate.ValidationFailed, match=r"expect_column_values_to_not_be_null\(sinter_temp_c\)"):
        validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)


def test_command_exit_codes(tmp_path, validation_stage, validate, make_table):
    """`oanet validate` (the DVC stage): 0 on a good batch, 1 with the failed expectation on stderr."""
    import yaml
    from typer.testing import CliRunner

    from flows.cli import app

    data = tmp_path / "raw"
    data.mkdir()
    LAYOUT.save(data / "layout.yaml")
    cfg, paths = validation_stage(tmp_path, make_table(30))
    params = {"paths": {**dataclasses.asdict(paths), "raw": str(data)}, "validate": dataclasses.asdict(cfg)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["validate", "--params", str(tmp_path / "params.yaml"), "--expectations", str(EXPECTATIONS)]
    passed = CliRunner().invoke(app, argv)
    assert passed.exit_code == 0 and "30 clean" in passed.stdout, passed.output
    params["validate"]["min_rows"] = 100
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    failed = CliRunner().invoke(app, argv)
    assert failed.exit_code == 1 and "expect_table_row_count_to_be_between" in failed.stderr, failed.output
