"""Aggregate repeats into the paper's tables and the baseline comparison; render them as Markdown.

Everything here is a pure function of the per-repeat results of protocol.run_repeat.
Numbers are percentages, mean +- standard deviation over repeats.
"""
from __future__ import annotations

import numpy as np

from oanet.metrics import mean_std, repeats_ahead

TABLE1_ROWS = (("cnn", "image-only CNN"), ("align", "+ alignment"), ("fusion", "+ alignment + refinement"),
               ("gate", "+ alignment + refinement + gate"))
TABLE2_CONDITIONS = (("clean", "no perturbation"), ("ocr_loss", "60% OCR values missing"),
                     ("gridmask", "GridMask on the object"), ("both", "both"))
BASELINES = (("best_tabular", "best single tabular model (by val AUC)"), ("bag", "tabular bag (mean)"),
             ("late_fusion", "late fusion (noisy-OR of CNN and bag)"), ("concat", "early concatenation fusion"),
             ("fusion", "OANet without the gate"))
# The paper's reported numbers where its text gives them (recall, %); other cells were not transcribed.
PAPER = {("vgg16", "cnn", "clean"): 76.42, ("vgg16", "gate", "clean"): 91.05, ("vgg16", "gate", "both"): 84.55}


def aggregate(repeats: list[dict]) -> dict:
    """{encoder: {condition: {model: {metric: {mean, std}}}}} over repeats."""
    out: dict = {}
    for enc in repeats[0]["encoders"]:
        out[enc] = {}
        for cond in repeats[0]["encoders"][enc]:
            models = repeats[0]["encoders"][enc][cond]
            out[enc][cond] = {m: mean_std([rep["encoders"][enc][cond][m] for rep in repeats]) for m in models}
    return out


def cell(stats: dict, metric: str) -> str:
    v = stats[metric]
    return f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}"


def auc_cell(stats: dict, metric: str) -> str:
    if metric not in stats:
        return "n/a"
    v = stats[metric]
    return f"{v['mean']:.3f} ± {v['std']:.3f}"


def _paper(enc: str, model: str, cond: str) -> str:
    v = PAPER.get((enc, model, cond))
    return f"{v:.2f}" if v is not None else "n/a"


LATE_FUSION_ANCHOR_AUC = 0.956   # a 100-line late fusion on MT-AOI (../shared/DESIGN.md): OANet must beat it
AUC_BASELINES = ("cnn", "concat", "fusion", "bag", "best_tabular", "late_fusion")


def _m(stats: dict, metric: str) -> float:
    return stats[metric]["mean"] if metric in stats else float("nan")


METRICS_COMPARED = ("recall", "accuracy", "roc_auc")


def _margins(ours: dict, baselines: dict) -> dict:
    """{baseline: {metric: mean margin, "repeats_ahead": {metric: [repeats at or above, repeats]}}}."""
    return {b: {**{k: _m(ours, k) - _m(baselines[b], k) for k in METRICS_COMPARED},
                "repeats_ahead": {k: list(repeats_ahead(ours.get(k, {}), baselines[b].get(k, {})))
                                  for k in METRICS_COMPARED}}
            for b, _ in BASELINES if b in baselines}


LOSS_WORDS = (("recall", "recall {:+.1f}", 100), ("accuracy", "accuracy {:+.1f}", 100), ("roc_auc", "ROC AUC {:+.3f}", 1))


def _losses(margins: dict, where: str) -> list[str]:
    """In words, every baseline OANet trails on recall, accuracy or ROC AUC, each margin with the
    repeats OANet was at or above the baseline in (a mean can hide one lucky split)."""
    def said(m: dict) -> str:
        parts = []
        for key, words, scale in LOSS_WORDS:
            ahead, n = m.get("repeats_ahead", {}).get(key, (0, 0))
            parts.append(words.format(scale * m[key]) + (f" ({ahead} of {n} repeats at or above)" if n else ""))
        return ", ".join(parts)
    return [f"{where}{b}: {said(m)}" for b, m in margins.items()
            if m["recall"] < 0 or m["accuracy"] < 0 or m["roc_auc"] < 0]


