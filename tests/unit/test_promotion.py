"""The champion/challenger rule: which numbers promote a model, and the reason it gives."""
from __future__ import annotations

import json

import pytest

from oanet.promotion import Candidate, PromotionRule, decide

RULE = PromotionRule()   # accuracy may drop 0.01, robust recall 0.02, recall may not drop
CHAMPION = Candidate("1", True, recall=0.905, accuracy=0.880, robust_recall=0.850)


def challenger(**changes) -> Candidate:
    values = {"version": "2", "complete": True, "recall": 0.905, "accuracy": 0.880, "robust_recall": 0.850}
    return Candidate(**{**values, **changes})


def test_better_challenger_is_promoted():
    d = decide(challenger(recall=0.912, accuracy=0.885), CHAMPION, RULE)
    assert d.promote
    assert d.reason.startswith("promoted:")
    assert "recall 0.912 >= champion 0.905" in d.reason


def test_equal_metrics_pass():
    d = decide(challenger(), CHAMPION, RULE)
    assert d.promote, d.reason


def test_drops_just_inside_the_margins_pass():
    # 0.880 - 0.01 and 0.850 - 0.02 exactly: floating-point rounding must not refuse these.
    d = decide(challenger(accuracy=0.870, robust_recall=0.830), CHAMPION, RULE)
    assert d.promote, d.reason


def test_lower_recall_is_refused():
    d = decide(challenger(recall=0.900), CHAMPION, RULE)
    assert not d.promote
    assert d.reason == "refused: recall 0.900 < champion 0.905 + 0"


def test_accuracy_drop_over_one_point_is_refused():
    d = decide(challenger(recall=0.950, accuracy=0.865), CHAMPION, RULE)
    assert not d.promote
    assert "accuracy 0.865 < champion 0.880 - 0.01" in d.reason
    assert "recall" not in d.reason.replace("robust recall", "")   # only failing conditions listed


def test_robust_recall_drop_over_two_points_is_refused():
    d = decide(challenger(robust_recall=0.825), CHAMPION, RULE)
    assert not d.promote
    assert "robust recall 0.825 < champion 0.850 - 0.02" in d.reason


def test_every_failed_condition_is_named():
    d = decide(challenger(recall=0.8, accuracy=0.8, robust_recall=0.8), CHAMPION, RULE)
    assert not d.promote
    assert d.reason.count("<") == 3


def test_min_recall_gain_is_required_when_set():
    d = decide(challenger(recall=0.910), CHAMPION, PromotionRule(min_recall_gain=0.01))
    assert not d.promote
    assert "recall 0.910 < champion 0.905 + 0.01" in d.reason


def test_first_valid_model_is_promoted_without_a_champion():
    d = decide(challenger(), None, RULE)
    assert d.promote
    assert "first valid model" in d.reason
    assert d.compared["champion"] is None


@pytest.mark.parametrize("champion", [CHAMPION, None])
def test_a_challenger_tested_on_drifted_rows_is_never_promoted(champion):
    better = challenger(recall=0.99, accuracy=0.99, robust_recall=0.99)
    assert decide(better, champion, RULE).promote
    d = decide(better, champion, RULE, drifted="DRIFT ALERT over 60 rows: ocr:temp (3.1x)")
    assert not d.promote and "drifted" in d.reason and "ocr:temp" in d.reason


def test_failed_run_is_refused_even_without_a_champion():
    d = decide(challenger(complete=False), None, RULE)
    assert not d.promote
    assert "incomplete" in d.reason


@pytest.mark.parametrize("metric", ["recall", "accuracy", "robust_recall"])
@pytest.mark.parametrize("bad", [None, float("nan")])
def test_missing_or_nan_metric_is_refused(metric, bad):
    d = decide(challenger(**{metric: bad}), CHAMPION, RULE)
    assert not d.promote
    assert d.reason.startswith("refused:") and metric in d.reason and "missing or NaN" in d.reason


def test_champion_without_numbers_does_not_block():
    d = decide(challenger(), Candidate("1", True, None, None, None), RULE)
    assert d.promote
    assert "no complete metrics" in d.reason


def test_compared_holds_the_numbers_as_strict_json():
    d = decide(challenger(accuracy=float("nan")), CHAMPION, RULE)
    assert d.compared["challenger"]["accuracy"] is None
    assert d.compared["champion"]["recall"] == 0.905
    assert d.compared["rule"] == {"max_accuracy_drop": 0.01, "max_robust_recall_drop": 0.02,
                                  "min_recall_gain": 0.0, "max_robust_accuracy_drop": 0.05}
    json.dumps(d.compared, allow_nan=False)


def test_flagging_everything_under_damage_is_no_robustness():
    """Robust recall 1.0 bought by calling every damaged unit defective: robust accuracy refuses it."""
    champion = Candidate("1", True, recall=0.905, accuracy=0.880, robust_recall=0.850, robust_accuracy=0.800)
    d = decide(challenger(robust_recall=1.0, robust_accuracy=0.300), champion, RULE)
    assert not d.promote and "robust accuracy 0.300 < champion 0.800 - 0.05" in d.reason
    assert decide(challenger(robust_recall=1.0, robust_accuracy=0.760), champion, RULE).promote


