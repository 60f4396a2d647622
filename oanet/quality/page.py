"""The data-quality report an operator opens: one self-contained HTML page, readable offline.

`render_page` turns what the validate stage already has (the validation result as a plain
dict, the OCR table, the quarantine and the row counts) into a single HTML file: inline
CSS, inline SVG charts, no script, no font, image or stylesheet from anywhere else. It
shows the verdict, the row counts, what failed and why, per field the missing rate with
its reasons (`low_confidence`, `unparsed`, `out_of_range`, `not_found`, `unconfirmed`) and the median OCR
confidence, the quarantine by reason with its rows, and every expectation with what it saw.

Why our own page and not the Great Expectations Data Docs: the Data Docs' index loads
jQuery, Bootstrap, bootstrap-table, popper, Font Awesome and Vega from CDNs, so on a line
PC without network it renders unstyled and its tables (filled by bootstrap-table's
script) stay empty. Vendoring those assets would mean rewriting GX's generated pages on
every GX upgrade (their templates name the CDN URLs and versions); this page is one file
we control, and a test opens it in headless Chromium with the network cut off. The Data
Docs are still built beside it, for whoever has network.

Pure: no Great Expectations import (the result is read through the plain-dict helpers of
`oanet.quality.expectations`).
"""
from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from oanet.files import write_text_atomic
from oanet.ingest.parse import REASONS
from oanet.quality.expectations import (
    FailedExpectation,
    _column,
    _meta,
    _type,
    failures,
    observed,
    reason_column,
)

__all__ = ["render_page", "write_page", "field_missing", "quarantine_reasons", "verdict"]

# One colour per missing-value reason (the SVG bars and the legend), then the page palette.
REASON_COLOURS = {"low_confidence": "#e6a23c", "unparsed": "#8e5ccf", "out_of_range": "#d9534f",
                  "not_found": "#5b8def", "unconfirmed": "#2aa198", "other": "#8a8f98"}
VERDICT_COLOURS = {"passed": "#2e7d32", "passed with warnings": "#b26a00", "FAILED (critical)": "#c62828"}
QUARANTINE_ROWS_SHOWN = 200

CSS = """
:root { --ink:#1d2733; --muted:#5c6773; --line:#d8dee6; --band:#1f3a5f; --bg:#f4f6f9; --card:#ffffff;
        --pass:#2e7d32; --warn:#b26a00; --fail:#c62828; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 "DejaVu Sans","Liberation Sans",Arial,Helvetica,sans-serif; }
header { background:var(--band); color:#fff; padding:18px 28px 16px; }
header h1 { margin:0 0 6px; font-size:22px; font-weight:600; }
header .meta { color:#c9d6e6; font-size:12.5px; }
.verdict { display:inline-block; padding:3px 12px; border-radius:12px; font-weight:700; font-size:14px;
           color:#fff; margin-left:10px; vertical-align:middle; }
main { padding:18px 28px 40px; max-width:1400px; }
section { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:14px 18px;
          margin:0 0 18px; }
h2 { font-size:17px; margin:0 0 10px; color:var(--band); }
p.note { color:var(--muted); margin:4px 0 10px; font-size:12.5px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:0 0 18px; }
.card { background:var(--card); border:1px solid var(--line); border-left:5px solid var(--band);
        border-radius:6px; padding:10px 16px; min-width:170px; }
.card .n { font-size:24px; font-weight:700; }
.card .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card.bad { border-left-color:var(--fail); } .card.warn { border-left-color:var(--warn); }
.card.ok { border-left-color:var(--pass); }
table { border-collapse:collapse; width:100%; font-size:13px; }
th { background:#e8edf3; text-align:left; padding:6px 8px; border-bottom:2px solid var(--line);
     position:sticky; top:0; }
td { padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
tr:nth-child(even) td { background:#fafbfc; }
td .nowrap { white-space:nowrap; }
table + table, table + p.note, svg + table, .legend + table { margin-top:14px; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
code { font-family:"DejaVu Sans Mono",monospace; font-size:12px; }
.tag { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:700; color:#fff; }
.tag.pass { background:var(--pass); } .tag.warn { background:var(--warn); } .tag.fail { background:var(--fail); }
.why { color:var(--muted); font-size:12px; }
.bar { background:#e9edf2; border-radius:3px; height:10px; width:140px; position:relative; display:inline-block;
       vertical-align:middle; margin-right:6px; }
.bar span { position:absolute; left:0; top:0; bottom:0; border-radius:3px; background:var(--band); }
.bar i { position:absolute; top:-3px; bottom:-3px; width:2px; background:var(--fail); }
.legend span { display:inline-block; margin-right:14px; font-size:12px; color:var(--muted); }
.legend b { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:4px;
            vertical-align:-1px; }
svg text { font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif; }
footer { color:var(--muted); font-size:12px; padding:0 28px 24px; }
"""


