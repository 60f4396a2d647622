"""The recogniser's output layer cut to a layout's characters (oanet/ingest/head.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from oanet.ingest.engine import model_files
from oanet.ingest.head import PRINTABLE_ASCII, kept_classes, layout_charset, prune_head, pruned_model
from oanet.synth.aoi_layout import aoi_v1_layout

REC_MODEL = "multi_PP-OCRv6_small"


def test_kept_classes_are_blank_the_charset_characters_and_space():
    characters = ["a", "Б", "b", "ab", "aБ", ""]          # class i + 1 is characters[i]
    assert kept_classes(characters, "ab") == [0, 1, 3, 4, 7]


def test_layout_charset_is_ascii_plus_what_the_layout_prints():
    layout = aoi_v1_layout()
    fields = list(layout.fields)
    fields[0] = dataclasses.replace(fields[0], key="温度", unit="°C")
    fields[2] = dataclasses.replace(fields[2], categories=("AOI-01", "Ω-2"))
    charset = layout_charset(dataclasses.replace(layout, fields=tuple(fields)))
    assert set(PRINTABLE_ASCII) <= set(charset)
    assert {"温", "度", "°", "Ω"} <= set(charset)
    assert " " not in charset and charset == "".join(sorted(set(charset)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    full, _ = model_files(REC_MODEL)
    charset = layout_charset(aoi_v1_layout())
    return full, prune_head(full, charset, tmp_path_factory.mktemp("head") / "pruned.onnx"), charset


def _run(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    return session.run(None, {session.get_inputs()[0].name: x})[0], meta["character"].split("\n")


def test_pruned_model_is_the_full_softmax_renormalised_over_the_kept_characters(models):
    full_path, pruned_path, charset = models
    x = np.random.default_rng(0).random((2, 3, 48, 96), dtype=np.float32)
    full, full_chars = _run(full_path, x)                       # (2, steps, 18710)
    pruned, pruned_chars = _run(pruned_path, x)                 # (2, steps, kept)
    keep = kept_classes(full_chars, charset)
    assert pruned.shape == (*full.shape[:2], len(keep)) and len(keep) < full.shape[2] / 100
    assert pruned_chars == [full_chars[i - 1] for i in keep[1:-1]]
    expected = full[:, :, keep] / full[:, :, keep].sum(axis=2, keepdims=True)
    np.testing.assert_allclose(pruned, expected, rtol=1e-4, atol=1e-6)


def test_pruned_model_is_built_once_per_charset(models, tmp_path):
    full, _, charset = models
    first = pruned_model(full, charset, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert pruned_model(full, charset, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert pruned_model(full, charset + "é", tmp_path) != first


def test_a_model_without_a_character_list_is_refused_clearly(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="ingest.charset: full"):
        prune_head(tmp_path / "other.onnx", PRINTABLE_ASCII, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
