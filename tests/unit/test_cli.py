"""One CLI over one stage table: `oanet --help` names every entry point, DVC calls `oanet`, and each
stage of dvc.yaml is one entry of the table that the commands, `oanet train` and the flows share."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from flows.cli import app
from flows.stages import PIPELINE
from oanet import cli as library
from oanet.stages import MODEL_STAGES, STAGES, TRAIN_STAGES

ROOT = Path(__file__).resolve().parents[2]
# Every entry point there is: a renamed or dropped command fails here, on purpose.
ENTRY_POINTS = {"data", "ingest", "validate", "split", "bag", "fuse", "gate", "drift", "evaluate", "report", "register",
                "train", "nightly", "schedule", "flow", "synth", "layout", "expectations", "predict", "registry"}
FLOWS = {"ingest", "train", "evaluate", "register"}
ORCHESTRATION = ("prefect", "mlflow", "great_expectations", "dvc", "torch")


def dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def command_names(typer_app) -> set[str]:
    return set(get_command(typer_app).commands)


def test_help_lists_every_entry_point():
    res = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert command_names(app) == ENTRY_POINTS
    listed = {line.split()[1] for line in res.output.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert ENTRY_POINTS <= listed, ENTRY_POINTS - listed


def test_flow_group_lists_every_prefect_flow():
    res = CliRunner().invoke(app, ["flow", "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert set(get_command(app).commands["flow"].commands) == FLOWS
    assert all(f" {name} " in res.output for name in FLOWS)
    for name in FLOWS:
        sub = CliRunner().invoke(app, ["flow", name, "--help"])
        assert sub.exit_code == 0 and "--params" in sub.output, sub.output


def test_the_console_script_is_the_composed_app_and_its_help_starts_no_orchestration():
    """`oanet --help` in a fresh process: every entry point, and none of Prefect, MLflow, GX, DVC or torch loaded."""
    assert 'oanet = "flows.cli:main"' in (ROOT / "pyproject.toml").read_text()
    code = ("import sys\nfrom flows.cli import main\nsys.argv = ['oanet', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print('LOADED', sorted(m for m in {ORCHESTRATION!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout
    assert all(f" {name} " in done.stdout for name in ENTRY_POINTS)


def test_composition_is_explicit_importing_the_flows_cli_changes_no_library_app():
    """The library's own app (`python -m oanet.cli`) keeps its commands; flows/cli.py adds none to it."""
    names = command_names(library.app)
    assert names == command_names(library.make_app(library.commands))
    assert not names & {"validate", "register", "nightly", "schedule", "flow", "predict", "registry"}


def test_every_dvc_command_is_the_oanet_command_of_its_stage():
    for name, stage in dvc_stages().items():
        words = stage["cmd"].split()
        assert words[0] == "oanet", f"dvc.yaml stage {name}: `{stage['cmd']}` does not call the oanet CLI"
        assert words[1] in command_names(app), f"dvc.yaml stage {name}: no command `oanet {words[1]}`"
        assert words[1] == name, f"dvc.yaml stage {name} runs `oanet {words[1]}`"


def test_the_stage_table_is_dvc_yamls_stages_in_order():
    assert list(PIPELINE) == list(dvc_stages())


def test_each_stage_is_configured_by_the_params_section_dvc_yaml_lists():
    for name, stage in dvc_stages().items():
        sections = {key.split(".")[0] for key in stage.get("params", [])}
        section = PIPELINE[name].section
        if section is None:                         # report: a table of the metrics, no setting of its own
            assert not sections, f"dvc.yaml stage {name} lists params {sections} it does not read"
        else:
            assert section in sections, f"dvc.yaml stage {name} does not list params `{section}`"


def test_the_flows_table_extends_the_library_table_without_redefining_it():
    assert {name: PIPELINE[name] for name in STAGES} == STAGES
    assert set(PIPELINE) - set(STAGES) == {"validate", "register"}


def test_every_stage_has_a_command_and_train_runs_stages_of_the_table():
    assert set(PIPELINE) <= command_names(app)
    assert set(TRAIN_STAGES) <= set(STAGES) and TRAIN_STAGES[:len(MODEL_STAGES)] == MODEL_STAGES