# ---------------------------------------------------------------------------------------
# The numbers
# ---------------------------------------------------------------------------------------

def verdict(failed: Iterable[FailedExpectation]) -> str:
    """`FAILED (critical)`, `passed with warnings` or `passed`, as in summary.md."""
    failed = list(failed)
    if any(f.critical for f in failed):
        return "FAILED (critical)"
    return "passed with warnings" if failed else "passed"


def _result_fields(result: dict) -> list[str]:
    """Field names in suite order, from the per-field suite's `meta.field`."""
    seen: dict[str, None] = {}
    for res in result.get("results", []):
        name = _meta(res).get("field")
        if name:
            seen.setdefault(name, None)
    return list(seen)


def field_missing(result: dict, table: pd.DataFrame | None = None,
                  fields: Sequence[str] | None = None) -> pd.DataFrame:
    """Per field: rows, missing count and rate, count per missing reason, median confidence,
    and how many of the field's expectations passed.

    With the table, the counts come from its columns (`{field}`, `{field}__reason`,
    `{field}__conf`); without it, the missing count comes from the field's critical
    not-null expectation and the reasons are unknown.
    """
    fields = list(fields) if fields is not None else _result_fields(result)
    per_field: dict[str, list[dict]] = {}
    for res in result.get("results", []):
        name = _meta(res).get("field")
        if name:
            per_field.setdefault(name, []).append(res)
    rows = []
    for name in fields:
        exps = per_field.get(name, [])
        row: dict[str, Any] = {"field": name, "rows": math.nan, "missing": math.nan,
                               **{r: math.nan for r in REASONS}, "other": math.nan,
                               "median_conf": math.nan,
                               "passed": sum(bool(r.get("success")) for r in exps), "expectations": len(exps)}
        if table is not None and name in table.columns:
            n = len(table)
            miss = table[name].isna()
            row.update(rows=n, missing=int(miss.sum()))
            rc = reason_column(name)
            if rc in table.columns:
                counts = table.loc[miss, rc].value_counts(dropna=False)
                known = {r: int(counts.get(r, 0)) for r in REASONS}
                row.update(known, other=int(miss.sum()) - sum(known.values()))
            cc = f"{name}__conf"
            if cc in table.columns:
                conf = pd.to_numeric(table[cc], errors="coerce")
                row["median_conf"] = float(conf.median()) if conf.notna().any() else math.nan
        else:
            for res in exps:
                if _type(res) == "expect_column_values_to_not_be_null" and _meta(res).get("critical"):
                    r = res.get("result") or {}
                    if "element_count" in r:
                        row.update(rows=int(r["element_count"]), missing=int(r.get("unexpected_count") or 0))
        row["rate"] = row["missing"] / row["rows"] if row["rows"] else math.nan
        rows.append(row)
    cols = ["field", "rows", "missing", "rate", *REASONS, "other", "median_conf", "passed", "expectations"]
    return pd.DataFrame(rows, columns=cols)


def quarantine_reasons(quarantine: pd.DataFrame | None) -> pd.DataFrame:
    """The quarantine grouped by reason: where it came from (ingest or this gate), count, examples."""
    cols = ["reason", "source", "rows", "examples"]
    if quarantine is None or not len(quarantine):
        return pd.DataFrame(columns=cols)
    rows = []
    for reason, grp in quarantine.groupby(quarantine["reason"].astype(str), sort=False):
        examples = ", ".join(str(x) for x in grp["image"].head(3))
        rows.append({"reason": reason, "source": "this gate" if reason.startswith("gx:") else "ingest",
                     "rows": len(grp), "examples": examples + (", ..." if len(grp) > 3 else "")})
    return pd.DataFrame(rows, columns=cols).sort_values("rows", ascending=False, kind="stable")


