"""`oanet register`, the registry history and rollback, and the registered model in a fresh process.

Uses the session's tiny trained set (conftest `trained`) and a temporary SQLite MLflow store.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

# every test here reads the session's `trained` fixture: `oanet train` on 72 images (a minute or more)
pytestmark = pytest.mark.slow

MODEL = "oanet-test"


@pytest.fixture(scope="module")
def store(trained, tmp_path_factory):
    """(params path, tracking URI) with the register section pointing at a fresh store."""
    w, _, _ = trained
    root = tmp_path_factory.mktemp("mlflow")
    params = yaml.safe_load((w / "params.yaml").read_text())
    uri = f"sqlite:///{root}/mlflow.db"
    params["paths"]["bundle"] = str(w / "bundle-register")
    params["register"] = {"model_name": MODEL, "experiment": "oanet-test", "tracking_uri": uri,
                          "artifact_root": str(root / "artifacts"),
                          "min_accuracy": 0.5}     # the 72-image model is weak (accuracy 0.5); the rule, not it, is tested
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path, uri


def cli(*args: str):
    from flows.cli import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def aliases(uri: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    return {k: str(v) for k, v in MlflowClient(uri).get_registered_model(MODEL).aliases.items()}


@pytest.fixture(scope="module")
def registered(store, trained):
    """Three runs: the first becomes champion, a worse one is refused, an incomplete one moves nothing."""
    params, uri = store
    p = yaml.safe_load(params.read_text())
    outputs = {"first": cli("register", "--params", str(params))}
    after_first = aliases(uri)

    gate_metrics, gate_artifact = Path(p["paths"]["gate_metrics"]), Path(p["paths"]["gate"])
    original, original_gate = gate_metrics.read_text(), gate_artifact.read_text()
    worse = json.loads(original_gate)       # a challenger that flags almost nothing: its recall collapses
    worse["gate"]["threshold"] = {regime: 0.999 for regime in worse["gate"]["threshold"]}
    gate_artifact.write_text(json.dumps(worse))
    try:
        outputs["worse"] = cli("register", "--params", str(params))
        after_worse = aliases(uri)
        gate_metrics.rename(gate_metrics.with_suffix(".away"))     # a run whose gate stage never finished
        outputs["incomplete"] = cli("register", "--params", str(params))
        after_incomplete = aliases(uri)
    finally:
        if gate_metrics.with_suffix(".away").exists():
            gate_metrics.with_suffix(".away").rename(gate_metrics)
        gate_metrics.write_text(original)
        gate_artifact.write_text(original_gate)
    return outputs, after_first, after_worse, after_incomplete


def test_first_valid_model_becomes_champion(registered):
    outputs, after_first, _, _ = registered
    assert after_first == {"champion": "1", "challenger": "1"}
    assert "PROMOTED to champion" in outputs["first"] and "first valid model" in outputs["first"]


def test_worse_challenger_is_refused_on_the_same_test_rows(registered):
    outputs, _, after_worse, _ = registered
    assert after_worse == {"champion": "1", "challenger": "2"}
    assert "kept the champion" in outputs["worse"] and "recall" in outputs["worse"]
    assert "test rows neither model was fitted on" in outputs["worse"]   # same split: every test row


def test_incomplete_run_moves_no_alias(registered):
    outputs, _, after_worse, after_incomplete = registered
    assert "INCOMPLETE" in outputs["incomplete"]
    assert after_incomplete == after_worse


def test_history_and_rollback(registered, store):
    params, uri = store
    again = cli("register", "--params", str(params))       # same models as v1: equal metrics pass the rule
    assert "PROMOTED" in again and aliases(uri)["champion"] == "4"
    history = cli("registry", "history", "--params", str(params))
    for action in ("challenger", "promote", "refuse"):
        assert action in history
    out = cli("registry", "rollback", "--params", str(params))
    assert "v4 -> v1" in out and aliases(uri)["champion"] == "1"
    assert "rollback" in cli("registry", "history", "--params", str(params))


def test_registered_model_loads_and_predicts_in_a_fresh_process(registered, store, trained):
    """A new interpreter, nothing but the store: signature, decisions and reason codes on a blank panel."""
    _, uri = store
    _, data, _ = trained
    image = sorted((data / "images").glob("*.png"))[0]
    code = f"""
