"""Integration fixtures: one tiny OCR'd AOI set trained once per session by `oanet train`."""
from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

N, PER_LOT = 72, 12   # 6 lots: enough for a grouped 7:3 split and 2 folds


@pytest.fixture(scope="session")
def trained(repo_root, ocr, tmp_path_factory):
    """(work folder, data folder, `oanet train` output) after one training on 72 images."""
    from oanet.config import IngestConfig, SynthConfig
    from oanet.ingest.stage import run as ingest
    from oanet.synth.stage import run as synth

    tmp_path = tmp_path_factory.mktemp("train")
    data = tmp_path / "aoi"
    synth(SynthConfig(n=N, seed=5, units_per_lot=PER_LOT), data, progress=False)
    ingest(IngestConfig(cache=None), data, tmp_path / "clean.parquet", tmp_path / "q.parquet", ocr=ocr)

    params = tiny_training_params(yaml.safe_load((repo_root / "params.yaml").read_text()), tmp_path, data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    from oanet.cli import app

    res = CliRunner().invoke(app, ["train", "--params", str(tmp_path / "params.yaml")])
    assert res.exit_code == 0, res.output
    return tmp_path, data, res.output


def tiny_sizes_params(params: dict) -> dict:
    """params.yaml with sizes that train in seconds on a CPU; every path as it was."""
    params["split"].update(folds=2)
    params["bag"].update(models=["gbm", "random_forest"])
    params["fuse"]["network"].update(align_dim=16, refine_dim=8)
    params["fuse"]["optimiser"].update(epochs=1, batch_size=16)
    params["fuse"]["training"].update(image_size=32)
    params["fuse"].update(device="cpu")
    params["gate"].update(device="cpu", off_factors=[2.0, 5.0], temperatures=[1.0])
    params["drift"].update(draws=100, thumbnails=2, plots=2)
    params["evaluate"].update(robustness_encoder="alexnet", device="cpu", missing_rates=[0.0, 1.0],
                              grid_ratios=[0.0, 0.5],
                              quick=dict(image_size=32, epochs=1, batch_size=16, repeats=2, encoders=["alexnet"]))
    return params


def tiny_training_params(params: dict, work, data) -> dict:
    """params.yaml with every training output under `work` and sizes that train in seconds on a CPU."""
    params = tiny_sizes_params(params)
    w = str(work)
    params["paths"].update(
        raw=str(data), clean=f"{w}/clean.parquet", split=f"{w}/split.parquet",   # data: the training set's images
        bag_models=f"{w}/models/bag", bag_predictions=f"{w}/bag.parquet", bag_metrics=f"{w}/bag.json",
        bag_importances=f"{w}/bag_importances.png", fusion_models=f"{w}/models/fusion",
        fusion_predictions=f"{w}/fusion.parquet", fusion_metrics=f"{w}/fusion.json",
        fusion_curves=f"{w}/fusion_curves.png", gate=f"{w}/models/gate.json", gate_predictions=f"{w}/gate.parquet",
        gate_metrics=f"{w}/gate.json", metrics=f"{w}/metrics.json", evaluation_dir=f"{w}/eval",
        evaluation=f"{w}/eval/evaluation.json", drift_reference=f"{w}/models/drift_reference.json",
        drift_reports=f"{w}/drift")
    return params


@pytest.fixture(scope="session")
def tiny_params():
    return tiny_training_params


@pytest.fixture(scope="session")
def tiny_sizes():
    """`tiny_sizes_params(params)`: tiny training sizes, every path kept (for a copy of the project)."""
    return tiny_sizes_params
