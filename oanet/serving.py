"""One deployable model: raw AOI image bytes in, a decision with its reasons out.

A *bundle* is a folder with everything the decision needs, copied from the stages'
outputs so it can be versioned and shipped as one artifact:

    layout.yaml   the layout contract (where each field and the object sit)
    ingest.json   the OCR settings (recogniser, confidence floor, crop padding, blank-panel test)
    bag/          the tabular models (bag stage)
    fusion/       cnn.pt and fusion.pt (fuse stage)
    gate.json     the calibrated gate (gate stage)
    bundle.json   format, creation time, members

`DefectPipeline.load(folder).predict([(name, bytes), ...])` decodes each image, OCRs its
panel, parses the fields (value and reason code each), scores every member and lets
the gate decide. An image that cannot be used still gets a row, with `error` set to
the quarantine reason, so every input is accounted for; a blank panel is not an error:
its fields are all missing (reason `blank_panel`) and the image members decide.
This module knows nothing of MLflow; the pyfunc wrapper lives in flows/.

What a server accepts (`ServeConfig`, from OANET_SERVE_* on the serving host): images as
`image_b64`; a `path` only under OANET_SERVE_PATH_ROOT (unset: none), checked on the
resolved path so `..` and symbolic links cannot leave it; an image of at most
max_image_bytes and max_image_pixels (read from its header, before decoding). A refused
input gets its own row with the reason (`path_refused`, `too_large`, `bad_base64`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import ServeConfig, from_dict
from oanet.errors import OanetError

FORMAT = "oanet-bundle/1"
OUTPUT_COLUMNS = ("image", "prob", "decision", "threshold", "driver", "weights", "fields", "error")
ENV_PREFIX = "OANET_SERVE_"
PATH_REFUSED, TOO_LARGE, BAD_BASE64, MISSING_FILE = "path_refused", "too_large", "bad_base64", "missing_file"


class BundleError(OanetError, ValueError):
    """A bundle folder that is missing a part or was written by something else."""


def package_bundle(out_dir: str | Path, layout_path, ingest_cfg, bag_dir, fusion_dir, gate_path,
                   drift_reference=None) -> Path:
    """Copy the stages' outputs into one bundle folder; returns it. `drift_reference` (optional) travels
    with the models, so a night can be compared with what the champion learned on (`oanet drift --against`)."""
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for src, name in ((layout_path, "layout.yaml"), (gate_path, "gate.json")):
        if not Path(src).is_file():
            raise BundleError(f"cannot bundle: {src} not found (run the stages first)")
        shutil.copy(src, out / name)
    for src, name in ((bag_dir, "bag"), (fusion_dir, "fusion")):
        if not Path(src).is_dir():
            raise BundleError(f"cannot bundle: {src} not found (run the stages first)")
        shutil.copytree(src, out / name)
    if drift_reference and Path(drift_reference).is_file():
        shutil.copy(drift_reference, out / "drift_reference.json")
    keep = ("rec_model", "charset", "min_confidence", "batch_size", "crop_pad", "blank_panel_std")
    (out / "ingest.json").write_text(json.dumps({k: getattr(ingest_cfg, k) for k in keep}, indent=1))
    gate = json.loads((out / "gate.json").read_text())["gate"]
    (out / "bundle.json").write_text(json.dumps({"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                           time.gmtime()),
                                                 "members": gate["members"]}, indent=1))
    return out


def serve_config(environ: Mapping[str, str] | None = None) -> ServeConfig:
    """ServeConfig's defaults, overridden by OANET_SERVE_<KEY> (e.g. OANET_SERVE_PATH_ROOT=/srv/aoi)."""
    import yaml

    environ = os.environ if environ is None else environ
    raw = {}
    for f in dataclasses.fields(ServeConfig):
        text = environ.get(ENV_PREFIX + f.name.upper())
        if text:      # a folder stays text (YAML would read a folder named `on` as true); numbers are parsed
            raw[f.name] = text if f.name == "path_root" else yaml.safe_load(text)
    return from_dict(ServeConfig, raw, "serve (OANET_SERVE_*)")


def _refused(reason: str, detail: str):
    from oanet.ingest.inventory import Rejected

    return Rejected("", reason, detail)


