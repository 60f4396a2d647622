"""What a night is compared with (flows.register.drift_baseline): the champion's bundle when the registry
has one, else the last training's reference, saying why; `--against champion` insists."""
from __future__ import annotations

from pathlib import Path

import pytest

from flows import register
from oanet.config import Params
from oanet.drift.reference import DriftError

P = Params()


def test_the_champions_bundle_is_the_default(monkeypatch, tmp_path):
    monkeypatch.setattr(register, "champion_drift_bundle", lambda cfg: (tmp_path, "the champion's bundle (oanet v3)"))
    assert register.drift_baseline(P) == (tmp_path, "the champion's bundle (oanet v3)")
    assert register.drift_baseline(P, "champion") == (tmp_path, "the champion's bundle (oanet v3)")


@pytest.mark.parametrize("found", [(None, "no champion yet"), RuntimeError("artifact store unreachable")])
def test_without_a_usable_champion_the_last_training_is_used_and_the_reason_named(monkeypatch, found):
    def lookup(cfg):
        if isinstance(found, Exception):
            raise found
        return found

    monkeypatch.setattr(register, "champion_drift_bundle", lookup)
    bundle, name = register.drift_baseline(P)
    why = found[1] if isinstance(found, tuple) else "could not be fetched: artifact store unreachable"
    assert bundle is None and P.paths.drift_reference in name and why in name
    with pytest.raises(DriftError, match=f"--against champion: .*{why.split(':')[0]}"):
        register.drift_baseline(P, "champion")


def test_latest_and_a_path_do_not_ask_the_registry(monkeypatch):
    monkeypatch.setattr(register, "champion_drift_bundle", lambda cfg: pytest.fail("the registry was asked"))
    assert register.drift_baseline(P, "latest") == (None, None)
    assert register.drift_baseline(P, "models/bundle") == (Path("models/bundle"), None)


def test_a_project_without_a_registry_is_not_given_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert register.champion_drift_bundle(P.register) == (None, "no model registry yet")
    assert not (tmp_path / "mlruns").exists()
