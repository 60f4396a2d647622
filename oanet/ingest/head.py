"""Cut the recogniser's output layer down to the characters a panel can print.

The bundled PP-OCRv6 recogniser ends in a 120 -> 18,710 linear layer and a softmax over
18,708 characters (CJK, Latin, symbols), blank and space. A panel prints ASCII and the
few characters of its layout (keys, units, categories). Keeping only their columns makes
recognition faster on the value crops: the layer, its softmax and the
(batch, steps, 18,710) output the decoder scans all shrink ~190-fold.

What changes: the softmax is renormalised over the kept characters, so a score rises by
the probability the dropped ones had (measured, with the speed-up: docs/benchmarks.md,
"Measurements behind the ingest design"). A glyph outside the set is read as the
closest kept one, and then has to pass the field's pattern and range like any misread;
`ingest.charset: full` keeps the whole layer for panels that print values outside ASCII
and their layout.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from oanet.layout import Layout

PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))   # space is the model's own last class
HEAD_WEIGHT, HEAD_BIAS = "linear_8.w_0", "linear_8.b_0"


def layout_charset(layout: Layout) -> str:
    """Printable ASCII plus every character the layout itself prints or expects, sorted."""
    chars = set(PRINTABLE_ASCII)
    for f in layout.fields:
        for text in (f.key, f.unit or "", f.pattern or "", f.format or "", *(f.categories or ())):
            chars.update(text)
    chars.discard(" ")
    return "".join(sorted(chars))


def reading_charset(setting: str, layout: Layout) -> str | None:
    """The recogniser's output characters for `ingest.charset` = `setting`: None keeps them all."""
    return layout_charset(layout) if setting == "layout" else None


def charset_tag(charset: str | None) -> str:
    return "full" if charset is None else hashlib.sha256(charset.encode()).hexdigest()[:12]


def kept_classes(characters: list[str], charset: str) -> list[int]:
    """Output columns to keep: blank (0), each model character made of charset characters, space (last).

    `characters` is the model's list without blank and space: class i + 1 is characters[i].
    """
    allowed = set(charset)
    inner = [i + 1 for i, c in enumerate(characters) if c and set(c) <= allowed]
    return [0, *inner, len(characters) + 1]


def prune_head(src: Path, charset: str, dst: Path) -> Path:
    """Write `src` with its output layer cut to `charset` to `dst` (atomically); dst."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    meta = {p.key: p for p in model.metadata_props}
    inits = {i.name: i for i in model.graph.initializer}
    if "character" not in meta or HEAD_WEIGHT not in inits or HEAD_BIAS not in inits:
        raise ValueError(f"{src.name}: not the PP-OCR recogniser layout this pruning knows "
                         f"(metadata 'character', {HEAD_WEIGHT}, {HEAD_BIAS}); use ingest.charset: full")
    characters = meta["character"].value.split("\n")
    keep = kept_classes(characters, charset)
    weight = numpy_helper.to_array(inits[HEAD_WEIGHT])        # (120, n_classes)
    bias = numpy_helper.to_array(inits[HEAD_BIAS])            # (n_classes,)
    if weight.shape[1] != len(characters) + 2 or bias.shape[0] != weight.shape[1]:
        raise ValueError(f"{src.name}: output layer has {weight.shape[1]} classes for {len(characters)} "
                         f"characters + blank + space; use ingest.charset: full")
    inits[HEAD_WEIGHT].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(weight[:, keep]), HEAD_WEIGHT))
    inits[HEAD_BIAS].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(bias[keep]), HEAD_BIAS))
    meta["character"].value = "\n".join(characters[i - 1] for i in keep[1:-1])
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    if len(out_dims) == 3:
        out_dims[2].dim_value = len(keep)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(f".{os.getpid()}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, dst)   # two processes building the same file never see half of it
    return dst


def pruned_model(src: Path, charset: str, folder: Path) -> Path:
    """The pruned copy of `src` for `charset` under `folder`, built once and then reused.

    A folder that cannot be written (a read-only image) falls back to the temp folder.
    """
    name = f"{src.stem}-{charset_tag(charset)}-{src.stat().st_size}.onnx"
    for place in (folder, Path(tempfile.gettempdir()) / "oanet-pruned"):
        if (place / name).exists():
            return place / name
        try:
            return prune_head(src, charset, place / name)
        except PermissionError:
            continue
    raise PermissionError(f"cannot write the pruned recogniser to {folder} or the temp folder")