# ---------------------------------------------------------------------------------------
# HTML pieces
# ---------------------------------------------------------------------------------------

def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


def _n(v: Any, fmt: str = "{:,}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "&ndash;"
    return fmt.format(int(v) if fmt == "{:,}" else v)


def _table(id_: str, head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = (),
           empty: str = "none") -> str:
    """An HTML table; cells are already-escaped HTML; columns in `num` align right."""
    body = ["<tr>" + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>"
                             for i, c in enumerate(r)) + "</tr>" for r in rows]
    if not body:
        body = [f'<tr><td colspan="{len(head)}" class="why">{_e(empty)}</td></tr>']
    return (f'<table id="{id_}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>")


def _tag(ok: bool, critical: bool) -> str:
    if ok:
        return '<span class="tag pass">pass</span>'
    return '<span class="tag fail">FAIL</span>' if critical else '<span class="tag warn">warn</span>'


def _missing_chart(fm: pd.DataFrame, threshold: float | None) -> str:
    """Horizontal stacked bars: each field's missing rate split by reason, threshold dashed."""
    if fm.empty or fm["rows"].isna().all():
        return ""
    label_w, bar_w, row_h, top = 170, 560, 20, 26
    width, height = label_w + bar_w + 80, top + row_h * len(fm) + 24
    peak = max([float(fm["rate"].max(skipna=True) or 0.0)] + ([threshold] if threshold else []))
    scale = max(0.05, min(1.0, math.ceil(peak * 1.2 * 20) / 20))       # round the axis up to 5 %
    parts = [f'<svg role="img" aria-label="missing rate per field" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             f'<text x="{label_w}" y="14" font-size="11" fill="#5c6773">missing rate (axis 0 to {scale:.0%})</text>']
    for i, r in enumerate(fm.itertuples(index=False)):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 13}" font-size="12" text-anchor="end" '
                     f'fill="#1d2733">{_e(r.field)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 6}" fill="#e9edf2"/>')
        x = float(label_w)
        n = r.rows if r.rows and not math.isnan(r.rows) else 0
        segments = [(k, getattr(r, k)) for k in (*REASONS, "other")]
        if all(isinstance(v, float) and math.isnan(v) for _, v in segments):     # reasons unknown
            segments = [("other", r.missing)]
        for reason, count in segments:
            if not n or count is None or (isinstance(count, float) and math.isnan(count)) or count <= 0:
                continue
            w = bar_w * (count / n) / scale
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                         f'fill="{REASON_COLOURS[reason]}"><title>{_e(reason)}: {int(count)}</title></rect>')
            x += w
        rate = "" if isinstance(r.rate, float) and math.isnan(r.rate) else f"{r.rate:.1%}"
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 13}" font-size="11" fill="#5c6773">{rate}</text>')
    if threshold:
        tx = label_w + bar_w * threshold / scale
        parts.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 18}" stroke="#c62828" '
                     f'stroke-width="2" stroke-dasharray="5,3"/>')
        parts.append(f'<text x="{tx:.1f}" y="{height - 5}" font-size="11" text-anchor="middle" '
                     f'fill="#c62828">limit {threshold:.0%}</text>')
    parts.append("</svg>")
    legend = '<div class="legend">' + "".join(
        f'<span><b style="background:{c}"></b>{_e(k)}</span>' for k, c in REASON_COLOURS.items()) + "</div>"
    return "".join(parts) + legend