def test_a_champion_registered_without_robust_accuracy_is_judged_on_the_rest():
    d = decide(challenger(robust_accuracy=0.100), CHAMPION, RULE)       # CHAMPION predates the metric
    assert d.promote and "robust accuracy" not in d.reason


# ---------------------------------------------------------------- re-scoring on shared rows


def shared_table(images: list[str], labels: list[int]):
    import pandas as pd

    return pd.DataFrame({"image": images, "label": labels, "split": "test"})


def rows_of(n: int, start: int = 0):
    """n test rows images/u<start>.png ..., labels alternating 0, 1."""
    return shared_table([f"images/u{i}.png" for i in range(start, start + n)], [i % 2 for i in range(start, start + n)])


class Scorer:
    """A fake `score(pipeline, rows)`: remembers what it scored; a pipeline is its recall."""

    def __init__(self):
        self.calls = []

    def __call__(self, pipe, rows):
        self.calls.append((pipe, list(rows["image"])))
        return {"recall": pipe, "accuracy": 0.9, "robust_recall": 0.8, "robust_accuracy": 0.7}


def test_rows_the_champion_saw_are_left_out_after_the_split_moves():
    from oanet.promotion import head_to_head

    # The dataset grew and the split moved: 12 of this run's 30 test rows were the champion's train/val rows.
    test = rows_of(30)
    seen = {f"images/u{i}.png" for i in range(12)} | {"images/old.png"}
    score = Scorer()
    h = head_to_head(0.95, 0.90, test, seen, score)
    assert h.rows == 18 and "18 test rows neither model was fitted on" in h.note
    assert [pipe for pipe, _ in score.calls] == [0.95, 0.90]                 # challenger first, then champion
    shared = [f"images/u{i}.png" for i in range(12, 30)]
    assert all(images == shared for _, images in score.calls)                # both on the same unseen rows
    assert h.challenger["recall"] == 0.95 and h.champion["recall"] == 0.90


def test_without_the_champions_split_every_test_row_counts():
    from oanet.promotion import head_to_head

    h = head_to_head("new", "old", rows_of(12), None, Scorer())
    assert h.rows == 12 and "all 12 test rows" in h.note and "not logged" in h.note


@pytest.mark.parametrize(("seen", "scored"), [(range(3), False), (range(2), True)])
def test_under_ten_shared_rows_falls_back_to_the_registered_metrics(seen, scored):
    from oanet.promotion import MIN_SHARED_ROWS, head_to_head

    assert MIN_SHARED_ROWS == 10
    score = Scorer()
    h = head_to_head("new", "old", rows_of(12), {f"images/u{i}.png" for i in seen}, score)
    assert h.rows == 12 - len(seen)
    if scored:                                                               # exactly ten left: compared there
        assert h.challenger is not None and len(score.calls) == 2
    else:                                                                    # nine left: nothing re-scored
        assert h.challenger is None and h.champion is None and score.calls == []
        assert h.note.startswith("only 9 test rows unseen by the champion") and "registered with" in h.note


def test_shared_rows_of_one_class_fall_back_too():
    from oanet.promotion import head_to_head

    score = Scorer()
    rows = shared_table([f"images/u{i}.png" for i in range(40)], [1] * 20 + [0] * 20)
    h = head_to_head("new", "old", rows, {f"images/u{i}.png" for i in range(20, 40)}, score)
    assert h.challenger is None and score.calls == [] and "classes [1]" in h.note


def test_candidate_metrics_are_the_gates_clean_and_damaged_numbers():
    from oanet.promotion import METRICS, OPTIONAL, candidate_metrics

    scenarios = {"clean": {"gate": {"recall": 0.9, "accuracy": 0.85}, "cnn": {"recall": 0.1, "accuracy": 0.1}},
                 "both": {"gate": {"recall": 0.7, "accuracy": 0.6}}}
    m = candidate_metrics({"scenarios": scenarios})
    assert m == {"recall": 0.9, "accuracy": 0.85, "robust_recall": 0.7, "robust_accuracy": 0.6}
    assert set(m) == set(METRICS + OPTIONAL)


def test_the_rescored_numbers_decide_the_promotion():
    """A challenger that loses on its registered numbers wins on the rows neither model saw."""
    from oanet.promotion import head_to_head

    h = head_to_head(0.95, 0.90, rows_of(30), {f"images/u{i}.png" for i in range(5)}, Scorer())
    rescored = {role: Candidate(v, True, m["recall"], m["accuracy"], m["robust_recall"], m["robust_accuracy"])
                for role, v, m in (("challenger", "2", h.challenger), ("champion", "1", h.champion))}
    assert decide(rescored["challenger"], rescored["champion"], RULE).promote
