"""The data-quality page (reports/validation/index.html): one self-contained file an operator
opens offline. The rendering is checked as HTML, then the page the validate stage writes is
opened in headless Chromium with the network cut off: styled, tables filled, nothing external.
"""
from __future__ import annotations

import http.server
import threading
from pathlib import Path

import browser
import pandas as pd
import pytest

from oanet.quality import page as qp
from oanet.quality.expectations import FailedExpectation
from oanet.synth.aoi_layout import aoi_v1_layout

ROOT = Path(__file__).resolve().parents[2]
EXPECTATIONS = ROOT / "expectations"
LAYOUT = aoi_v1_layout()
BAND = (0x1F, 0x3A, 0x5F)          # the page's header colour (--band in oanet.quality.page.CSS)


def _res(type_, column, success, result, *, critical=True, row_level=False, field=None, why="because"):
    meta = {"critical": critical, "row_level": row_level, "why": why}
    if field:
        meta["field"] = field
    return {"success": success, "result": result,
            "expectation_config": {"type": type_, "kwargs": {"column": column}, "meta": meta}}


def small_result() -> dict:
    """A GX-shaped result by hand: two fields, one warning, one row-level failure."""
    return {"success": True, "suite_name": "ocr.test", "meta": {"great_expectations_version": "1.x"},
            "results": [
                _res("expect_table_row_count_to_be_between", None, True, {"observed_value": 10}),
                _res("expect_column_values_to_not_be_null", "temp", True,
                     {"element_count": 10, "unexpected_count": 1}, field="temp"),
                _res("expect_column_median_to_be_between", "temp__conf", False, {"observed_value": 0.81},
                     critical=False, field="temp", why="confidence <drift>"),
                _res("expect_column_values_to_be_in_set", "station", False,
                     {"element_count": 10, "unexpected_count": 1}, critical=False, row_level=True, field="station"),
                _res("expect_column_values_to_not_be_null", "station", True,
                     {"element_count": 10, "unexpected_count": 3}, field="station"),
            ]}


def small_table() -> pd.DataFrame:
    return pd.DataFrame({
        "temp": [1.0, None, 3.0, None, 5.0, 6.0, 7.0, 8.0, None, 10.0],
        "temp__conf": [0.9] * 10,
        "temp__reason": [None, "low_confidence", None, "unparsed", None, None, None, None, "low_confidence", None],
        "station": ["A"] * 10, "station__conf": [0.99] * 10, "station__reason": [None] * 10,
    })


# ---------------------------------------------------------------------------------------
# The rendering, as HTML (no GX, no browser)
# ---------------------------------------------------------------------------------------

def test_field_missing_counts_reasons_from_the_table():
    fm = qp.field_missing(small_result(), small_table()).set_index("field")
    assert list(fm.index) == ["temp", "station"]                    # suite order
    assert (fm.loc["temp", "missing"], fm.loc["temp", "low_confidence"], fm.loc["temp", "unparsed"]) == (3, 2, 1)
    assert fm.loc["temp", "rate"] == pytest.approx(0.3) and fm.loc["temp", "median_conf"] == pytest.approx(0.9)
    assert (fm.loc["temp", "passed"], fm.loc["temp", "expectations"]) == (1, 2)
    without = qp.field_missing(small_result()).set_index("field")   # no table: from the not-null results
    assert without.loc["station", "missing"] == 3 and pd.isna(without.loc["station", "low_confidence"])


def test_page_is_self_contained_and_escaped():
    q = pd.DataFrame({"image": ["a.png", "b.png"], "reason": ["unreadable", "gx:expect_x:station"],
                      "detail": ["<script>alert(1)</script>", "station='Z'"]})
    extra = [FailedExpectation("clean_row_count_at_least_min_rows", None, "3 clean of 10", True, "too few")]
    html = qp.render_page(small_result(), {"input_rows": 10, "clean_rows": 9}, table=small_table(),
                          quarantine=q, extra=extra, max_missing_rate=0.1, title="Gate <t>")
    assert html.startswith("<!DOCTYPE html>") and "FAILED (critical)" in html
    assert "<script" not in html and "&lt;script&gt;" in html and "Gate &lt;t&gt;" in html
    assert "confidence &lt;drift&gt;" in html
    assert browser.external_refs(html) == [] and "http" not in html and "<link" not in html
    doc = browser.tables(html)
    by_id = {t.id: t for t in doc}
    assert by_id["failed"].rows == 3 and by_id["fields"].rows == 2 and by_id["expectations"].rows == 6
    assert by_id["quarantine-reasons"].rows == 2 and by_id["quarantine-rows"].rows == 2
    assert "<svg" in html and "limit 10%" in html


