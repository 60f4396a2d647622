"""Pure aggregation and goal checks of the evaluation, on hand-made repeat results."""
from __future__ import annotations

import pytest

from oanet.evaluate.tables import BASELINES, ablation_md, aggregate, goals

MODELS = ("cnn", "align", "fusion", "gate", "concat", "bag", "best_tabular", "late_fusion")


def metrics(recall: float, accuracy: float, auc: float = 0.8) -> dict:
    return {"accuracy": accuracy, "recall": recall, "precision": 0.5, "f1": 0.5, "roc_auc": auc, "pr_auc": auc}


def repeat(gate_recall: float, gate_accuracy: float = 0.91, both_recall: float = 0.90, gate_auc: float = 0.96) -> dict:
    clean = {m: metrics(0.6, 0.85) for m in MODELS}
    clean["gate"] = metrics(gate_recall, gate_accuracy, gate_auc)
    both = {**clean, "gate": metrics(both_recall, 0.86, 0.85)}
    return {"encoders": {"vgg16": {"clean": clean, "both": both}}}


def test_aggregate_gives_mean_and_std_over_repeats():
    agg = aggregate([repeat(0.90), repeat(0.94)])
    assert agg["vgg16"]["clean"]["gate"]["recall"] == {"mean": pytest.approx(0.92), "std": pytest.approx(0.02),
                                                       "values": [pytest.approx(0.90), pytest.approx(0.94)]}


def test_goals_hold_only_when_the_numbers_do():
    good = goals(aggregate([repeat(0.94)]), "vgg16")["vgg16"]
    assert good["recall_93_accuracy_90"] and good["recall_10_over_cnn"] and good["beats_every_baseline"]
    assert good["robust_within_5"] and good["auc_above_late_fusion_anchor"] and good["losses"] == []
    assert good["margins"]["bag"]["recall"] == pytest.approx(0.34)
    weak = goals(aggregate([repeat(0.63, both_recall=0.3)]), "vgg16")["vgg16"]
    assert not weak["recall_93_accuracy_90"] and not weak["recall_10_over_cnn"]
    assert not weak["beats_every_baseline"] and not weak["robust_within_5"]
    inaccurate = goals(aggregate([repeat(0.95, gate_accuracy=0.80)]), "vgg16")["vgg16"]
    assert not inaccurate["beats_every_baseline"]          # more recall, but 5 points less accurate
    assert any(loss.startswith("late_fusion: recall +35.0 (1 of 1 repeats at or above), accuracy -5.0 (0 of 1")
               for loss in inaccurate["losses"])
    fragile = goals(aggregate([repeat(0.94, both_recall=0.5)]), "vgg16")["vgg16"]
    assert any(loss.startswith("under 60% OCR missing + GridMask, bag: recall -10.0") for loss in fragile["losses"])
    ranked_lower = goals(aggregate([repeat(0.94, gate_auc=0.7)]), "vgg16")["vgg16"]
    assert not ranked_lower["auc_at_or_above_every_baseline"] and not ranked_lower["beats_every_baseline"]


def test_ablation_markdown_lists_every_row_and_baseline():
    md = ablation_md(aggregate([repeat(0.92)]), {"name": "quick", "image_size": 32, "epochs": 1, "device": "cpu"}, 1)
    for _, label in BASELINES:
        assert label in md
    assert "| vgg16 | + alignment + refinement + gate | 91.0 ± 0.0 | 92.0 ± 0.0 | 50.0 ± 0.0 | 0.960 ± 0.000 |" in md
    assert "Where OANet (with the gate) does not beat a baseline" in md
    assert "91.05" in md                                    # the paper's number beside ours


def test_margins_count_the_repeats_oanet_was_at_or_above_a_baseline_in():
    """A mean margin can come from one lucky split: each margin carries its repeat-by-repeat count."""
    lucky = goals(aggregate([repeat(0.50), repeat(0.65), repeat(0.55)]), "vgg16")["vgg16"]     # baselines 0.60
    assert lucky["margins"]["late_fusion"]["recall"] == pytest.approx(-1 / 30)
    assert lucky["margins"]["late_fusion"]["repeats_ahead"] == {"recall": [1, 3], "accuracy": [3, 3],
                                                               "roc_auc": [3, 3]}
    assert "late_fusion: recall -3.3 (1 of 3 repeats at or above), accuracy +6.0 (3 of 3 repeats at or above)" \
        in "\n".join(lucky["losses"])


def test_an_undefined_metric_is_none_per_repeat_and_left_out_of_the_count():
    """ROC AUC is undefined on a one-class split: JSON gets null, not NaN, and the pair is not counted."""
    from oanet.metrics import mean_std, repeats_ahead

    ours = mean_std([{"roc_auc": float("nan")}, {"roc_auc": 0.9}])["roc_auc"]
    theirs = mean_std([{"roc_auc": 0.7}, {"roc_auc": 0.95}])["roc_auc"]
    assert ours["values"] == [None, 0.9] and ours["mean"] == pytest.approx(0.9)
    assert repeats_ahead(ours, theirs) == (0, 1)


def test_models_at_chance_are_named_and_why():
    from oanet.evaluate.tables import at_chance

    assert at_chance(aggregate([repeat(0.94)])) == ["- none (every model's mean test ROC AUC is above 0.55)"]
    image_only = repeat(0.94)
    for enc in image_only["encoders"].values():
        for cond in enc.values():
            cond["bag"], cond["best_tabular"] = metrics(0.2, 0.5, 0.41), metrics(0.3, 0.5, 0.52)
    assert at_chance(aggregate([image_only])) == [
        "- vgg16: tabular bag (mean) (0.410), best single tabular model (by val AUC) (0.520): the panel's values "
        "carry nothing for this label"]
    noise = repeat(0.35, gate_auc=0.5)
    for m in MODELS:
        noise["encoders"]["vgg16"]["clean"][m]["roc_auc"] = 0.52
    assert at_chance(aggregate([noise]))[0].endswith(": every model, so nothing here predicts the label")
    assert "## Models no better than chance" in ablation_md(aggregate([noise]), {"name": "quick", "image_size": 64,
                                                                                "epochs": 1, "device": "cpu"}, 1)
