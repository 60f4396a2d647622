"""Ingest with OCR fanned out over a 2-worker Dask LocalCluster: the table and quarantine of
the in-process run, the cache still in front, and the CLI's --workers and --scheduler."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from oanet.config import IngestConfig
from oanet.ingest import stage

SMALL_CHUNK = 4   # several tasks on a dozen images, so both workers work and tasks finish out of order


@dataclass(frozen=True)
class DaskRuns:
    data: Path
    address: str          # the module cluster's scheduler
    local: object         # IngestResult, in process
    first: object         # IngestResult, on the cluster, fresh cache
    again: object         # IngestResult, on the cluster, same cache
    cfg: IngestConfig     # the cluster runs' config


def with_bad_files(src: Path, dst: Path) -> Path:
    """A copy of `src` with a truncated and an empty image labelled among the good ones."""
    shutil.copytree(src, dst)
    labels = pd.read_csv(dst / "labels.csv")
    first = dst / labels.loc[0, "image"]
    (dst / "images" / "cut.png").write_bytes(first.read_bytes()[:2000])
    (dst / "images" / "empty.png").write_bytes(b"")
    bad = labels.iloc[[0, 0]].assign(image=["images/cut.png", "images/empty.png"])
    pd.concat([labels.iloc[:1], bad.iloc[:1], labels.iloc[1:6], bad.iloc[1:], labels.iloc[6:]]).to_csv(
        dst / "labels.csv", index=False)
    return dst


@pytest.fixture(scope="module")
def client(synth_set):
    from oanet.ingest.distributed import connect, warm_up
    from oanet.layout import load_layout

    with connect(IngestConfig(workers=2)) as c:
        assert warm_up(c, IngestConfig(), load_layout(synth_set / "layout.yaml")) == 2   # two workers, an engine each
        yield c


@pytest.fixture(scope="module")
def dask_runs(synth_set, ocr, client, tmp_path_factory) -> DaskRuns:
    work = tmp_path_factory.mktemp("dask")
    data = with_bad_files(synth_set, work / "aoi")
    cfg = IngestConfig(cache=str(work / "ocr.sqlite"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage, "CHUNK_IMAGES", SMALL_CHUNK)
        local = stage.run(IngestConfig(cache=None), data, work / "local.parquet", work / "local_q.parquet", ocr=ocr)
        first = stage.run(cfg, data, work / "first.parquet", work / "first_q.parquet", client=client)
        again = stage.run(cfg, data, work / "again.parquet", work / "again_q.parquet", client=client)
    return DaskRuns(data, client.scheduler.address, local, first, again, cfg)


def test_same_table_and_quarantine_as_in_process(dask_runs):
    local, first = dask_runs.local, dask_runs.first
    pd.testing.assert_frame_equal(pd.read_parquet(first.out), pd.read_parquet(local.out), check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(first.quarantine), pd.read_parquet(local.quarantine),
                                  check_exact=True)
    assert (first.rows, first.quarantined, first.by_reason, first.ocr_images, first.cached_images) == \
        (local.rows, local.quarantined, local.by_reason, local.ocr_images, local.cached_images)


def test_workers_decode_and_reject_bad_files_in_label_order(dask_runs):
    quarantine = pd.read_parquet(dask_runs.first.quarantine)
    assert list(quarantine["image"]) == ["images/cut.png", "images/empty.png"]
    assert list(quarantine["reason"]) == ["truncated", "empty_file"]
    assert dask_runs.first.rows == len(pd.read_csv(dask_runs.data / "labels.csv")) - 2


def test_second_run_on_the_cluster_does_no_ocr(dask_runs):
    first, again = dask_runs.first, dask_runs.again
    assert (again.ocr_images, again.cached_images) == (0, first.rows)
    pd.testing.assert_frame_equal(pd.read_parquet(again.out), pd.read_parquet(first.out), check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(again.quarantine), pd.read_parquet(first.quarantine),
                                  check_exact=True)


def test_cli_scheduler_option_runs_on_that_cluster(dask_runs, tmp_path, monkeypatch, default_params):
    from oanet.cli import app

    monkeypatch.setattr(stage, "CHUNK_IMAGES", SMALL_CHUNK)
    out = tmp_path / "ocr.parquet"
    res = CliRunner().invoke(app, ["ingest", "--data", str(dask_runs.data), "--out", str(out), "--no-cache",
                                   "--scheduler", dask_runs.address, "--params", str(default_params)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    n = dask_runs.local.rows
    assert f"OCR on {n} images, 0 from cache" in res.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(dask_runs.local.out), check_exact=True)


def test_cli_workers_option_starts_a_local_cluster(ingest_run, tmp_path):
    """All reads come from the cache here: the cluster starts, gets no task, and closes."""
    from oanet.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(f"ingest:\n  cache: {json.dumps(ingest_run.cfg.cache)}\n")
    out = tmp_path / "ocr.parquet"
    res = CliRunner().invoke(app, ["ingest", "--data", str(ingest_run.data), "--out", str(out),
                                   "--workers", "2", "--params", str(params)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    n = ingest_run.result.rows
    assert f"OCR on 0 images, {n} from cache" in res.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), ingest_run.table)


def test_cli_rejects_negative_workers(default_params):
    from oanet.cli import app
    from oanet.config import ConfigError

    res = CliRunner().invoke(app, ["ingest", "--workers", "-1", "--params", str(default_params)])
    assert isinstance(res.exception, ConfigError), res.output
    assert "ingest.workers must be a whole number >= 0" in str(res.exception)


def test_the_stage_does_not_import_dask_until_asked():
    code = ("import sys, oanet.cli, oanet.ingest.stage, oanet.ingest.distributed\n"
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
