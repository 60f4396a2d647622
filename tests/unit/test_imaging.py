"""One image, one array: ingest and serving (oanet.ingest.inventory.decode) and the image branch's
training loader (oanet.fusion.data) see an EXIF-turned or 16-bit image alike."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from oanet.fusion.data import _load_one, roi_of
from oanet.ingest.inventory import decode
from oanet.synth.aoi_layout import aoi_v1_layout

LAYOUT = aoi_v1_layout()


def _upright(seed: int = 0) -> np.ndarray:
    """A 640x480 gray image with structure everywhere (the object box and the panel)."""
    rng = np.random.default_rng(seed)
    return (rng.random((480, 640)) * 200 + 20).astype(np.uint8)


def _saved(kind: str, arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    if kind == "16-bit":
        Image.fromarray(arr.astype(np.uint16) * 257).save(buf, format="PNG")
    else:                                                  # stored turned, with the EXIF tag that turns it back
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(arr).transpose(Image.Transpose.ROTATE_90).save(buf, format="PNG", exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["16-bit", "exif-turned"])
def test_training_reads_the_same_object_crop_as_ingest_and_serving(kind, tmp_path):
    arr = _upright()
    path = tmp_path / "u.png"
    path.write_bytes(_saved(kind, arr))
    served = decode(path.read_bytes(), LAYOUT, 0.0)
    assert isinstance(served, np.ndarray) and np.array_equal(served, arr)
    trained = _load_one(path, LAYOUT.object_roi, 64)
    assert np.array_equal(trained, roi_of(served, LAYOUT.object_roi, 64))