def test_a_stage_command_runs_the_tables_function_under_the_project_lock(tmp_path):
    """`oanet report` through the table: the summary printed, the output written, the lock released."""
    metrics = {"accuracy": 0.9, "recall": 0.8, "precision": 0.7, "f1": 0.75, "roc_auc": 0.95}
    (tmp_path / "bag.json").write_text(json.dumps({"test": {"gbm": metrics}}))
    (tmp_path / "fusion.json").write_text(json.dumps({"cnn": metrics, "fusion": metrics}))
    params = {"paths": {"bag_metrics": str(tmp_path / "bag.json"), "fusion_metrics": str(tmp_path / "fusion.json"),
                        "gate_metrics": str(tmp_path / "gate.json"), "metrics": str(tmp_path / "metrics.json")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    res = CliRunner().invoke(app, ["report", "--params", str(tmp_path / "params.yaml")])
    assert res.exit_code == 0, res.output
    assert "| fusion |" in res.output and f"written: {tmp_path / 'metrics.json'}" in res.output
    assert set(json.loads((tmp_path / "metrics.json").read_text())) == {"gbm", "cnn", "fusion"}


@pytest.mark.parametrize("command", sorted(ENTRY_POINTS - {"flow", "layout", "registry", "schedule"}))
def test_every_command_reads_the_params_file_it_is_given(command):
    res = CliRunner().invoke(app, [command, "--help"])
    assert res.exit_code == 0 and "--params" in res.output, res.output


def test_a_params_file_named_but_absent_is_refused_not_replaced_by_the_defaults(tmp_path):
    res = CliRunner().invoke(app, ["report", "--params", str(tmp_path / "parms.yaml")])
    assert res.exit_code != 0 and "parms.yaml: no such file" in str(res.exception or res.output)


def test_the_prefect_tasks_are_the_stage_table():
    from flows.tasks import RETRIES, TASKS

    assert list(TASKS) == list(PIPELINE)
    assert {name: task.retries for name, task in TASKS.items() if task.retries} == RETRIES == {"register": 3}


def test_fuse_options_land_in_their_sub_sections_and_are_checked_like_params_yaml(tmp_path):
    from oanet.cli import _overridden
    from oanet.config import ConfigError

    params = tmp_path / "params.yaml"
    params.write_text("fuse:\n  optimiser:\n    lr: 0.01\n")
    p = _overridden(params, "fuse", network={"encoder": "alexnet"}, training={"image_size": None},
                    optimiser={"epochs": 3}, device=None)
    assert (p.fuse.network.encoder, p.fuse.optimiser.epochs, p.fuse.optimiser.lr) == ("alexnet", 3, 0.01)
    assert p.fuse.training.image_size == 64 and p.fuse.device == "auto"        # not given: params.yaml's
    with pytest.raises(ConfigError, match="fuse.optimiser.epochs must be >= 1"):
        _overridden(params, "fuse", optimiser={"epochs": 0})


def test_predict_without_a_model_is_one_line_saying_what_to_do(tmp_path, monkeypatch):
    """No registry yet, or a --model folder that is not there: no MLflow traceback."""
    from oanet.errors import OanetError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"register": {
        "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")}}))
    image = tmp_path / "u.png"
    image.write_bytes(b"")
    res = CliRunner().invoke(app, ["predict", str(image), "--params", str(tmp_path / "params.yaml")])
    assert isinstance(res.exception, OanetError), res.output
    assert "cannot load the model models:/oanet@champion" in str(res.exception) and "make demo" in str(res.exception)
    res = CliRunner().invoke(app, ["predict", str(image), "--model", str(tmp_path / "nothere")])
    assert isinstance(res.exception, OanetError) and "no bundle folder there" in str(res.exception)
    res = CliRunner().invoke(app, ["predict", str(image), "--model", "runs:/0123abc/model", "--params",
                                   str(tmp_path / "params.yaml")])                # any MLflow URI goes to MLflow
    assert isinstance(res.exception, OanetError) and "cannot load the model runs:/0123abc/model" in str(res.exception)


def test_expectations_into_a_new_folder_brings_the_batch_suite_validate_needs(tmp_path, repo_root, monkeypatch):
    from oanet.quality.expectations import load_suite
    from oanet.synth.aoi_layout import aoi_v1_layout

    monkeypatch.chdir(tmp_path)                           # from another folder: the project is beside its params
    aoi_v1_layout().save(tmp_path / "layout.yaml")
    out = tmp_path / "suites"
    res = CliRunner().invoke(app, ["expectations", "--layout", "layout.yaml", "--out", str(out),
                                   "--params", str(repo_root / "params.yaml")])
    assert res.exit_code == 0, res.output
    assert (out / "batch.json").read_text() == (repo_root / "expectations" / "batch.json").read_text()
    load_suite(out / "fields.aoi-v1.json")
    (out / "batch.json").write_text("{}")                 # edited by hand: a second run leaves it be
    res = CliRunner().invoke(app, ["expectations", "--layout", "layout.yaml", "--out", str(out),
                                   "--params", str(repo_root / "params.yaml")])
    assert res.exit_code == 0 and (out / "batch.json").read_text() == "{}" and "batch suite" not in res.output
    (tmp_path / "alone.yaml").write_text("")              # no project anywhere: say what is missing
    res = CliRunner().invoke(app, ["expectations", "--layout", "layout.yaml", "--out", str(tmp_path / "other"),
                                   "--params", str(tmp_path / "alone.yaml")])
    assert res.exit_code == 0 and "has no batch.json" in res.output
