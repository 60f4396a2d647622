"""Findings 13 and 10 (serving, fusion loading): what a server reads, and how large an image may be.

Request-level cases go through the MLflow pyfunc model, what `mlflow models serve` runs for a REST caller.
"""
from __future__ import annotations

import base64
import io
import struct
import zlib

import pandas as pd
import pytest
from PIL import Image

from oanet.serving import DefectPipeline
from oanet.synth.aoi_layout import aoi_v1_layout


def _png(width: int, height: int) -> bytes:
    """A PNG header claiming width x height: a few bytes that would decode to width*height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _small_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (8, 8), 128).save(out, format="PNG")
    return out.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pipeline(**serve) -> DefectPipeline:
    """A pipeline without models: enough for inputs that are all refused before any model runs."""
    if not serve:
        return DefectPipeline(aoi_v1_layout(), {"blank_panel_std": 2.0}, members=None, gate=None)
    from oanet.config import ServeConfig

    return DefectPipeline(aoi_v1_layout(), {"blank_panel_std": 2.0}, members=None, gate=None,
                          serve=ServeConfig(**serve))


def _served(frame: pd.DataFrame, pipeline: DefectPipeline | None = None) -> list[str]:
    """The `error` column the served model answers `frame` with."""
    from flows.mlflow_model import OanetModel

    model = OanetModel()
    model.pipeline = pipeline or _pipeline()
    return list(model.predict(None, frame)["error"])


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "outside" / "secret.png"
    path.parent.mkdir()
    path.write_bytes(_small_png())
    return path


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "unit.png").write_bytes(_small_png())
    return root


# --- finding 13: `path` is read only under a configured root ------------------------------------

def test_serving_does_not_read_a_file_a_rest_caller_names(secret):
    errors = _served(pd.DataFrame({"path": [str(secret), "/etc/hostname"]}))
    assert all(e.startswith("path_refused") for e in errors), errors


def test_serving_reads_paths_inside_the_root_only(root, secret):
    from oanet.config import ServeConfig
    from oanet.serving import read_inputs

    (root / "link-out.png").symlink_to(secret)                # a link inside the root that leaves it
    (root / "link-in.png").symlink_to(root / "unit.png")
    frame = pd.DataFrame({"path": ["unit.png", str(root / "unit.png"), "link-in.png", str(secret),
                                   "../outside/secret.png", "link-out.png", "sub/../unit.png", "missing.png"]})
    data = [d for _, d in read_inputs(frame, ServeConfig(path_root=str(root)))]
    assert data[:3] == [_small_png()] * 3
    assert [d.reason for d in data[3:]] == ["path_refused"] * 4 + ["missing_file"]


def test_serving_settings_come_from_the_environment_checked():
    from oanet.config import ConfigError
    from oanet.serving import serve_config

    assert serve_config({}).path_root is None                  # default: no file is read by path
    cfg = serve_config({"OANET_SERVE_PATH_ROOT": "/srv/aoi", "OANET_SERVE_MAX_IMAGE_BYTES": "1000"})
    assert (cfg.path_root, cfg.max_image_bytes) == ("/srv/aoi", 1000)
    with pytest.raises(ConfigError, match="max_image_pixels"):
        serve_config({"OANET_SERVE_MAX_IMAGE_PIXELS": "lots"})


# --- finding 10: size limits, one refused row each, never a failed batch -----------------------

def test_serving_refuses_a_large_base64_payload_before_decoding_it():
    errors = _served(pd.DataFrame({"image_b64": ["A" * 4000, _b64(_small_png())]}), _pipeline(max_image_bytes=1000))
    assert errors[0].startswith("too_large") and not errors[1].startswith("too_large"), errors


def test_serving_bad_base64_is_one_row_not_a_failed_batch():
    errors = _served(pd.DataFrame({"image_b64": ["not base64!", _b64(b"x")]}))
    assert errors[0].startswith("bad_base64") and errors[1], errors


@pytest.mark.parametrize("width, height", [(8_000, 8_000), (100_000, 100_000)])   # over our limit; over PIL's
def test_serving_refuses_too_many_pixels_from_the_header(width, height):
    errors = _served(pd.DataFrame({"image_b64": [_b64(_png(width, height))]}))
    assert errors[0].startswith("too_large") and "pixels" in errors[0], errors[0]


def test_serving_refuses_a_large_file_under_the_root(root):
    from oanet.config import ServeConfig
    from oanet.serving import read_inputs

    (root / "big.png").write_bytes(b"\0" * 5000)
    items = read_inputs(pd.DataFrame({"path": ["big.png"]}), ServeConfig(path_root=str(root), max_image_bytes=1000))
    assert items[0][1].reason == "too_large"


def test_serving_fusion_loading_refuses_a_decompression_bomb(tmp_path):
    from oanet.fusion.data import ImageLoadError, load_rois

    (tmp_path / "bomb.png").write_bytes(_png(100_000, 100_000))
    with pytest.raises(ImageLoadError, match="bomb.png"):
        load_rois(tmp_path, ["bomb.png"], (0, 0, 8, 8), 4)


def test_serving_fusion_loading_limit_is_configurable(tmp_path):
    from oanet.fusion.data import ImageLoadError, load_rois

    (tmp_path / "a.png").write_bytes(_small_png())
    assert load_rois(tmp_path, ["a.png"], (0, 0, 8, 8), 4).shape == (1, 1, 4, 4)
    with pytest.raises(ImageLoadError, match="8x8 pixels, over the limit of 10"):
        load_rois(tmp_path, ["a.png"], (0, 0, 8, 8), 4, max_pixels=10)