def image_size_problem(data: bytes, cfg: ServeConfig) -> str | None:
    """Why an encoded image is too large to decode here, from its length and header; None if it is not."""
    import io
    import warnings

    from PIL import Image

    if len(data) > cfg.max_image_bytes:
        return f"{len(data)} bytes, over the limit of {cfg.max_image_bytes} (OANET_SERVE_MAX_IMAGE_BYTES)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Image.DecompressionBombError as err:
        return str(err)
    except (OSError, SyntaxError, ValueError):
        return None                                  # not an image at all: decoding says why
    if width * height > cfg.max_image_pixels:
        return (f"{width}x{height} pixels, over the limit of {cfg.max_image_pixels} "
                f"(OANET_SERVE_MAX_IMAGE_PIXELS)")
    return None


def read_path(path: str, cfg: ServeConfig):
    """The bytes of a file under cfg.path_root, or a Rejected: no root, outside it, too large."""
    if cfg.path_root is None:
        return _refused(PATH_REFUSED, "this server reads no files by path; send the image as image_b64")
    root = Path(cfg.path_root).resolve()
    try:
        target = (root / path).resolve()            # follows every symbolic link before the check
    except (OSError, ValueError):                   # a NUL byte, a name too long, a link loop
        target = None
    if target is None or ".." in Path(path).parts or not target.is_relative_to(root):
        return _refused(PATH_REFUSED, "the path is outside the folder this server reads")
    if not target.is_file():
        return _refused(MISSING_FILE, "no image file at this path")
    size = target.stat().st_size
    if size > cfg.max_image_bytes:
        return _refused(TOO_LARGE, f"{size} bytes, over the limit of {cfg.max_image_bytes}")
    return target.read_bytes()


def _from_base64(text: str, cfg: ServeConfig):
    import base64
    import binascii

    if len(text) // 4 * 3 > cfg.max_image_bytes:     # refused before decoding it
        return _refused(TOO_LARGE, f"{len(text)} base64 characters, over {cfg.max_image_bytes} bytes")
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError) as err:
        return _refused(BAD_BASE64, f"image_b64 is not base64: {err}")


def read_inputs(frame: pd.DataFrame, cfg: ServeConfig) -> list[tuple[str, object]]:
    """(name, bytes or Rejected) per row: `image_b64` where given, else the file at `path` if cfg allows it."""
    if not {"path", "image_b64"} & set(frame.columns):
        raise ValueError("the input table needs a `path` or an `image_b64` column")
    items = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        b64, path = row.get("image_b64"), row.get("path")
        name = path if isinstance(path, str) and path else f"row-{i}"
        if isinstance(b64, str) and b64:
            items.append((name, _from_base64(b64, cfg)))
        elif isinstance(path, str) and path:
            items.append((name, read_path(path, cfg)))
        else:
            items.append((name, b""))
    return items


