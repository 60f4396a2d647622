"""Promotion against a real MLflow registry (temporary SQLite store, trivial models): two
promotions at once, absolute floors, non-finite metrics, credentials (issue 14: findings 5, 6, 8, 15)."""
from __future__ import annotations

import threading
import time

import pytest

from flows import registry
from flows.registry import CHALLENGER, CHAMPION, apply_promotion, history, register_challenger
from oanet.promotion import PromotionRule

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")

RULE = PromotionRule()
GOOD = {"recall": 0.80, "accuracy": 0.85, "robust_recall": 0.70, "robust_accuracy": 0.80}


@pytest.fixture(scope="module")
def store(tmp_path_factory, trivial_model_store):
    """(client, run id of one logged trivial model) on a fresh SQLite store."""
    with trivial_model_store(tmp_path_factory.mktemp("mlflow"), "reliability", ["model"]) as (client, runs):
        yield client, runs["model"]


def offer(client, run_id, name, **metrics) -> str:
    return register_challenger(client, name, f"runs:/{run_id}/model", run_id, {**GOOD, **metrics}, True)


def aliases(client, name) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}


def champion(client, name) -> str | None:
    return aliases(client, name).get(CHAMPION)


# ---------------------------------------------------------------- finding 5

def test_two_promotions_at_once_cannot_move_champion_past_a_better_model(store, monkeypatch):
    """A (better than v1) and B (better than A) are offered together. Both read champion v1 before
    either moves; B moves first, then A, which without compare-and-set leaves the worse A in service."""
    client, run_id = store
    name = "race"
    v1 = offer(client, run_id, name)
    apply_promotion(client, name, v1, RULE)
    va = offer(client, run_id, name, recall=0.82)
    vb = offer(client, run_id, name, recall=0.90, robust_recall=0.75)

    both_read = threading.Barrier(2, timeout=3)
    real_decide = registry.decide

    def decide_slowly(challenger, *args, **kwargs):
        try:
            both_read.wait()            # both have read the champion (never both, under a lock)
        except threading.BrokenBarrierError:
            pass
        if challenger.version == va:
            time.sleep(1.0)             # B moves the alias first
        return real_decide(challenger, *args, **kwargs)

    monkeypatch.setattr(registry, "decide", decide_slowly)
    errors = []

    def promote(version):
        try:
            apply_promotion(client, name, version, RULE)
        except Exception as exc:        # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (va, vb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert champion(client, name) == vb
    promotes = [r for r in history(client, name) if r["action"] == "promote"]
    # each move started from where the previous one left the alias (none compared with a stale champion)
    assert [r["from_version"] for r in promotes[1:]] == [r["to_version"] for r in promotes[:-1]]


def test_a_comparison_against_a_champion_that_moved_moves_nothing(store):
    """Compare-and-set: metrics scored against v1 must not be applied once v2 holds champion."""
    from flows.registry import ChampionMoved

    client, run_id = store
    name = "cas"
    v1 = offer(client, run_id, name)
    apply_promotion(client, name, v1, RULE)
    v2 = offer(client, run_id, name, recall=0.90)
    v3 = offer(client, run_id, name, recall=0.85)
    apply_promotion(client, name, v2, RULE)                    # another register won meanwhile
    before = len(history(client, name))
    with pytest.raises(ChampionMoved, match="moved"):
        apply_promotion(client, name, v3, RULE, champion_metrics={**GOOD}, challenger_metrics={**GOOD, "recall": 0.85},
                        expected_champion=v1)
    assert champion(client, name) == v2 and len(history(client, name)) == before


# ---------------------------------------------------------------- finding 6

def test_the_first_model_is_not_promoted_below_the_floors(store):
    """The bring-your-own-data case: 10.6% recall under 60% OCR loss + GridMask, no champion yet."""
    client, run_id = store
    name = "floors"
    version = offer(client, run_id, name, robust_recall=0.106)
    decision = apply_promotion(client, name, version, RULE)
    assert not decision.promote
    assert "robust recall 0.106 < floor 0.3" in decision.reason
    assert aliases(client, name) == {CHALLENGER: version}     # stays the challenger
    last = history(client, name)[-1]
    assert last["action"] == "refuse" and "floor" in last["reason"]


def test_floors_hold_against_a_champion_too(store):
    client, run_id = store
    name = "floors-champion"
    v1 = offer(client, run_id, name, recall=0.55, accuracy=0.62)
    assert apply_promotion(client, name, v1, RULE).promote
    v2 = offer(client, run_id, name, recall=0.56, accuracy=0.45)        # recall up, accuracy under 0.5
    decision = apply_promotion(client, name, v2, PromotionRule(max_accuracy_drop=1.0))
    assert not decision.promote and "accuracy 0.450 < floor 0.5" in decision.reason


# ---------------------------------------------------------------- finding 8 (inf)

@pytest.mark.parametrize("metric", ["recall", "accuracy", "robust_recall"])
def test_an_infinite_metric_is_refused_like_nan(store, metric):
    client, run_id = store
    name = f"inf-{metric}"
    v1 = offer(client, run_id, name)
    apply_promotion(client, name, v1, RULE)
    v2 = offer(client, run_id, name, **{metric: float("inf")})
    decision = apply_promotion(client, name, v2, RULE)
    assert not decision.promote and "NaN/inf" in decision.reason
    assert aliases(client, name) == {CHALLENGER: v1, CHAMPION: v1}


# ---------------------------------------------------------------- finding 15

def test_params_are_logged_with_credentials_redacted():
    from flows.tracking import flatten

    flat = flatten({"register": {"tracking_uri": "postgresql://mlflow:s3cret@db:5432/mlflow"},
                    "ingest": {"scheduler": "tcp://db?user=ops&password=s3cret&sslmode=require"}})
    assert flat == {"register.tracking_uri": "postgresql://mlflow:***@db:5432/mlflow",
                    "ingest.scheduler": "tcp://db?user=ops&password=***&sslmode=require"}


def test_a_password_in_params_yaml_is_refused_before_dvc_copies_it(monkeypatch):
    """dvc.yaml tracks the whole `register` section as params: dvc.lock would hold the URI verbatim."""
    from flows.tracking import tracking_uri
    from oanet.config import RegisterConfig
    from oanet.errors import OanetError

    with pytest.raises(OanetError, match="MLFLOW_TRACKING_URI") as info:
        tracking_uri(RegisterConfig(tracking_uri="postgresql://mlflow:s3cret@db/mlflow"))
    assert "s3cret" not in str(info.value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://mlflow:s3cret@db/mlflow")   # the supported place
    assert tracking_uri(RegisterConfig()) == "postgresql://mlflow:s3cret@db/mlflow"
