"""The drift report on simulated incidents (issue 16's promise): each incident is named first, by the
right modality and field, and alerts; clean nights of the same generator never alert.

The reference is fitted on a 480-unit demo set's truth values (train lots; val lots calibrate). The
demo panel is read exactly (docs/benchmarks.md, "OCR"), so the truth stands for the OCR table of a
clean set; the font incident, which is about reading, goes through the real OCR (`oanet drift --data`).
"""
from __future__ import annotations

import json
from pathlib import Path

import browser
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

NIGHT_UNITS = 60
CLEAN_NIGHTS = 10
# incident -> (modality, field) the report must name first
EXPECTED = {"exposure": "image:brightness", "process": "ocr:sinter_temp_c", "camera": "image:centre_x",
            "font": "ocr:sinter_temp_c"}

pytestmark = pytest.mark.slow


def truth_table(folder: Path) -> pd.DataFrame:
    """The night's rows as a clean OCR table would hold them: labels + the printed values."""
    labels, truth = pd.read_csv(folder / "labels.csv"), pd.read_csv(folder / "truth.csv")
    return labels.merge(truth.drop(columns=["lot"]), on="image")


@pytest.fixture(scope="module")
def project(tmp_path_factory, repo_root):
    """(params file, reference path, work folder): a reference from a 480-unit set, thresholds from its val lots."""
    from oanet.config import SynthConfig
    from oanet.drift.reference import fit_reference
    from oanet.drift.stage import object_boxes
    from oanet.drift.statistics import image_statistics
    from oanet.features import TabularSchema
    from oanet.layout import load_layout
    from oanet.synth.stage import run as synth

    work = tmp_path_factory.mktemp("drift")
    ref = work / "reference-set"
    synth(SynthConfig(n=480, seed=7), ref, progress=False)
    layout = load_layout(ref / "layout.yaml")
    table = truth_table(ref)
    lots = sorted(table["lot"].unique())
    train, val = table[table["lot"].isin(lots[:7])], table[table["lot"].isin(lots[7:])]
    stats = [image_statistics(object_boxes(ref, rows["image"].tolist(), layout.object_roi, 64)) for rows in (train, val)]
    reference = fit_reference(TabularSchema.from_layout(layout), train, stats[0], val, stats[1], layout.object_roi,
                              64, source="the 480-unit demo set's train lots")
    path = reference.save(work / "drift_reference.json")
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["paths"].update(drift_reference=str(path), drift_reports=str(work / "reports"))
    params["drift"].update(draws=300)
    params["ingest"].update(cache=None)
    params["register"].update(tracking_uri=f"sqlite:///{work}/mlflow.db")   # no registry: the default baseline
    #                                                                        is the reference above (latest)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return work / "params.yaml", path, work


def night(work: Path, name: str, seed: int, incident: str = "none") -> Path:
    from oanet.config import SynthConfig
    from oanet.synth.stage import run as synth

    out = work / name
    synth(SynthConfig(n=NIGHT_UNITS, seed=seed), out, progress=False, incident=incident)
    truth_table(out).to_parquet(work / f"{name}.parquet")
    return out


def drift(params: Path, folder: Path, table: Path | None = None) -> dict:
    from flows.cli import app

    args = ["drift", "--data", str(folder), "--params", str(params), "--fail-on-alert"]
    res = CliRunner().invoke(app, args + (["--table", str(table)] if table else []))
    assert res.exit_code in (0, 3), res.output
    out = yaml.safe_load((params.parent / "params.yaml").read_text())["paths"]["drift_reports"]
    summary = json.loads((Path(out) / folder.name / "summary.json").read_text())
    assert (res.exit_code == 3) == summary["alert"], res.output          # the exit status says it too
    assert summary["headline"] in res.output                               # the one-line summary is printed
    assert "last training's reference" in summary["reference"]["against"] and "no model registry yet" in res.output
    return summary


@pytest.mark.parametrize("incident", ["exposure", "process", "camera"])
def test_an_incident_is_named_first_and_alerts(project, incident):
    params, _, work = project
    folder = night(work, incident, seed=31, incident=incident)
    summary = drift(params, folder, work / f"{incident}.parquet")
    assert summary["alert"] and summary["items"][0]["label"] == EXPECTED[incident], summary["headline"]
    assert EXPECTED[incident] in summary["headline"]


def test_a_new_panel_font_is_named_through_the_ocr_it_breaks(project):
    params, _, work = project
    folder = night(work, "font", seed=31, incident="font")
    summary = drift(params, folder)                                        # the real OCR reads the night
    top = summary["items"][0]
    assert summary["alert"] and top["label"] == EXPECTED["font"], summary["headline"]
    assert top["missing_rate"] > 0.1 and sum(top["reasons"].values()) == round(top["missing_rate"] * NIGHT_UNITS)
    assert not any(i["score"] > 1 for i in summary["items"] if i["modality"] == "image")


def test_ten_clean_nights_raise_no_alert(project):
    params, _, work = project
    scores = []
    for k in range(CLEAN_NIGHTS):
        folder = night(work, f"clean-{k}", seed=100 + k)
        summary = drift(params, folder, work / f"clean-{k}.parquet")
        assert not summary["alert"], summary["headline"]
        scores.append(summary["items"][0]["score"])
    history = [json.loads(line) for line in (work / "reports" / "history.jsonl").read_text().splitlines()]
    assert {f"clean-{k}" for k in range(CLEAN_NIGHTS)} <= {e["night"] for e in history}
    assert max(scores) < 1


def test_the_report_opens_offline_styled_with_its_tables_filled(project, tmp_path):
    params, _, work = project
    folder = night(work, "camera-page", seed=41, incident="camera")
    summary = drift(params, folder, work / "camera-page.parquet")
    page = Path(yaml.safe_load(params.read_text())["paths"]["drift_reports"]) / folder.name / "index.html"
    html = page.read_text()
    assert not browser.external_refs(html) and "<script" not in html
    rendered = browser.open_offline(page, tmp_path, "drift")
    browser.assert_tables_filled(rendered.dom, {"drifted": len(summary["items"])})
    browser.assert_styled(rendered.png)
    assert browser.has_colour(rendered.png, (0xFD, 0xE2, 0xE1))           # the red alert banner is drawn
    assert html.count("<figure>") == 8                                     # thumbnails of the most moved objects


def test_against_champion_without_a_registry_is_refused_naming_why(project):
    from flows.cli import app
    from oanet.drift.reference import DriftError

    params, _, work = project
    res = CliRunner().invoke(app, ["drift", "--data", str(work), "--against", "champion", "--params", str(params)])
    assert isinstance(res.exception, DriftError) and "no model registry yet" in str(res.exception)
    assert not (work / "mlflow.db").exists()                               # looking created no registry
