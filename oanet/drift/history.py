"""The drift of every night in one file and one plot, so that a slow drift shows.

history.jsonl (beside the nights' folders) keeps one line per night: its name, time,
rows, alert and each modality's largest score. A night reported again replaces its line.
"""
from __future__ import annotations

import json
from pathlib import Path

from oanet.files import write_text_atomic

HISTORY = "history.jsonl"


def history_entry(summary: dict) -> dict:
    tops = {}
    for item in summary["items"]:
        tops[item["modality"]] = max(tops.get(item["modality"], 0.0), item["score"])
    top = summary["items"][0]["label"] if summary["items"] else ""
    return {"night": summary["night"], "created": summary["created"], "rows": summary["rows"],
            "alert": summary["alert"], "top": top, **{f"{m}_score": s for m, s in sorted(tops.items())}}


def read_history(out_dir: str | Path) -> list[dict]:
    path = Path(out_dir) / HISTORY
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue                      # a line cut by a crash costs that line, not the history
    return entries


def record(out_dir: str | Path, summary: dict) -> list[dict]:
    """Add (or replace) this night's line; returns the history, oldest first."""
    entry = history_entry(summary)
    entries = [e for e in read_history(out_dir) if e.get("night") != entry["night"]] + [entry]
    entries.sort(key=lambda e: e.get("created", ""))
    write_text_atomic(Path(out_dir) / HISTORY, "".join(json.dumps(e) + "\n" for e in entries))
    return entries


MAX_NIGHT_LABELS = 24      # beyond this many nights, every k-th night is named on the x axis


def plot_history(entries: list[dict], path: str | Path) -> Path:
    """Each modality's largest score per night against the alert line at 1; nights that alerted are shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FormatStrFormatter

    fig, ax = plt.subplots(figsize=(8, 3))
    x = list(range(len(entries)))
    for n, k in enumerate(k for k in x if entries[k].get("alert")):
        ax.axvspan(k - 0.5, k + 0.5, color="tab:red", alpha=0.12, lw=0, label=None if n else "night alerted")
    for mod, colour in (("ocr", "tab:blue"), ("image", "tab:orange")):
        ax.plot(x, [e.get(f"{mod}_score", float("nan")) for e in entries], "o-", color=colour, ms=4,
                label=f"{mod}: largest score")
    ax.axhline(1.0, color="tab:red", ls="--", lw=1, label="alert threshold (1)")
    step = max(1, -(-len(x) // MAX_NIGHT_LABELS))
    ax.set_xticks(x[::step], [entries[k]["night"] for k in x[::step]], rotation=30, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(x) - 0.5)
    # symlog: linear below 1, where clean nights sit, logarithmic above, where incidents reach 10x and more
    ax.set_yscale("symlog", linthresh=1.0)
    top = max([1.0] + [e.get(f"{m}_score", 0.0) or 0.0 for e in entries for m in ("ocr", "image")])
    ax.yaxis.set_major_locator(FixedLocator([t for t in (0, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
                                             if t <= 2 * top]))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_ylim(0, 2 * top)
    ax.set_ylabel("drift score (x threshold)")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1), ncol=4, frameon=False)   # above: no point hidden
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