@dataclass
class DefectPipeline:
    layout: object                  # Layout
    ingest: dict                    # ingest.json
    members: object                 # oanet.gate.members.Members
    gate: object                    # GateArtifact
    device: str = "cpu"
    serve: ServeConfig = ServeConfig()
    _ocr: object = None

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto", serve: ServeConfig | None = None) -> DefectPipeline:
        """`serve`: what predict accepts (default: serve_config(), from the environment)."""
        from oanet.device import resolve_device
        from oanet.gate.gate import GateArtifact
        from oanet.gate.members import load_members
        from oanet.layout import load_layout

        folder = Path(folder)
        meta = folder / "bundle.json"
        if not meta.is_file() or json.loads(meta.read_text()).get("format") != FORMAT:
            raise BundleError(f"{folder} is not an OANet model bundle ({FORMAT}; bundle.json missing or different)")
        return cls(load_layout(folder / "layout.yaml"), json.loads((folder / "ingest.json").read_text()),
                   load_members(folder / "bag", folder / "fusion"), GateArtifact.load(folder / "gate.json"),
                   str(resolve_device(device)), serve or serve_config())

    @property
    def ocr(self):
        if self._ocr is None:                          # cnocr takes seconds to import: only when needed
            from oanet.ingest.engine import Ocr
            from oanet.ingest.head import reading_charset

            # Read as training's ingest did; bundles from before `charset` existed used the whole model.
            charset = reading_charset(self.ingest.get("charset", "full"), self.layout)
            self._ocr = Ocr(self.ingest["rec_model"], charset=charset)
        return self._ocr

    def read_fields(self, panels: list[np.ndarray]) -> list[dict[str, dict]]:
        """{field: {"value", "text", "confidence", "reason"}} for each decoded image (panel has text)."""
        from oanet.config import IngestConfig
        from oanet.ingest.parse import parse_stored
        from oanet.ingest.reading import read_images

        verify_below = self.ingest.get("verify_below", IngestConfig.verify_below)   # bundles from before it existed
        reads = read_images(self.ocr, panels, self.layout, self.ingest["crop_pad"], self.ingest["batch_size"],
                            verify_below) if panels else []
        out = []
        for per_image in reads:
            row = {}
            for f, pair in zip(self.layout.fields, per_image, strict=True):
                text, conf = pair[:2] if pair else (None, None)
                parsed = parse_stored(f, pair, self.ingest["min_confidence"])
                row[f.name] = {"value": parsed.value, "text": text, "confidence": conf, "reason": parsed.reason}
            out.append(row)
        return out

    def decode(self, data):
        """(h, w) uint8, or a Rejected: too large for self.serve, or not a usable image."""
        from oanet.ingest import inventory as inv

        if isinstance(data, inv.Rejected):               # refused while reading the input (read_inputs)
            return data
        problem = image_size_problem(data, self.serve)
        if problem:
            return inv.Rejected("", TOO_LARGE, problem)
        return inv.decode(data, self.layout, 0.0)       # 0: a blank panel is decided on in predict, not rejected

    def predict(self, items: Sequence[tuple[str, object]]) -> pd.DataFrame:
        """One row per input (name, bytes or an input's Rejected), in order: OUTPUT_COLUMNS (weights and
        fields as JSON strings)."""
        from oanet.fusion.data import roi_of
        from oanet.ingest import inventory as inv

        rows, good = [], []
        for name, data in items:
            arr = self.decode(data)
            if isinstance(arr, inv.Rejected):
                rows.append({"image": name, "error": arr.reason, "detail": arr.detail})
                continue
            blank = inv.panel_std(arr, self.layout) < self.ingest["blank_panel_std"]
            rows.append({"image": name, "error": "", "blank": blank})
            good.append((len(rows) - 1, arr, blank))
        texts = iter(self.read_fields([arr for _, arr, blank in good if not blank]))
        for i, _, blank in good:
            rows[i]["fields"] = ({f.name: {"value": None, "text": None, "confidence": None, "reason": inv.BLANK_PANEL}
                                  for f in self.layout.fields} if blank else next(texts))
        if good:
            self._decide(rows, [i for i, _, _ in good],
                         np.stack([roi_of(arr, self.members.object_roi, self.members.image_size)
                                   for _, arr, _ in good])[:, None])
        return pd.DataFrame([_output_row(r) for r in rows], columns=list(OUTPUT_COLUMNS))

    def _decide(self, rows: list[dict], index: list[int], rois: np.ndarray) -> None:
        import torch

        table = pd.DataFrame({f.name: pd.array([rows[i]["fields"][f.name]["value"] for i in index],
                                               dtype="float64" if f.dtype in ("float", "int") else "string")
                              for f in self.layout.fields})
        images = torch.from_numpy(rois)                                   # (N, 1, S, S) uint8
        decision = self.gate.decide(self.members.predict(table, images, self.device), table, images)
        for k, i in enumerate(index):
            rows[i].update(prob=float(decision.prob[k]), driver=str(decision.driver[k]),
                           weights=dict(zip(decision.members, map(float, decision.weights[k]), strict=True)),
                           threshold=float(decision.threshold[k]))


def _output_row(r: dict) -> dict:
    ok = not r["error"]
    return {"image": r["image"], "prob": r.get("prob", np.nan),
            "decision": int(r["prob"] >= r["threshold"]) if ok else -1,
            "threshold": r.get("threshold", np.nan), "driver": r.get("driver", ""),
            "weights": json.dumps(r.get("weights", {})),
            "fields": json.dumps({k: {kk: vv for kk, vv in v.items() if kk in ("value", "reason")}
                                  for k, v in r.get("fields", {}).items()}, default=_json_default),
            "error": r["error"] if ok else f"{r['error']}: {r.get('detail', '')}".rstrip(": ")}


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return str(obj)
