"""The drift report as one self-contained HTML file: inline CSS, plots as inline PNG, no scripts,
no links out. It opens from a USB stick on a machine with no network, which is where an
operator reads it.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

STYLE = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#1d2733;background:#f5f7fa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #d5dde6}
.banner{padding:12px 16px;border-radius:6px;font-weight:bold;margin:12px 0}
.alert{background:#fde2e1;border-left:6px solid #c62828;color:#8e1b1b}
.ok{background:#e3f4e6;border-left:6px solid #2e7d32;color:#1b5e20}
img{max-width:100%}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0}
th,td{border:1px solid #d5dde6;padding:4px 8px;text-align:right}th{background:#e8edf3}
td.l,th.l{text-align:left}tr.hot td{background:#fff1f0}
.meta{color:#5b6b7c;font-size:13px}.thumbs img{margin:4px;border:1px solid #aab}
.thumbs figure{display:inline-block;margin:4px;text-align:center;font-size:11px}
"""


def png_data_uri(fig_or_array) -> str:
    """A matplotlib figure (closed afterwards) or a (H, W) uint8 array as a data: URI."""
    buf = io.BytesIO()
    if isinstance(fig_or_array, np.ndarray):
        from PIL import Image
        Image.fromarray(fig_or_array).save(buf, format="PNG")
    else:
        import matplotlib.pyplot as plt
        fig_or_array.savefig(buf, format="PNG", dpi=100)
        plt.close(fig_or_array)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def histogram_figure(items: list[dict]):
    """Small multiples: the night's bin shares beside the reference's, for each item given."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, max(1, len(items)))
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for ax, item in zip(axes.flat, items, strict=False):
        x = np.arange(len(item["reference_hist"]))
        ax.bar(x - 0.2, item["reference_hist"], 0.4, label="reference", color="#90a4ae")
        ax.bar(x + 0.2, item["night_hist"], 0.4, label="night", color="#c62828" if item["score"] > 1 else "#1565c0")
        ax.set_title(f"{item['label']}  ({item['score']:.2f}x)", fontsize=9)
        ax.set_xticks(x, item["bin_labels"], rotation=60, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _fmt(v, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.3g}"


def _items_table(items: list[dict]) -> str:
    head = ("<tr><th class=l>#</th><th class=l>modality</th><th class=l>field / statistic</th><th>score</th>"
            "<th>divergence</th><th>threshold</th><th>score of its reads</th><th>missing (night)</th><th>missing (ref)</th>"
            "<th>confidence (night)</th><th>confidence (ref)</th><th class=l>why missing</th></tr>")
    rows = []
    for k, i in enumerate(items, 1):
        reasons = ", ".join(f"{html.escape(r)}: {n}" for r, n in i["reasons"].items()) or "-"
        ocr = i["modality"] == "ocr"
        reads = f"{i.get('missing_score', 0.0):.2f}" if ocr else "-"     # the read-or-missing test (compare.py)
        rows.append(f"<tr class={'hot' if i['score'] > 1 else 'cool'}><td class=l>{k}</td><td class=l>{i['modality']}"
                    f"</td><td class=l>{html.escape(i['name'])}</td><td>{i['score']:.2f}</td>"
                    f"<td>{i['divergence']:.4f}</td><td>{i['threshold']:.4f}</td>"
                    f"<td>{reads}</td>"
                    f"<td>{_fmt(i['missing_rate'], True) if ocr else '-'}</td>"
                    f"<td>{_fmt(i['reference_missing_rate'], True) if ocr else '-'}</td>"
                    f"<td>{_fmt(i['confidence'])}</td><td>{_fmt(i['reference_confidence'])}</td>"
                    f"<td class=l>{reasons}</td></tr>")
    return f"<table id=drifted>{head}{''.join(rows)}</table>"


def _champion_table(champion: dict, reference: dict) -> str:
    if not champion:
        return "<p class=meta>No trained models were given: the gate's and the champion's view is not shown.</p>"
    keys = [("defect_rate", "defect rate (decisions)", True), ("mean_prob", "mean defect probability", False),
            ("image_unusual", "image outside its usual range (gate down-weights)", True),
            ("image_off", "image past the off limit (image members switched off)", True),
            ("ocr_unusual", "OCR outside its usual range (gate down-weights)", True),
            ("ocr_off", "OCR past the off limit (OCR members switched off)", True)]
    rows = "".join(f"<tr><td class=l>{label}</td><td>{_fmt(champion.get(k), pct)}</td>"
                   f"<td>{_fmt(reference.get(k), pct)}</td></tr>" for k, label, pct in keys)
    return f"<table id=champion><tr><th class=l>share of rows</th><th>night</th><th>clean reference</th></tr>{rows}</table>"


def _against(reference: dict) -> str:
    return f", from {html.escape(reference['against'])}" if reference.get("against") else ""


def render(summary: dict, histograms: str | None, thumbnails: list[tuple[str, str]], history: str | None) -> str:
    """The page from the JSON summary (stage.py) and the data: URIs of its figures."""
    banner = (f"<div class='banner {'alert' if summary['alert'] else 'ok'}'>{html.escape(summary['headline'])}</div>")
    parts = [f"<h1>Drift report: {html.escape(summary['night'])}</h1>",
             f"<div class=meta>{summary['rows']} rows, compared with {html.escape(summary['reference']['source'])} "
             f"({summary['reference']['rows']} rows{_against(summary['reference'])}); created {summary['created']}; alert when a score passes 1 "
             f"(threshold: {summary['settings']['factor']} x the {summary['settings']['quantile']} quantile of clean "
             f"nights of {summary['rows']} rows)</div>", banner,
             "<h2>What drifted, most first</h2>", _items_table(summary["items"])]
    if histograms:
        parts += ["<h2>Distributions: the night beside the reference</h2>", f"<img alt=histograms src='{histograms}'>"]
    if thumbnails:
        figs = "".join(f"<figure><img alt='{html.escape(c)}' src='{uri}' width=128><figcaption>{html.escape(c)}"
                       f"</figcaption></figure>" for c, uri in thumbnails)
        parts += [f"<h2>Most unusual objects ({html.escape(summary.get('thumbnail_statistic', ''))})</h2>",
                  f"<div class=thumbs>{figs}</div>"]
    parts += ["<h2>What the gate and the champion did</h2>",
              _champion_table(summary.get("champion", {}), summary["reference"].get("decisions", {}))]
    if history:
        parts += ["<h2>History</h2>", f"<img alt=history src='{history}'>"]
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Drift: {html.escape(summary['night'])}"
            f"</title><style>{STYLE}</style></head><body>{body}</body></html>\n")
