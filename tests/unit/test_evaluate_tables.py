"""Pure aggregation and goal checks of the evaluation, on hand-made repeat results."""
from __future__ import annotations

import pytest

from oanet.evaluate.tables import BASELINES, ablation_md, aggregate, goals

MODELS = ("cnn", "align", "fusion", "gate", "concat", "bag", "best_tabular", "late_fusion")


def metrics(recall: float, accuracy: float) -> dict:
    return {"accuracy": accuracy, "recall": recall, "precision": 0.5, "f1": 0.5, "roc_auc": 0.5}


def repeat(gate_recall: float, gate_accuracy: float = 0.9, both_recall: float = 0.88) -> dict:
    clean = {m: metrics(0.6, 0.85) for m in MODELS}
    clean["gate"] = metrics(gate_recall, gate_accuracy)
    both = {**clean, "gate": metrics(both_recall, 0.8)}
    return {"encoders": {"vgg16": {"clean": clean, "both": both}}}


def test_aggregate_gives_mean_and_std_over_repeats():
    agg = aggregate([repeat(0.90), repeat(0.94)])
    assert agg["vgg16"]["clean"]["gate"]["recall"] == {"mean": pytest.approx(0.92), "std": pytest.approx(0.02)}


def test_goals_hold_only_when_the_numbers_do():
    good = goals(aggregate([repeat(0.92)]), "vgg16")["vgg16"]
    assert good["recall_90_accuracy_88"] and good["recall_10_over_cnn"] and good["beats_every_baseline"]
    assert good["robust_within_5"]
    weak = goals(aggregate([repeat(0.63, both_recall=0.3)]), "vgg16")["vgg16"]
    assert not weak["recall_90_accuracy_88"] and not weak["recall_10_over_cnn"]
    assert not weak["beats_every_baseline"] and not weak["robust_within_5"]
    inaccurate = goals(aggregate([repeat(0.95, gate_accuracy=0.80)]), "vgg16")["vgg16"]
    assert not inaccurate["beats_every_baseline"]          # more recall, but 5 points less accurate


def test_ablation_markdown_lists_every_row_and_baseline():
    md = ablation_md(aggregate([repeat(0.92)]), {"name": "quick", "image_size": 32, "epochs": 1, "device": "cpu"}, 1)
    for _, label in BASELINES:
        assert label in md
    assert "| vgg16 | + alignment + refinement + gate | 90.0 ± 0.0 | 92.0 ± 0.0 |" in md
    assert "91.05" in md                                    # the paper's number beside ours
