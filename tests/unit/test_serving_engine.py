"""The serving pipeline reads panels with the recogniser its training ingest used."""
from __future__ import annotations

from oanet.ingest.head import layout_charset
from oanet.serving import DefectPipeline
from oanet.synth.aoi_layout import aoi_v1_layout


def _pipeline(ingest: dict) -> DefectPipeline:
    return DefectPipeline(aoi_v1_layout(), ingest, members=None, gate=None)


def test_bundle_with_layout_charset_reads_only_the_layout_characters():
    ocr = _pipeline({"rec_model": "multi_PP-OCRv6_small", "charset": "layout"}).ocr
    assert ocr.charset == layout_charset(aoi_v1_layout())
    assert ocr._cnocr is None                                  # built lazily, on the first panel


def test_bundle_from_before_charset_reads_every_character():
    assert _pipeline({"rec_model": "multi_PP-OCRv6_small"}).ocr.charset is None
    assert _pipeline({"rec_model": "multi_PP-OCRv6_small", "charset": "full"}).ocr.charset is None
