"""Field exact match against truth.csv, also for a layout whose names and dtypes differ."""
from __future__ import annotations

import numpy as np
import pandas as pd

from oanet.ingest.accuracy import overall, score_fields
from oanet.layout import Field, Layout

PRINTED = Layout("p", (10, 10), (0, 0, 5, 5), (
    Field("temp", "Temp(C)", "float", decimals=1), Field("light", "LIGHT", "category", categories=("1", "2")),
    Field("gone", "GONE", "float", decimals=1)))
DRAFT = Layout("d", (10, 10), (0, 0, 5, 5), (
    Field("temp_c", "temp (c)", "float", decimals=1), Field("light", "LIGHT", "int")))


def test_matched_by_key_numbers_as_numbers_and_a_missing_field_counts_as_missing():
    truth = pd.DataFrame({"image": ["a", "b", "c"], "temp": ["1187.8", "1100.0", "999.9"],
                          "light": ["1", "2", "1"], "gone": ["1.0", "2.0", "3.0"]})
    table = pd.DataFrame({"image": ["a", "b", "c"], "temp_c": [1187.8, 1100.0, np.nan],
                          "temp_c__reason": [None, None, "out_of_range"], "light": [1.0, 1.0, 1.0],
                          "light__reason": [None, None, None]})
    s = score_fields(table, truth, DRAFT, PRINTED).set_index("field")
    assert s.loc["temp", ["exact", "wrong", "missing"]].tolist() == [2 / 3, 0.0, 1 / 3]
    assert s.loc["temp", "missing:out_of_range"] == 1
    assert s.loc["light", ["exact", "wrong"]].tolist() == [2 / 3, 1 / 3]     # 1.0 == "1"; "2" read as 1 is wrong
    assert s.loc["gone", ["exact", "missing", "missing:no_field"]].tolist() == [0.0, 1.0, 3]
    assert overall(s.reset_index()) == {"exact": 4 / 9, "wrong": 1 / 9, "missing": 4 / 9, "fields": 9}


def test_keys_in_other_scripts_match_their_own_field_not_the_first():
    printed = Layout("p", (10, 10), (0, 0, 5, 5), (Field("lot", "批次", "str"), Field("temp", "烧结温度", "float")))
    draft = Layout("d", (10, 10), (0, 0, 5, 5), (Field("field", "批次", "str"), Field("field_2", "烧结温度：", "float")))
    truth = pd.DataFrame({"image": ["a"], "lot": ["L1"], "temp": ["1127.4"]})
    table = pd.DataFrame({"image": ["a"], "field": ["L1"], "field__reason": [None], "field_2": [1127.4],
                          "field_2__reason": [None]})
    assert overall(score_fields(table, truth, draft, printed))["exact"] == 1.0     # was 0.5: every key normed to ""