def goals(agg: dict, robustness_encoder: str) -> dict:
    """The issue's goals for OANet (the gate), each with the measured numbers, the margins and whether it holds.

    `losses` says in words where OANet does not beat a baseline.
    """
    out = {}
    for enc, conds in agg.items():
        clean = conds["clean"]
        g = clean["gate"]
        rec, acc, auc = _m(g, "recall"), _m(g, "accuracy"), _m(g, "roc_auc")
        margins = _margins(g, clean)
        beats_tabular = {b: bool(margins[b]["recall"] >= 0.05 and margins[b]["accuracy"] >= -0.01)
                         for b in ("bag", "best_tabular") if b in margins}
        at_or_above = {b: bool(margins[b]["recall"] >= 0 and margins[b]["accuracy"] >= 0)
                       for b in ("late_fusion", "concat") if b in margins}
        auc_above = {b: bool(auc >= _m(clean[b], "roc_auc")) for b in AUC_BASELINES if b in clean}
        both = conds.get("both", {}).get("gate")
        losses = _losses(margins, "")
        if both is not None:
            both_margins = _margins(both, conds["both"])
            losses += _losses(both_margins, "under 60% OCR missing + GridMask, ")
        out[enc] = {"recall": rec, "accuracy": acc, "roc_auc": auc,
                    "image_only_auc_object_label": _m(clean.get("cnn_object", {}), "roc_auc"),
                    "recall_93_accuracy_90": bool(rec >= 0.93 and acc >= 0.90),
                    "auc_above_late_fusion_anchor": bool(auc > LATE_FUSION_ANCHOR_AUC),
                    "recall_10_over_cnn": bool(rec >= _m(clean["cnn"], "recall") + 0.10),
                    "beats_tabular_by_5": beats_tabular, "at_or_above_fusion_baselines": at_or_above,
                    "auc_at_or_above_every_baseline": bool(all(auc_above.values())),
                    "beats_every_baseline": bool(all(beats_tabular.values()) and all(at_or_above.values())
                                                 and all(auc_above.values())),
                    "robust_within_5": bool(both is not None and _m(both, "recall") >= rec - 0.05
                                            and _m(both, "accuracy") >= 0.80),
                    "margins": margins, "losses": losses}
    return out


def ablation_md(agg: dict, profile: dict, n_repeats: int) -> str:
    lines = ["# Ablation (paper Table 1)", "",
             f"Test split, mean ± std over {n_repeats} repeats (a new split and seeds each); profile "
             f"`{profile['name']}`: {profile['image_size']} px, {profile['epochs']} epochs, device {profile['device']}. "
             "Paper column: recall the paper reports on its own data (MT-AOI, magnetic tiles) where its text "
             "gives it; a reference for that data set only.", "",
             "Every model's decision threshold comes from one rule on the same clean val rows "
             "(oanet.metrics.choose_threshold); ROC AUC and PR AUC do not depend on it.", "",
             "| encoder | model | accuracy | recall | F1 | ROC AUC | PR AUC | paper recall (MT-AOI) |",
             "|---|---|---|---|---|---|---|---|"]
    for enc, conds in agg.items():
        for key, label in TABLE1_ROWS:
            s = conds["clean"][key]
            lines.append(f"| {enc} | {label} | {cell(s, 'accuracy')} | {cell(s, 'recall')} | {cell(s, 'f1')} "
                         f"| {auc_cell(s, 'roc_auc')} | {auc_cell(s, 'pr_auc')} | {_paper(enc, key, 'clean')} |")
        if "cnn_object" in conds["clean"]:
            s = conds["clean"]["cnn_object"]
            lines.append(f"| {enc} | image-only CNN, against the object-defect label | {cell(s, 'accuracy')} "
                         f"| {cell(s, 'recall')} | {cell(s, 'f1')} | {auc_cell(s, 'roc_auc')} "
                         f"| {auc_cell(s, 'pr_auc')} | n/a |")
    lines += ["", "## Baselines the paper lacks (same splits, same threshold rule)", "",
              "| encoder | model | accuracy | recall | F1 | ROC AUC | PR AUC | accuracy, 60% missing + GridMask "
              "| recall, same |", "|---|---|---|---|---|---|---|---|---|"]
    for enc, conds in agg.items():
        for key, label in (*BASELINES, ("gate", "OANet (full, with the gate)")):
            s = conds["clean"][key]
            lines.append(f"| {enc} | {label} | {cell(s, 'accuracy')} | {cell(s, 'recall')} | {cell(s, 'f1')} "
                         f"| {auc_cell(s, 'roc_auc')} | {auc_cell(s, 'pr_auc')} "
                         f"| {cell(conds['both'][key], 'accuracy')} | {cell(conds['both'][key], 'recall')} |")
    lines += ["", "## Where OANet (with the gate) does not beat a baseline", ""]
    for enc, g in goals(agg, "").items():
        lines += [f"- {enc}, {loss}" for loss in g["losses"]] or [f"- {enc}: nowhere (recall, accuracy and ROC AUC "
                                                                  "at or above every baseline)"]
    lines += ["", "## Models no better than chance", "", *at_chance(agg)]
    return "\n".join(lines) + "\n"


