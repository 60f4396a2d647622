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
