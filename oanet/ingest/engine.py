"""CnOCR on the models that ship inside the rapidocr wheel: nothing is downloaded.

CnOCR 2.3.3 fetches models on first use; the rapidocr 3.9.2 wheel carries PP-OCRv6
small detection and recognition models, which CnOCR accepts as explicit files.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oanet.errors import OanetError
from oanet.ingest.crops import pad_with_background

DET_MODEL_NAME = "multi_PP-OCRv6_det_small"
REC_FILES = {"multi_PP-OCRv6_small": "PP-OCRv6_rec_small.onnx"}
DET_FILE = "PP-OCRv6_det_small.onnx"
REC_IMAGE_SHAPE = "3, 48, 48"
_BUILD_LOCK = threading.Lock()
WIDTH_STEP = 4   # crop widths are rounded up to this: few distinct shapes, little added width


def widen_to_step(crop: np.ndarray, step: int = WIDTH_STEP) -> np.ndarray:
    """The crop with background columns added on the right up to a multiple of `step` px."""
    return pad_with_background(crop, 0, -crop.shape[1] % step)


class OcrEngineError(OanetError, RuntimeError):
    """The OCR engine could not be built or returned something unusable."""


def bundled_models_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise OcrEngineError("rapidocr is not installed; `pip install rapidocr==3.9.2` (3.10 breaks cnocr)")
    return Path(spec.origin).parent / "models"


def model_files(rec_model: str) -> tuple[Path, Path]:
    if rec_model not in REC_FILES:
        raise OcrEngineError(f"unknown recognition model {rec_model!r}; bundled: {sorted(REC_FILES)}")
    folder = bundled_models_dir()
    rec, det = folder / REC_FILES[rec_model], folder / DET_FILE
    for path in (rec, det):
        if not path.exists():
            raise OcrEngineError(f"bundled OCR model missing: {path}")
    return rec, det


def engine_fingerprint(rec_model: str, charset: str | None = None) -> str:
    """Identifies the exact recogniser (model, input shape, output characters): a cache never mixes two."""
    from oanet.ingest.head import charset_tag

    rec, _ = model_files(rec_model)
    return f"{rec_model}:{rec.stat().st_size}:{REC_IMAGE_SHAPE}:{charset_tag(charset)}"


@dataclass
class Read:
    text: str
    score: float
    box: tuple[int, int, int, int] | None = None   # detector path: where the text was found
    estimated_box: bool = False     # a piece of a detected line that prints several fields: box by its characters


class Ocr:
    """A CnOcr instance built lazily on the bundled models.

    `stock=True` keeps CnOCR's own recogniser settings: the baseline the benchmark compares with.
    `threads` caps onnxruntime's threads per model (0: its default, one per core); ingest and
    Dask workers set 1, so N single-threaded engines share N cores instead of fighting over them.
    `charset` (not with `stock`) keeps only those output characters (see head.py); None: all.
    """

    def __init__(self, rec_model: str = "multi_PP-OCRv6_small", cache_root: str | Path = ".cache/cnocr",
                 stock: bool = False, threads: int = 0, charset: str | None = None):
        if stock and charset is not None:
            raise ValueError("a stock engine keeps CnOCR's whole recogniser: no charset")
        self.rec_model = rec_model
        self.cache_root = Path(cache_root)
        self.stock = stock
        self.threads = threads
        self.charset = charset
        self._cnocr = None

    @property
    def fingerprint(self) -> str:
        return engine_fingerprint(self.rec_model, self.charset)

    @property
    def cnocr(self):
        with _BUILD_LOCK:   # engines first used on several threads at once: one import, one build each
            if self._cnocr is None:
                self._cnocr = self._build()
        return self._cnocr

    def _build(self):
        from cnocr import CnOcr  # heavy: pulls in torch (docs/benchmarks.md, "Where the OCR time goes")

        rec, det = model_files(self.rec_model)
        if self.charset is not None:
            from oanet.ingest.head import pruned_model

            rec = pruned_model(rec, self.charset, self.cache_root / "pruned")
        threads = {"intra_op_num_threads": self.threads, "inter_op_num_threads": 1} if self.threads else {}
        tuned = {} if self.stock else {"rec_image_shape": REC_IMAGE_SHAPE}
        return CnOcr(
            rec_model_name=self.rec_model, rec_model_fp=str(rec), rec_lang_type="en",
            det_model_name=DET_MODEL_NAME, det_model_fp=str(det),
            rec_root=str(self.cache_root / "rec"), det_root=str(self.cache_root / "det"),
            # The stock shape (3, 48, 320) pads every crop to 320 px wide; recognition time
            # grows with width, so short value crops would pay for a whole line. With a square
            # minimum each batch keeps its crops' own width (one shape per batch: recognize).
            # Crop shapes vary from batch to batch: the memory arena saves re-allocations.
            rec_more_configs={**tuned, "engine_cfg": {**threads, **({} if self.stock else
                                                                      {"enable_cpu_mem_arena": True})}},
            det_more_configs={"engine_cfg": threads},
        )

    def recognize(self, crops: list[np.ndarray], batch_size: int = 64) -> list[Read]:
        """Recognise single-line crops (h, w) uint8. One Read per crop, in order.

        A crop reads the same whatever crops share the call: each is widened with its own
        background to a multiple of WIDTH_STEP px, and only crops of one shape share a
        batch, so the recogniser never pads a crop to a batch-mate's width with gray
        (which moved scores by up to 0.1). Same speed as batching mixed widths.
        """
        widened = [widen_to_step(c) for c in crops]
        by_shape: dict[tuple, list[int]] = {}
        for i, crop in enumerate(widened):
            by_shape.setdefault(crop.shape, []).append(i)
        reads: list[Read] = [Read("", 0.0)] * len(crops)
        for members in by_shape.values():
            for i, read in zip(members, self._recognize_alike([widened[i] for i in members], batch_size), strict=True):
                reads[i] = read
        return reads

    def _recognize_alike(self, crops: list[np.ndarray], batch_size: int) -> list[Read]:
        # CnOcr's recogniser fails on (h, w, 1) input and swallows the error, returning [];
        # three channels work, and the length check below catches any other silent failure.
        rgb = [np.repeat(c[:, :, None], 3, axis=2) if c.ndim == 2 else c for c in crops]
        out = self.cnocr.ocr_for_single_lines(rgb, batch_size=batch_size)
        if len(out) != len(crops):
            raise OcrEngineError(f"recogniser returned {len(out)} results for {len(crops)} crops")
        return [Read(str(o["text"]), float(o["score"])) for o in out]

    def detect_and_recognize(self, image: np.ndarray) -> list[Read]:
        """Full CnOCR: text detection on the whole image, then recognition of each line."""
        rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image
        out = self.cnocr.ocr(rgb, rec_batch_size=32)
        return [Read(str(o["text"]), float(o["score"]), box_of(o["position"])) for o in out]


def box_of(position) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of a CnOCR text polygon (pieces of one line are joined by position)."""
    pos = np.asarray(position)
    return int(pos[:, 0].min()), int(pos[:, 1].min()), int(pos[:, 0].max()), int(pos[:, 1].max())


def settings_hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