CHANCE_AUC = 0.55     # a mean test ROC AUC at or under this: the model ranks defects no better than a coin


def at_chance(agg: dict) -> list[str]:
    """Markdown bullets: per encoder, the models whose mean clean test ROC AUC is at chance. Where the tabular
    models are, the panel's values carry nothing for this label and fusion can add nothing; where every model
    is, the label is not learnable from these units (or is noise), whatever the accuracy column says."""
    names = dict((*TABLE1_ROWS, *BASELINES))
    out = []
    for enc, conds in agg.items():
        weak = {m: _m(s, "roc_auc") for m, s in conds["clean"].items() if _m(s, "roc_auc") <= CHANCE_AUC}
        if not weak:
            continue
        listed = ", ".join(f"{names.get(m, m)} ({auc:.3f})" for m, auc in weak.items())
        every = len(weak) == len(conds["clean"])
        tabular = {"bag", "best_tabular"} <= set(weak)
        why = (": every model, so nothing here predicts the label" if every else
               ": the panel's values carry nothing for this label" if tabular else "")
        out.append(f"- {enc}: {listed}{why}")
    return out or [f"- none (every model's mean test ROC AUC is above {CHANCE_AUC})"]


def robustness_md(agg: dict, encoder: str, n_repeats: int, sweeps: dict) -> str:
    conds = agg[encoder]
    lines = ["# Robustness (paper Table 2)", "",
             f"{encoder}, test split, mean ± std over {n_repeats} repeats; OCR loss drops each OCR value with "
             "probability 0.6; GridMask blacks out 25% of the object region.", "",
             "| condition | model | accuracy | recall | F1 | paper recall (MT-AOI) |", "|---|---|---|---|---|---|"]
    for cond, label in TABLE2_CONDITIONS:
        for key, name in (("cnn", "image-only CNN"), ("fusion", "OANet without the gate"), ("gate", "OANet")):
            s = conds[cond][key]
            lines.append(f"| {label} | {name} | {cell(s, 'accuracy')} | {cell(s, 'recall')} | {cell(s, 'f1')} "
                         f"| {_paper(encoder, key, cond)} |")
    for title, prefix, values in (("OCR missing rate", "missing", sweeps["missing_rates"]),
                                  ("GridMask ratio (area masked = ratio²)", "grid", sweeps["grid_ratios"])):
        models = ("cnn", "fusion", "gate", "bag", "best_tabular", "late_fusion", "concat")
        lines += ["", f"## Recall versus {title}", "", "| " + title + " | " + " | ".join(models) + " |",
                  "|---|" + "---|" * len(models)]
        for v in values:
            c = conds[f"{prefix}={v:g}"]
            lines.append(f"| {v:g} | " + " | ".join(f"{100 * c[m]['recall']['mean']:.1f}" for m in models) + " |")
    return "\n".join(lines) + "\n"


def sweep_series(agg: dict, encoder: str, prefix: str, values, models, metric: str) -> dict[str, np.ndarray]:
    """{model: (len(values),) mean metric} along one sweep."""
    return {m: np.array([agg[encoder][f"{prefix}={v:g}"][m][metric]["mean"] for v in values]) for m in models}
