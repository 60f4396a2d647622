"""Expectation suites as plain dicts in Great Expectations 1.x suite-JSON shape.

Two suites guard the OCR table before anything learns from it:

* the per-field suite, generated from the layout (`field_suite`): every field's value,
  confidence and reason columns exist, values have the right type, sit in the field's
  range, category or pattern, are not missing too often, and are read with a healthy
  confidence;
* the batch suite, hand-written in `expectations/batch.json` (`batch_suite`): row count,
  label set and balance, unique images. Its numbers are placeholders (`"$min_rows"`)
  filled from `ValidateConfig`, so params.yaml stays the single source of numbers.

Every expectation's `meta` says whether a failure is `critical` (the batch stops the
pipeline), whether it is `row_level` (the rows it flags go to the quarantine and the rest
stay clean) and `why`, one sentence a reviewer can argue with. GX's own `severity` is set
from `critical` (GX defaults every expectation to "critical" otherwise).

This module is pure: no Great Expectations import. It also reads GX validation results
back as plain dicts (`failures`, `row_flags`, `render_summary`), so the decision logic
is testable without GX and `flows/validate.py` stays a thin wrapper.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oanet.config import ValidateConfig
from oanet.ingest.parse import REASONS
from oanet.jsonsafe import plain
from oanet.layout import Field, Layout

#: pandas dtype names accepted for float and int fields (the ingest table stores both as float64).
NUMERIC_TYPES = ("float64", "Float64", "float32", "Float32", "int64", "Int64", "int32", "Int32")
BATCH_SUITE_FILE = "batch.json"
PLACEHOLDER = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


# ---------------------------------------------------------------------------------------
# Building suites
# ---------------------------------------------------------------------------------------

def expectation(type_: str, *, critical: bool, why: str, row_level: bool = False, **kwargs) -> dict:
    """One expectation in GX 1.x JSON shape, with our meta and GX severity set."""
    if row_level and critical:
        raise ValueError(f"{type_}: a row-level expectation quarantines rows; it cannot also stop the batch")
    return {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"critical": critical, "row_level": row_level, "why": why},
        "severity": "critical" if critical else "warning",
    }


def conf_column(f: Field | str) -> str:
    return f"{f if isinstance(f, str) else f.name}__conf"


def reason_column(f: Field | str) -> str:
    return f"{f if isinstance(f, str) else f.name}__reason"


def _full_match(pattern: str) -> str:
    # GX 1.x checks regexes in pandas with `str.contains` (a search, not a match): anchor both ends.
    return f"^(?:{pattern})$"


def _field_expectations(f: Field, cfg: ValidateConfig) -> list[dict]:
    col, conf, reason = f.name, conf_column(f), reason_column(f)
    out = [
        expectation("expect_column_to_exist", column=c, critical=True,
                    why=f"The table contract: {what} of field {col} must be a column, "
                        "or the OCR stage and the layout disagree and every later stage would fail or misread.")
        for c, what in ((col, "the value"), (conf, "the OCR confidence"), (reason, "the missing-value reason"))
    ]
    if f.dtype in ("float", "int"):
        out.append(expectation(
            "expect_column_values_to_be_in_type_list", column=col, type_list=list(NUMERIC_TYPES), critical=True,
            why=f"{col} is a {f.dtype} field; a non-numeric column means the parser stored text and no model can use it."))
    elif f.dtype == "category" and f.categories:
        out.append(expectation(
            "expect_column_values_to_be_in_set", column=col, value_set=list(f.categories), mostly=1.0,
            critical=False, row_level=True,
            why=f"{col} must be one of the layout's categories; a row with another value was misread, "
                "so that row is quarantined and the rest of the batch stays usable."))
    elif f.dtype == "str" and (f.pattern or f.categories):
        out.append(expectation(
            "expect_column_values_to_match_regex", column=col, regex=_full_match(f.value_regex().pattern),
            mostly=1.0, critical=False, row_level=True,
            why=f"{col} must match the layout's pattern; a row that does not was misread, "
                "so that row is quarantined."))
    if f.range is not None and f.dtype in ("float", "int"):
        lo, hi = f.range
        out.append(expectation(
            "expect_column_values_to_be_between", column=col, min_value=lo, max_value=hi, mostly=1.0,
            critical=False, row_level=True,
            why=f"{col} outside its physical range [{lo:g}, {hi:g}] is a wrong read the OCR stage let through; "
                "the row is quarantined rather than fed to the model as a real number."))
    if f.role == "id":
        out.append(expectation(
            "expect_column_values_to_not_be_null", column=col, mostly=1.0, critical=False, row_level=True,
            why=f"{col} is the unit id: a row without one cannot be traced back to a unit, so it is quarantined."))
        out.append(expectation(
            "expect_column_values_to_be_unique", column=col, critical=False, row_level=True,
            why=f"{col} is the unit id: two rows claiming one unit cannot both be right and we cannot tell "
                "which is, so both go to the quarantine."))
    keep = 1.0 - cfg.max_missing_rate
    out.append(expectation(
        "expect_column_values_to_not_be_null", column=col, mostly=round(keep, 6), critical=True,
        why=f"Single failed reads are expected and become missing, but {col} missing in more than "
            f"{cfg.max_missing_rate:.0%} of rows means its line box or parser broke for the whole batch "
            "(layout drift, new machine); training on that would learn the breakage, so the batch stops."))
    out.append(expectation(
        "expect_column_values_to_be_between", column=conf, min_value=0.0, max_value=1.0, mostly=1.0,
        critical=True,
        why=f"{conf} must be a probability; anything else means the OCR stage's confidence gate "
            "(which turns weak reads into missing values) did not work as designed."))
    out.append(expectation(
        "expect_column_median_to_be_between", column=conf, min_value=cfg.min_median_confidence, max_value=1.0,
        critical=False,
        why=f"A median OCR confidence under {cfg.min_median_confidence:g} is an early warning of image or "
            "print-quality drift; it is not critical because each weak read was already made missing "
            "by the OCR stage's per-read threshold, and the missing-rate check stops a real breakdown."))
    out.append(expectation(
        "expect_column_values_to_be_in_set", column=reason, value_set=list(REASONS), mostly=1.0,
        critical=True,
        why=f"{reason} is null for a good value or one of {', '.join(REASONS)}; another code means "
            "the OCR stage and this gate disagree on the contract."))
    for e in out:
        e["meta"]["field"] = col
    return out


def field_suite(layout: Layout, cfg: ValidateConfig) -> dict:
    """The per-field suite generated from `layout`, with thresholds from `cfg`."""
    expectations = [e for f in layout.fields for e in _field_expectations(f, cfg)]
    return {
        "name": f"fields.{layout.name}",
        "expectations": expectations,
        "meta": {
            "generated_by": "oanet.quality.expectations.field_suite",
            "layout": layout.name,
            "fields": [f.name for f in layout.fields],
            "thresholds": {"max_missing_rate": cfg.max_missing_rate,
                           "min_median_confidence": cfg.min_median_confidence},
        },
        "notes": "Generated from the layout; regenerate with `oanet expectations --layout LAYOUT`, do not edit.",
    }


def dump_suite(suite: dict) -> str:
    return json.dumps(suite, indent=2, sort_keys=False) + "\n"


def project_expectations(params: str | Path) -> Path:
    """The project's expectations/: beside the params file (a run from another folder), else the working one."""
    beside = Path(params).resolve().parent / "expectations"
    return beside if (beside / BATCH_SUITE_FILE).is_file() else Path("expectations")


