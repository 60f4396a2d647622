"""The evaluation's figures: sweep curves, a confusion matrix and a precision-recall curve."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from oanet.evaluate.tables import sweep_series

SWEEP_MODELS = ("cnn", "fusion", "gate", "bag", "best_tabular", "late_fusion", "concat")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sweeps(agg: dict, encoder: str, missing_rates, grid_ratios, out: Path) -> Path:
    """Recall and accuracy versus OCR missing rate and GridMask masked area, one line per model."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharey="row")
    for col, (prefix, values, xlabel, xs) in enumerate((
            ("missing", missing_rates, "share of OCR values missing", np.asarray(missing_rates)),
            ("grid", grid_ratios, "share of the object masked (GridMask)", np.asarray(grid_ratios) ** 2))):
        for row, metric in enumerate(("recall", "accuracy")):
            ax = axes[row, col]
            for i, (m, ys) in enumerate(sweep_series(agg, encoder, prefix, values, SWEEP_MODELS, metric).items()):
                ax.plot(xs, 100 * ys, marker="o", color=f"C{i}", lw=2.5 if m == "gate" else 1.2, label=m)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"test {metric} (%)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=2)
    fig.suptitle(f"{encoder}: robustness sweeps (mean over repeats; gate = OANet)", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_confusion_and_pr(clean: dict[str, list], encoder: str, out_cm: Path, out_pr: Path):
    """Confusion matrix of OANet (gate) and precision-recall curves, test rows of every repeat pooled.

    clean: {model: probabilities, "gate_decision": the gate's decisions (each at its own
    regime's threshold), "label": labels}, concatenated over repeats.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_curve

    plt = _plt()
    y = np.asarray(clean["label"])
    cm = confusion_matrix(y, np.asarray(clean["gate_decision"]).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white")
    ax.set_xticks([0, 1], ["pass", "defect"])
    ax.set_yticks([0, 1], ["pass", "defect"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"OANet ({encoder}), test, repeats pooled", fontsize=10)
    fig.tight_layout()
    out_cm.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_cm, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for i, m in enumerate(("gate", "fusion", "cnn", "bag", "late_fusion")):
        prec, rec, _ = precision_recall_curve(y, np.asarray(clean[m]))
        ax.plot(rec, prec, color=f"C{i}", lw=2.5 if m == "gate" else 1.2, label=m)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"precision-recall, {encoder}, test, repeats pooled", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_pr, dpi=110)
    plt.close(fig)
    return out_cm, out_pr