def test_verdicts():
    warn = FailedExpectation("t", "c", "x", critical=False)
    crit = FailedExpectation("t", "c", "x", critical=True)
    assert (qp.verdict([]), qp.verdict([warn]), qp.verdict([warn, crit])) == \
        ("passed", "passed with warnings", "FAILED (critical)")


def test_external_refs_finds_what_a_browser_would_fetch():
    html = ('<link rel="stylesheet" href="https://cdn.example/b.css"><script src=//cdn.example/j.js></script>'
            '<style>@import "http://x.example/a.css"; div{background:url( "https://x.example/i.png")}</style>'
            '<a href="#fields">local</a><img src="data:image/png;base64,AAAA"><p>see https://example.org</p>')
    assert browser.external_refs(html) == ["//cdn.example/j.js", "http://x.example/a.css",
                                           "https://cdn.example/b.css", "https://x.example/i.png"]


# ---------------------------------------------------------------------------------------
# In headless Chromium, offline
# ---------------------------------------------------------------------------------------

def test_browser_is_offline_and_reads_the_rendered_dom(tmp_path):
    """The helper's own check: a table filled by inline script shows rows in the dumped DOM;
    one filled by a script from the network stays empty, and no request leaves Chromium
    (not even to a server on this machine); an unstyled page fails `assert_styled`."""
    exe = browser.require_chromium()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.end_headers()
            self.wfile.write(b"document.getElementById('remote').innerHTML='<tr><td>x</td></tr>';")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        page = tmp_path / "p.html"
        page.write_text(
            "<!DOCTYPE html><html><body><table id=local><tbody id=lb></tbody></table><table id=remote></table>"
            "<script>document.getElementById('lb').innerHTML='<tr><td>1</td><td>2</td></tr>';</script>"
            f'<script src="http://127.0.0.1:{port}/a.js"></script>'
            f'<script src="http://localhost:{port}/b.js"></script></body></html>')
        dom = browser.dump_dom(page, chromium=exe)
        png = browser.screenshot(page, tmp_path / "p.png", chromium=exe)
    finally:
        server.shutdown()
        server.server_close()
    got = {t.id: (t.rows, t.cells) for t in browser.tables(dom)}
    assert got == {"local": (1, 2), "remote": (0, 0)} and hits == []
    with pytest.raises(AssertionError, match="remote"):
        browser.assert_tables_filled(dom)
    with pytest.raises(AssertionError):
        browser.assert_styled(png)


@pytest.fixture(scope="module")
def validate():
    from flows import validate as v
    return v



def test_validate_writes_a_page_that_renders_offline(tmp_path, validation_stage, validate, make_table):
    browser.require_chromium()
    df = make_table(60, missing_every=20)
    for i, reason in ((3, "low_confidence"), (4, "low_confidence"), (5, "unparsed")):
        df.loc[i, ["gain_db", "gain_db__conf", "gain_db__reason"]] = [None, None, reason]
    df.loc[7, "thickness_mm"] = 9.0                  # out of range: quarantined
    df.loc[11, "station"] = "AOI-99"                 # not a category: quarantined
    cfg, paths = validation_stage(tmp_path, df)
    out = validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    assert out.success and out.n_gx_quarantine == 2
    page = Path(paths.validation_reports) / "index.html"
    assert out.page == page and str(page) in out.summary()
    html = page.read_text()
    assert browser.external_refs(html) == [] and "<script" not in html and "<link" not in html
    assert "passed with warnings" in html

    shown = browser.open_offline(page, tmp_path / "shots", name="validation")
    browser.assert_tables_filled(shown.dom, {
        "failed": 2, "fields": len(LAYOUT.fields), "quarantine-reasons": 3, "quarantine-rows": 5,
        "expectations": out.n_expectations})
    fields = {t.id: t for t in browser.tables(shown.dom)}["fields"]
    assert fields.headers[:3] == ["field", "missing", "missing rate"] and "low_confidence" in fields.headers
    stats = browser.assert_styled(shown.png)
    assert browser.has_colour(shown.png, BAND), f"header colour missing: {stats['major_colours']}"
    assert stats["size"] == browser.WINDOW


def test_failed_batch_still_gets_its_page(tmp_path, validation_stage, validate, make_table):
    cfg, paths = validation_stage(tmp_path, make_table(40).drop(columns=["gain_db__conf"]))
    with pytest.raises(validate.ValidationFailed) as err:
        validate.run(cfg, LAYOUT, paths, expectations_dir=EXPECTATIONS)
    html = (Path(paths.validation_reports) / "index.html").read_text()
    assert err.value.outcome.page is not None and "FAILED (critical)" in html
    failed = {t.id: t for t in browser.tables(html)}["failed"]
    assert failed.rows >= 1 and "expect_column_to_exist" in html and "gain_db__conf" in html