def complete_suite_folder(out_dir: str | Path, params: str | Path) -> Path | None:
    """Copy the project's hand-written batch suite into `out_dir` where it has none, so `oanet validate
    --expectations OUT_DIR` finds both suites; the copy's path, or None (it was there, or there is none)."""
    import shutil

    target, source = Path(out_dir) / BATCH_SUITE_FILE, project_expectations(params) / BATCH_SUITE_FILE
    if target.exists() or not source.is_file():
        return None
    shutil.copyfile(source, target)
    return target


def write_field_suite(layout: Layout, cfg: ValidateConfig, out_dir: str | Path) -> Path:
    """Write `fields.<layout.name>.json` into `out_dir` and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"fields.{layout.name}.json"
    path.write_text(dump_suite(field_suite(layout, cfg)))
    return path


def check_suite(suite: Any, where: str = "suite") -> dict:
    """Raise ValueError unless `suite` has the GX suite-JSON shape we rely on."""
    if not isinstance(suite, dict) or not isinstance(suite.get("name"), str) or not suite["name"]:
        raise ValueError(f"{where}: a suite is a mapping with a non-empty 'name'")
    exps = suite.get("expectations")
    if not isinstance(exps, list):
        raise ValueError(f"{where}: 'expectations' must be a list")
    for i, e in enumerate(exps):
        if not isinstance(e, dict) or not isinstance(e.get("type"), str) or not isinstance(e.get("kwargs", {}), dict):
            raise ValueError(f"{where}: expectation {i} needs a 'type' string and a 'kwargs' mapping, got {e!r}")
        meta = e.get("meta") or {}
        if not isinstance(meta.get("critical"), bool):
            raise ValueError(f"{where}: expectation {i} ({e['type']}) needs meta.critical true|false")
    return suite


def load_suite(path: str | Path) -> dict:
    """Read any suite JSON (generated or hand-written) and check its shape."""
    path = Path(path)
    if not path.is_file():
        from oanet.errors import OanetError
        raise OanetError(f"expectation suite not found: {path} (the project's expectations/ folder holds "
                         "batch.json; run from the project or pass --expectations DIR)")
    try:
        suite = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None
    return check_suite(suite, str(path))


def resolve_placeholders(obj: Any, values: dict[str, Any], where: str = "suite") -> Any:
    """Replace every string `"$name"` in `obj` by `values[name]`; unknown names raise."""
    if isinstance(obj, dict):
        return {k: resolve_placeholders(v, values, where) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve_placeholders(v, values, where) for v in obj]
    if isinstance(obj, str):
        m = PLACEHOLDER.match(obj)
        if m:
            if m.group(1) not in values:
                raise ValueError(f"{where}: unknown placeholder {obj!r}; known: {sorted(values)}")
            return values[m.group(1)]
    return obj


def batch_suite(cfg: ValidateConfig, path: str | Path = Path("expectations") / BATCH_SUITE_FILE) -> dict:
    """The hand-written batch suite with its `"$name"` placeholders filled from `cfg`."""
    raw = load_suite(path)
    suite = resolve_placeholders(raw, dataclasses.asdict(cfg), str(path))
    suite.setdefault("meta", {})["thresholds_from"] = "params.yaml validate"
    return check_suite(suite, str(path))


# ---------------------------------------------------------------------------------------
# Reading GX validation results (their `to_json_dict()` form) back
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FailedExpectation:
    type: str
    column: str | None
    observed: str
    critical: bool
    why: str = ""

    @property
    def name(self) -> str:
        return f"{self.type}({self.column})" if self.column else self.type

    def __str__(self) -> str:
        return f"{self.name}: observed {self.observed}"


class ValidationFailed(Exception):
    """A batch failed at least one critical expectation; the reports were written first."""

    def __init__(self, failures: Iterable[FailedExpectation], reports: str | Path | None = None,
                 outcome: Any = None):
        self.failures = list(failures)
        self.reports = reports
        self.outcome = outcome          # the stage's counts and paths (flows.validate.ValidationOutcome)
        lines = [f"data-quality gate: {len(self.failures)} critical expectation(s) failed:"]
        lines += [f"  - {f}" + (f"\n    why: {f.why}" if f.why else "") for f in self.failures]
        if reports:
            lines.append(f"see {reports}")
        super().__init__("\n".join(lines))


def _num(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _exception_message(exc: dict) -> str | None:
    """GX reports an error either flat or keyed by the metric that raised it."""
    if not isinstance(exc, dict):
        return None
    if "raised_exception" in exc:
        return (exc.get("exception_message") or "error") if exc.get("raised_exception") else None
    for sub in exc.values():
        msg = _exception_message(sub) if isinstance(sub, dict) else None
        if msg is None and isinstance(sub, dict) and sub.get("exception_message"):
            msg = sub["exception_message"]
        if msg:
            return msg
    return None


def observed(res: dict) -> str:
    """A short human description of what an expectation saw."""
    msg = _exception_message(res.get("exception_info") or {})
    if msg:
        return f"error: {msg.strip().splitlines()[-1][:160]}"
    r = res.get("result") or {}
    if "observed_value" in r:
        return _num(r["observed_value"])
    if "unexpected_count" in r:
        n, bad = r.get("element_count", 0) or 0, r.get("unexpected_count", 0) or 0
        return f"{bad} unexpected of {n} rows ({100.0 * bad / n if n else 0.0:.1f}%)"
    if _type(res) == "expect_column_to_exist":
        return "present" if res.get("success") else "column missing"
    return "-"


def _meta(res: dict) -> dict:
    return (res.get("expectation_config") or {}).get("meta") or {}


def _column(res: dict) -> str | None:
    return ((res.get("expectation_config") or {}).get("kwargs") or {}).get("column")


def _type(res: dict) -> str:
    return (res.get("expectation_config") or {}).get("type", "?")


def failures(result: dict, *, critical_only: bool = False) -> list[FailedExpectation]:
    """The failed expectations of a validation result (an errored one counts as failed)."""
    out = []
    for res in result.get("results", []):
        if res.get("success"):
            continue
        meta = _meta(res)
        crit = bool(meta.get("critical", True))   # unmarked expectations default to critical, like GX
        if critical_only and not crit:
            continue
        out.append(FailedExpectation(type=_type(res), column=_column(res), observed=observed(res),
                                     critical=crit, why=meta.get("why", "")))
    return out


def row_flags(result: dict, key: str = "image") -> dict[Any, list[tuple[str, str]]]:
    """Rows flagged by row-level expectations: key value -> [(reason, detail), ...] in suite order.

    The reason is `gx:<expectation_type>:<column>`; the detail names the offending value.
    Needs a result run with result_format COMPLETE and `unexpected_index_column_names=[key]`.
    """
    flags: dict[Any, list[tuple[str, str]]] = {}
    for res in result.get("results", []):
        if not _meta(res).get("row_level"):
            continue
        r = res.get("result") or {}
        col = _column(res)
        reason = f"gx:{_type(res)}:{col}"
        for item in r.get("unexpected_index_list") or []:
            k = item.get(key) if isinstance(item, dict) else item
            value = item.get(col) if isinstance(item, dict) else None
            flags.setdefault(plain(k), []).append((reason, f"{col}={plain(value)!r}"))
    return flags


def render_summary(result: dict, counts: dict[str, int], title: str = "Data-quality gate",
                   extra: Iterable[FailedExpectation] = ()) -> str:
    """A compact markdown summary: counts, each expectation with pass/fail and what it saw,
    then why each failed one matters. `extra` adds checks made outside GX."""
    results = result.get("results", [])
    extra = list(extra)
    failed = failures(result) + extra
    crit = [f for f in failed if f.critical]
    status = "FAILED (critical)" if crit else ("passed with warnings" if failed else "passed")
    lines = [f"# {title}: {status}", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in counts.items()]
    lines += [f"- expectations: {len(results) + len(extra)} evaluated, {len(failed)} failed, "
              f"{len(crit)} critical failures", ""]
    lines += ["| result | critical | row-level | expectation | column | observed |",
              "|---|---|---|---|---|---|"]
    rows = [(False, f.critical, False, f.type, f.column, f.observed) for f in extra]
    for res in results:
        meta = _meta(res)
        rows.append((bool(res.get("success")), bool(meta.get("critical")), bool(meta.get("row_level")),
                     _type(res), _column(res), observed(res)))
    rows.sort(key=lambda r: r[0])          # failures first, otherwise suite order (stable sort)
    for ok, critical, row_level, type_, column, seen in rows:
        lines.append(f"| {'pass' if ok else '**FAIL**'} | {'yes' if critical else 'no'} | "
                     f"{'yes' if row_level else 'no'} | {type_} | {column or '(table)'} | "
                     f"{seen.replace('|', chr(92) + '|')} |")
    if failed:
        lines += ["", "## Why the failed ones matter", ""]
        lines += [f"- {'**critical**' if f.critical else 'warning'} {f.name}: {f.why}" for f in failed]
    return "\n".join(lines) + "\n"
