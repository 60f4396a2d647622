"""Champion/challenger promotion against a real MLflow registry in a temporary SQLite store.

Creating the store (schema migrations) costs ~7 s and logging a model ~1 s, so one store
and four logged runs are shared by the module; each test registers into its own model
name, so the tests stay independent of each other's order.
"""
from __future__ import annotations

import pandas as pd
import pytest

from flows.registry import (
    CHALLENGER,
    CHAMPION,
    EVENT_PREFIX,
    RollbackError,
    apply_promotion,
    format_history,
    history,
    register_challenger,
    rollback,
)
from oanet.errors import OanetError
from oanet.promotion import PromotionRule

# MLflow's own: SQLAlchemy's `noload` inside the store.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")

RULE = PromotionRule()
RUNS = {   # run name -> (metrics, complete)
    "good": ({"recall": 0.80, "accuracy": 0.85, "robust_recall": 0.70}, True),
    "better": ({"recall": 0.85, "accuracy": 0.85, "robust_recall": 0.72}, True),
    "worse": ({"recall": 0.78, "accuracy": 0.86, "robust_recall": 0.72}, True),
    "failed": (None, False),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, trivial_model_store):
    """(client, {run name: run id}) on a fresh SQLite store with one trivial model per run."""
    failed = [name for name, (_, complete) in RUNS.items() if not complete]
    with trivial_model_store(tmp_path_factory.mktemp("mlflow"), "registry-test", list(RUNS), failed) as store:
        yield store


def register(client, name, runs, run_name) -> str:
    metrics, complete = RUNS[run_name]
    run_id = runs[run_name]
    return register_challenger(client, name, f"runs:/{run_id}/model", run_id, metrics, complete)


def aliases(client, name) -> dict:
    return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}


@pytest.fixture
def lifecycle(store, request):
    """good (v1) -> better (v2) -> worse (v3) -> failed (v4), each offered for promotion."""
    client, runs = store
    name = f"oanet-{request.node.name}"
    decisions = {}
    for run_name in RUNS:
        version = register(client, name, runs, run_name)
        decisions[run_name] = (version, apply_promotion(client, name, version, RULE))
    return client, name, decisions


def test_first_valid_model_becomes_champion_and_loads(store):
    import mlflow.pyfunc

    client, runs = store
    version = register(client, "oanet-first", runs, "good")
    assert aliases(client, "oanet-first") == {CHALLENGER: version}
    tags = client.get_model_version("oanet-first", version).tags
    assert tags["oanet.recall"] == "0.8" and tags["oanet.complete"] == "true"

    decision = apply_promotion(client, "oanet-first", version, RULE)
    assert decision.promote and "first valid model" in decision.reason
    assert aliases(client, "oanet-first") == {CHALLENGER: version, CHAMPION: version}
    # MLflow 3 keeps the model under the experiment, not the run: the source must resolve.
    mlflow.set_tracking_uri(client.tracking_uri)        # a models:/ URI resolves in the process-wide store
    mlflow.set_registry_uri(client.tracking_uri)        # (conftest puts both back after the test)
    model = mlflow.pyfunc.load_model("models:/oanet-first@champion")
    assert list(model.predict(pd.DataFrame({"x": [1, 2, 3]}))) == [0.0, 0.0, 0.0]


def test_better_promoted_worse_refused_failed_moves_nothing(lifecycle):
    client, name, decisions = lifecycle
    (v1, d1), (v2, d2), (v3, d3), (v4, d4) = decisions.values()
    assert d1.promote and d2.promote
    assert "recall 0.850 >= champion 0.800" in d2.reason
    assert not d3.promote and d3.reason == "refused: recall 0.780 < champion 0.850 + 0"
    assert not d4.promote and "incomplete" in d4.reason
    # The worse model is still the newest valid challenger; the failed one took no alias.
    assert aliases(client, name) == {CHAMPION: v2, CHALLENGER: v3}
    assert client.get_model_version(name, v4).tags["oanet.complete"] == "false"


def test_history_lists_every_event_in_order(lifecycle):
    client, name, _ = lifecycle
    rows = history(client, name)
    assert [(r["version"], r["action"], r["alias"]) for r in rows] == [
        ("1", "challenger", CHALLENGER), ("1", "promote", CHAMPION),
        ("2", "challenger", CHALLENGER), ("2", "promote", CHAMPION),
        ("3", "challenger", CHALLENGER), ("3", "refuse", CHAMPION),
        ("4", "refuse", CHALLENGER), ("4", "refuse", CHAMPION),
    ]
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    assert all(r["key"].startswith(EVENT_PREFIX) for r in rows)
    promote = rows[3]
    assert (promote["from_version"], promote["to_version"]) == ("1", "2")
    assert promote["compared"]["champion"]["recall"] == 0.80

    text = format_history(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)          # header, rule, one line per event
    assert "champion v1 -> v2" in lines[5]
    assert "champion stays v2" in lines[7] and "recall 0.780 < champion 0.850" in lines[7]
    assert "challenger stays v3" in lines[8] and "incomplete" in lines[8]


def test_rollback_moves_champion_back_and_is_recorded(lifecycle):
    client, name, _ = lifecycle
    event = rollback(client, name)
    assert (event["action"], event["from_version"], event["to_version"]) == ("rollback", "2", "1")
    assert aliases(client, name)[CHAMPION] == "1"
    assert history(client, name)[-1]["action"] == "rollback"
    last = format_history(history(client, name)).splitlines()[-1]
    assert "rollback" in last and "champion v2 -> v1" in last

    with pytest.raises(RollbackError, match="no earlier version") as info:
        rollback(client, name)                  # v1 was the first champion
    assert isinstance(info.value, OanetError)
    assert aliases(client, name)[CHAMPION] == "1"


def test_two_rollbacks_walk_back_two_promotions(lifecycle, store):
    client, name, _ = lifecycle
    _, runs = store
    best = {"recall": 0.90, "accuracy": 0.86, "robust_recall": 0.75}
    v5 = register_challenger(client, name, f"runs:/{runs['better']}/model", runs["better"], best, True)
    assert apply_promotion(client, name, v5, RULE).promote
    assert [rollback(client, name)["to_version"] for _ in range(2)] == ["2", "1"]


def test_rollback_refuses_an_alias_moved_by_hand(lifecycle):
    client, name, _ = lifecycle
    client.set_registered_model_alias(name, CHAMPION, "3")
    with pytest.raises(RollbackError, match="moved outside oanet"):
        rollback(client, name)


def test_rollback_without_champion_is_a_clear_error(store):
    client, runs = store
    register(client, "oanet-no-champion", runs, "good")
    with pytest.raises(RollbackError, match="no champion"):
        rollback(client, "oanet-no-champion")


def test_metrics_rescored_on_shared_rows_replace_the_registered_ones(store):
    """'better' beats 'good' as registered, but on the rows both were re-scored on it does not."""
    client, runs = store
    name = "oanet-shared-rows"
    register(client, name, runs, "good")
    assert apply_promotion(client, name, "1", RULE).promote
    v2 = register(client, name, runs, "better")
    shared_champion = {"recall": 0.80, "accuracy": 0.85, "robust_recall": 0.70}
    shared_challenger = {"recall": 0.75, "accuracy": 0.85, "robust_recall": 0.70}
    decision = apply_promotion(client, name, v2, RULE, champion_metrics=shared_champion,
                               challenger_metrics=shared_challenger)
    assert not decision.promote and "0.750 < champion 0.800" in decision.reason
    assert aliases(client, name)[CHAMPION] == "1"
