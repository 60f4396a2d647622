"""The MLflow pyfunc model `oanet`: a table of AOI images in, one decision per image out.

Input: a DataFrame with an `image_b64` column (base64-encoded image bytes, for REST) or a
`path` column (read only under OANET_SERVE_PATH_ROOT on the server: `oanet.serving.read_inputs`).
Output: `oanet.serving.OUTPUT_COLUMNS` (probability, decision at the stored threshold, member
weights, the driving modality, the parsed OCR fields with their reason codes, and an error for
unusable or refused inputs).

Inside the model: the bundle folder (layout, OCR settings, tabular models, networks
with their PCA, the gate) as an artifact, and the `oanet` package as code, so a model
version is complete on its own; requirements pin the project's versions.
"""
from __future__ import annotations

import base64
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
# What the model needs at inference (no training-only stack: prefect, dvc, great-expectations, catboost
# only if a bag member is CatBoost, which it is by default).
SERVING_REQUIREMENTS = ("torch", "torchvision", "numpy", "pandas", "pyarrow", "scikit-learn", "lightgbm", "catboost",
                        "cnocr", "cnstd", "rapidocr", "onnxruntime", "pillow", "pyyaml", "mlflow", "joblib")


class OanetModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper around `oanet.serving.DefectPipeline`."""

    def load_context(self, context):
        from oanet.env import apply_offline_defaults
        from oanet.serving import DefectPipeline

        apply_offline_defaults()
        self.pipeline = DefectPipeline.load(context.artifacts["bundle"], device="auto")

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from oanet.serving import read_inputs

        # a REST caller names no server file: `path` is read only under the configured root
        return self.pipeline.predict(read_inputs(model_input, self.pipeline.serve))


def pinned_requirements(names=SERVING_REQUIREMENTS, path: Path = REPO / "requirements.txt") -> list[str]:
    """The project's pins (requirements.txt) for the packages the model imports at inference."""
    import re

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        m = re.match(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        if m:
            pins[m.group(1).lower()] = line
    out = [pins.get(n.lower(), n) for n in names]
    return out


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from oanet.serving import OUTPUT_COLUMNS

    types = {"prob": "double", "decision": "long", "threshold": "double"}
    return ModelSignature(
        inputs=Schema([ColSpec("string", "path", required=False), ColSpec("string", "image_b64", required=False)]),
        outputs=Schema([ColSpec(types.get(c, "string"), c) for c in OUTPUT_COLUMNS]))


def log_oanet_model(bundle_dir: str | Path, example_image: str | Path, name: str = "model"):
    """Log the pyfunc model in the active run; returns mlflow's ModelInfo."""
    import shutil
    import tempfile

    example = pd.DataFrame({"path": [Path(example_image).name],
                            "image_b64": [base64.b64encode(Path(example_image).read_bytes()).decode()]})
    with tempfile.TemporaryDirectory() as tmp:
        # MLflow keeps a folder artifact's own name inside the model but hands load_context
        # the key's path (artifacts/<key>): the folder must be named like the key.
        bundle = Path(tmp) / "bundle"
        shutil.copytree(bundle_dir, bundle)
        return mlflow.pyfunc.log_model(
            name=name, python_model=OanetModel(), artifacts={"bundle": str(bundle)},
            code_paths=[str(REPO / "oanet"), str(REPO / "flows")], signature=signature(), input_example=example,
            pip_requirements=pinned_requirements())
