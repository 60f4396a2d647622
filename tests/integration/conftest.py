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
    params["fuse"].update(image_size=32, epochs=1, batch_size=16, align_dim=16, refine_dim=8, device="cpu")
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
    params["data"].update(raw=str(data))        # the layout and images of the training set
    params["ingest"].update(data=str(data))
    params["split"].update(table=f"{w}/clean.parquet", out=f"{w}/split.parquet")
    params["bag"].update(table=f"{w}/clean.parquet", split=f"{w}/split.parquet",
                         out_dir=f"{w}/models/bag", predictions=f"{w}/bag.parquet", metrics=f"{w}/bag.json")
    params["fuse"].update(table=f"{w}/clean.parquet", split=f"{w}/split.parquet", data=str(data),
                          out_dir=f"{w}/models/fusion", predictions=f"{w}/fusion.parquet", metrics=f"{w}/fusion.json")
    params["gate"].update(table=f"{w}/clean.parquet", split=f"{w}/split.parquet", data=str(data),
                          bag_dir=f"{w}/models/bag", fusion_dir=f"{w}/models/fusion", out=f"{w}/models/gate.json",
                          predictions=f"{w}/gate.parquet", metrics=f"{w}/gate.json")
    params["report"] = {"out": f"{w}/metrics.json"}
    params["evaluate"].update(table=f"{w}/clean.parquet", data=str(data), out_dir=f"{w}/eval",
                              metrics=f"{w}/eval/evaluation.json")
    params["drift"].update(reference=f"{w}/models/drift_reference.json", out_dir=f"{w}/drift")
    return params


@pytest.fixture(scope="session")
def tiny_params():
    return tiny_training_params


@pytest.fixture(scope="session")
def tiny_sizes():
    """`tiny_sizes_params(params)`: tiny training sizes, every path kept (for a copy of the project)."""
    return tiny_sizes_params