import base64, io, json, sys
import numpy as np, pandas as pd, mlflow.pyfunc
from PIL import Image
model = mlflow.pyfunc.load_model("models:/{MODEL}@champion")
sig = model.metadata.signature
arr = np.asarray(Image.open("{image}").convert("L")).copy()
arr[:160, :] = 0; arr[160:, 320:] = 0                                   # wipe the panel, keep the object
buf = io.BytesIO(); Image.fromarray(arr).save(buf, format="PNG")
frame = pd.DataFrame({{"path": ["{image}", "blank.png"],
                      "image_b64": ["", base64.b64encode(buf.getvalue()).decode()]}})
out = model.predict(frame)
print(json.dumps({{"inputs": sig.inputs.input_names(), "outputs": sig.outputs.input_names(),
                  "rows": out.to_dict(orient="records")}}))
"""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OANET_SERVE_PATH_ROOT": str(data)}   # paths only under it
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["inputs"] == ["path", "image_b64"]
    assert got["outputs"] == ["image", "prob", "decision", "threshold", "driver", "weights", "fields", "error"]
    read, blank = got["rows"]
    assert read["error"] == "" and read["decision"] == int(read["prob"] >= read["threshold"])
    assert {v["reason"] for v in json.loads(blank["fields"]).values()} == {"blank_panel"}
    assert blank["driver"] == "image" and json.loads(blank["weights"])["cnn"] == 1.0


def champion_pipeline(uri: str):
    """The DefectPipeline inside the model version that holds @champion in the store at `uri`."""
    import mlflow
    import mlflow.pyfunc

    mlflow.set_tracking_uri(uri)        # process-wide; conftest puts both back after the test
    mlflow.set_registry_uri(uri)
    return mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").unwrap_python_model().pipeline


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rest_round_trip_with_mlflow_models_serve(registered, store, trained):
    """`mlflow models serve` on a loopback port: two images posted, the same answers as in-process."""
    import base64
    import time
    import urllib.request

    import pandas as pd

    _, uri = store
    _, data, _ = trained
    labels = pd.read_csv(data / "labels.csv")
    names = [labels.loc[labels["label"] == 1, "image"].iloc[0], labels.loc[labels["label"] == 0, "image"].iloc[0]]
    blobs = [(data / n).read_bytes() for n in names]
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(["mlflow", "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()[-3000:]
                assert time.time() < deadline, "server did not come up in 180 s"
                time.sleep(1)
        body = json.dumps({"dataframe_split": {"columns": ["path", "image_b64"],
                                               "data": [[n, base64.b64encode(b).decode()] for n, b in zip(names, blobs, strict=True)]}})
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=120).read())["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [a["image"] for a in answer] == names
    # the champion's own bundle, from the alias the server serves (not the bundle folder, which
    # every later `oanet register` of this module rewrites, so it depends on the test order)
    local = champion_pipeline(uri).predict(list(zip(names, blobs, strict=True)))
    for got, want in zip(answer, local.to_dict(orient="records"), strict=True):
        assert got["error"] == "" and got["decision"] == want["decision"]
        assert got["prob"] == pytest.approx(want["prob"], abs=1e-6)
        assert json.loads(got["fields"]) == json.loads(want["fields"])


def test_predict_prints_json_lines_for_files_and_writes_a_csv_for_a_folder(registered, store, trained, tmp_path):
    import shutil

    import pandas as pd

    params, _ = store
    _, data, _ = trained
    images = sorted((data / "images").glob("*.png"))[:3]
    out = cli("predict", "--model", f"models:/{MODEL}@champion", "--params", str(params), *map(str, images[:2]))
    lines = [json.loads(line) for line in out.strip().splitlines() if line.startswith("{")]
    assert [row["image"] for row in lines] == [str(p) for p in images[:2]]
    assert all(row["decision"] == int(row["prob"] >= row["threshold"]) and set(row["fields"]) >= {"lot", "unit_id"}
               for row in lines)
    folder = tmp_path / "incoming"
    folder.mkdir()
    for p in images:
        shutil.copy(p, folder / p.name)
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    out = cli("predict", "--model", f"models:/{MODEL}@champion", "--params", str(params), str(folder))
    table = pd.read_csv(folder / "oanet_predictions.csv")
    assert len(table) == 4 and "1 unusable" in out                    # every image accounted for
    assert table.loc[table["image"].str.endswith("broken.png"), "decision"].item() == -1
