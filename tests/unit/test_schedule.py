"""prefect.yaml is the one place the nightly schedule is written; `oanet schedule` reads it from there."""
from __future__ import annotations

import pytest
import yaml

from flows.schedule import read_deployment


def test_the_nightly_deployment_runs_the_nightly_flow_at_two(repo_root):
    deployment = read_deployment(repo_root / "prefect.yaml")
    assert deployment.cron == "0 2 * * *"
    assert deployment.timezone                      # explicit, never the server's local zone by accident
    assert deployment.parameters == {"params_path": "params.yaml"}
    flow = deployment.flow()
    assert flow.name == "oanet-nightly"
    assert set(flow.parameters.properties) >= set(deployment.parameters)


def test_the_cron_expression_is_one_prefect_accepts(repo_root):
    from prefect.schedules import Cron

    deployment = read_deployment(repo_root / "prefect.yaml")
    assert Cron(deployment.cron, timezone=deployment.timezone).cron == deployment.cron


@pytest.mark.parametrize("spec, message", [
    ({"deployments": []}, "no deployment named 'nightly'"),
    ({"deployments": [{"name": "nightly", "entrypoint": "x.py:f", "schedules": []}]}, "exactly one cron"),
])
def test_a_broken_prefect_yaml_is_named_in_the_error(tmp_path, spec, message):
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=message):
        read_deployment(path)