def _quarantine_chart(qr: pd.DataFrame) -> str:
    if qr.empty:
        return ""
    label_w, bar_w, row_h, top = 380, 360, 20, 8
    width, height = label_w + bar_w + 60, top + row_h * len(qr) + 6
    peak = max(int(qr["rows"].max()), 1)
    parts = [f'<svg role="img" aria-label="quarantined rows per reason" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">']
    for i, r in enumerate(qr.itertuples(index=False)):
        y = top + i * row_h
        colour = "#d9534f" if r.source == "this gate" else "#8a8f98"
        label = r.reason if len(r.reason) <= 58 else r.reason[:55] + "..."
        parts.append(f'<text x="{label_w - 8}" y="{y + 13}" font-size="12" text-anchor="end" '
                     f'fill="#1d2733">{_e(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * r.rows / peak:.1f}" height="{row_h - 6}" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{label_w + bar_w * r.rows / peak + 6:.1f}" y="{y + 13}" font-size="11" '
                     f'fill="#5c6773">{r.rows}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------

def _cards(counts: dict[str, int], n_expectations: int, n_failed: int, n_critical: int) -> list[str]:
    """The count cards at the top: the stage's counts as given, then the expectations' tally."""
    cards = []
    for key, value in counts.items():
        kind = "bad" if ("quarantin" in key and value) else ""
        cards.append(f'<div class="card {kind}"><div class="n">{_n(value)}</div>'
                     f'<div class="l">{_e(key.replace("_", " "))}</div></div>')
    kind = "bad" if n_critical else ("warn" if n_failed else "ok")
    cards.append(f'<div class="card {kind}"><div class="n">{n_expectations}</div>'
                 f'<div class="l">expectations: {n_failed} failed, {n_critical} critical</div></div>')
    return cards


def _field_row(r, max_missing_rate: float | None) -> tuple[str, ...]:
    """One row of the fields table (`r`: a row of field_missing), its missing rate drawn as a bar."""
    over = max_missing_rate is not None and not math.isnan(r.rate) and r.rate > max_missing_rate
    bar = ""
    if not math.isnan(r.rate):
        limit = (f'<i style="left:{min(max_missing_rate, 1.0) * 100:.1f}%"></i>'
                 if max_missing_rate is not None else "")
        bar = (f'<span class="bar"><span style="width:{min(r.rate, 1.0) * 100:.1f}%;'
               f'background:{"#c62828" if over else "#1f3a5f"}"></span>{limit}</span>')
    rate = "&ndash;" if math.isnan(r.rate) else f"{r.rate:.1%}"
    return (f"<code>{_e(r.field)}</code>", _n(r.missing), f'<span class="nowrap">{bar}{rate}</span>',
            *(_n(getattr(r, k)) for k in (*REASONS, "other")), _n(r.median_conf, "{:.3f}"),
            f"{_tag(r.passed == r.expectations, over)} {r.passed}/{r.expectations}")


def _expectation_rows(results: list[dict], extra: list[FailedExpectation]) -> list[tuple[str, ...]]:
    """Every expectation, failures first (a stable sort: otherwise the suite's order)."""
    rows = [(False, f.critical, False, f.type, f.column, None, f.observed, f.why) for f in extra]
    for res in results:
        meta = _meta(res)
        rows.append((bool(res.get("success")), bool(meta.get("critical", True)), bool(meta.get("row_level")),
                     _type(res), _column(res), meta.get("field"), observed(res), meta.get("why", "")))
    rows.sort(key=lambda r: r[0])
    return [(_tag(ok, critical), "critical" if critical else "warning", "yes" if row_level else "no",
             f"<code>{_e(type_)}</code>", _e(column or "(table)"), _e(field_ or ""), _e(seen),
             f'<span class="why">{_e(why)}</span>')
            for ok, critical, row_level, type_, column, field_, seen, why in rows]


def render_page(result: dict, counts: dict[str, int], *, table: pd.DataFrame | None = None,
                quarantine: pd.DataFrame | None = None, fields: Sequence[str] | None = None,
                extra: Iterable[FailedExpectation] = (), max_missing_rate: float | None = None,
                title: str = "Data-quality gate", generated: str | None = None) -> str:
    """The whole report as one HTML string.

    `result` is a GX validation result's `to_json_dict()`; `counts` the stage's row counts
    (shown as given, e.g. input_rows, clean_rows); `table` the validated OCR table (for the
    per-field missing reasons and confidences); `quarantine` the full quarantine
    (image, reason, detail); `fields` the layout's field names (default: from the suite's
    meta); `extra` checks made outside GX; `max_missing_rate` the per-field limit drawn on
    the chart.
    """
    results = result.get("results", [])
    extra = list(extra)
    failed = failures(result) + extra
    crit = [f for f in failed if f.critical]
    state = verdict(failed)
    generated = generated or _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    gx_meta = result.get("meta") or {}
    run_time = gx_meta.get("validation_time") or ""

    card_html = _cards(counts, len(results) + len(extra), len(failed), len(crit))

    # what failed
    failed_rows = [(_tag(False, f.critical), "critical" if f.critical else "warning", f"<code>{_e(f.type)}</code>",
                    _e(f.column or "(table)"), _e(f.observed), f'<span class="why">{_e(f.why)}</span>')
                   for f in sorted(failed, key=lambda f: not f.critical)]

    fm = field_missing(result, table, fields)
    field_rows = [_field_row(r, max_missing_rate) for r in fm.itertuples(index=False)]

    # quarantine
    qr = quarantine_reasons(quarantine)
    q_reason_rows = [(f"<code>{_e(r.reason)}</code>", _e(r.source), _n(r.rows), _e(r.examples))
                     for r in qr.itertuples(index=False)]
    q_rows = []
    n_q = 0 if quarantine is None else len(quarantine)
    if n_q:
        shown = quarantine.head(QUARANTINE_ROWS_SHOWN)[["image", "reason", "detail"]]
        q_rows = [(_e(r.image), f"<code>{_e(r.reason)}</code>", _e(r.detail)) for r in shown.itertuples(index=False)]

    exp_html = _expectation_rows(results, extra)

    limit_note = (f" The dashed line is the limit (validate.max_missing_rate = {max_missing_rate:.0%}); "
                  "a field over it stops the batch." if max_missing_rate is not None else "")
    colour = VERDICT_COLOURS[state]
    html = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}: {_e(state)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<header><h1>{_e(title)}<span class="verdict" style="background:{colour}">{_e(state)}</span></h1>',
        f'<div class="meta">suite <code>{_e(result.get("suite_name", ""))}</code> &middot; validated '
        f'{_e(run_time)} &middot; page written {_e(generated)} &middot; Great Expectations '
        f'{_e(gx_meta.get("great_expectations_version", ""))}</div></header>',
        "<main>",
        '<div class="cards" id="counts">' + "".join(card_html) + "</div>",
    ]
    if failed_rows:
        html += ['<section id="failed-section"><h2>What failed, and why it matters</h2>',
                 '<p class="note">A critical failure stops the pipeline: no clean table is written. '
                 "A warning is reported and the batch goes on.</p>",
                 _table("failed", ["result", "severity", "expectation", "column", "observed", "why"],
                        failed_rows), "</section>"]
    html += ['<section id="fields-section"><h2>Fields: missing values and OCR confidence</h2>',
             '<p class="note">A read the OCR stage could not trust becomes a missing value with a reason.'
             f"{_e(limit_note)}</p>",
             _missing_chart(fm, max_missing_rate),
             _table("fields", ["field", "missing", "missing rate", *REASONS, "other reason",
                               "median confidence", "expectations passed"], field_rows,
                    num=(1, 3, 4, 5, 6, 7, 8), empty="no per-field expectations in this suite"),
             "</section>",
             f'<section id="quarantine-section"><h2>Quarantine: {n_q:,} rows</h2>',
             '<p class="note">Rows set aside, with the first reason that caught them: <code>gx:&lt;expectation&gt;'
             ":&lt;column&gt;</code> from this gate, others from the ingest stage. The rest of the batch "
             "stays usable.</p>",
             _quarantine_chart(qr),
             _table("quarantine-reasons", ["reason", "from", "rows", "examples"], q_reason_rows, num=(2,),
                    empty="nothing quarantined"),
             (f'<p class="note">The first {QUARANTINE_ROWS_SHOWN} of {n_q:,} rows; all of them are in the '
              "quarantine table.</p>" if n_q > QUARANTINE_ROWS_SHOWN else ""),
             _table("quarantine-rows", ["image", "reason", "detail"], q_rows, empty="nothing quarantined"),
             "</section>",
             f'<section id="expectations-section"><h2>Every expectation ({len(exp_html)})</h2>',
             '<p class="note">Failures first, then in suite order: the hand-written batch suite, then the '
             "per-field suite generated from the layout.</p>",
             _table("expectations", ["result", "severity", "row-level", "expectation", "column", "field",
                                     "observed", "why"], exp_html),
             "</section></main>",
             "<footer>Written by <code>oanet.quality.page</code> from the validation result "
             "(<code>result.json</code> beside this file); one file, no network needed. "
             "<code>summary.md</code> has the same verdict in text.</footer>",
             "</body></html>"]
    return "\n".join(html) + "\n"


def write_page(path: str | Path, result: dict, counts: dict[str, int], **kwargs) -> Path:
    """`render_page(result, counts, **kwargs)` written to `path` (UTF-8); returns the path."""
    return write_text_atomic(path, render_page(result, counts, **kwargs))
