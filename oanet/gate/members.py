"""The gate's members loaded from the bag and fuse stages' outputs, scored together.

`Members.predict` takes OCR rows and their decoded object regions and returns every
member's defect probability; `score_scenarios` does that for the clean inputs and for
the corrupted copies the gate is calibrated and evaluated on.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.features import TabularSchema
from oanet.gate.calibrate import Scenario
from oanet.gate.gate import GateError
from oanet.perturb import TABLE2_GRID_RATIO, TABLE2_MISSING_RATE, drop_ocr_values, grid_mask_images

NETWORKS = ("cnn", "fusion")


@dataclass
class Members:
    schema: TabularSchema
    tabular: dict[str, object]          # registry name -> fitted estimator (predict_proba on schema.matrix)
    networks: dict[str, object]         # "cnn" / "fusion" -> FusionBundle
    embed: Callable | None = None       # images -> (N, Di) embeddings all networks share (staged training)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.networks) + tuple(self.tabular)

    @property
    def image_size(self) -> int:
        return next(iter(self.networks.values())).image_size

    @property
    def object_roi(self) -> tuple[int, int, int, int]:
        return next(iter(self.networks.values())).object_roi

    def predict(self, table: pd.DataFrame, images, device: str = "cpu") -> dict[str, np.ndarray]:
        """{member: (N,) probability} for OCR rows `table` and their object regions (N,1,S,S) uint8."""
        x = self.embed(images.to(device)) if self.embed is not None else images
        out = {name: bundle.predict_images(x, table, device) for name, bundle in self.networks.items()}
        if self.tabular:
            X = self.schema.matrix(table)
            out.update({name: model.predict_proba(X)[:, 1] for name, model in self.tabular.items()})
        return out


def load_members(bag_dir: str | Path, fusion_dir: str | Path) -> Members:
    from oanet.fusion.stage import load_bundle
    from oanet.tabular.stage import load_bag

    paths = {name: Path(fusion_dir) / f"{name}.pt" for name in NETWORKS}
    absent = [str(p) for p in paths.values() if not p.exists()]
    if absent:
        raise GateError(f"trained networks not found: {absent}; run the fuse stage")
    networks = {name: load_bundle(p) for name, p in paths.items()}
    schema, bag = load_bag(bag_dir)
    if schema != networks["fusion"].schema:
        raise GateError(f"the bag in {bag_dir} and the fusion model in {fusion_dir} were trained on different "
                        "OCR columns; rerun both stages")
    return Members(schema, dict(bag.estimators_), networks)


SCENARIOS = {"clean": (0.0, 0.0), "ocr_loss": (TABLE2_MISSING_RATE, 0.0), "gridmask": (0.0, TABLE2_GRID_RATIO),
             "both": (TABLE2_MISSING_RATE, TABLE2_GRID_RATIO)}     # name -> (OCR missing rate, GridMask ratio)


def corrupt(schema: TabularSchema, table: pd.DataFrame, images, missing_rate: float, grid_ratio: float, seed: int):
    """(table, images) with `missing_rate` of the OCR values dropped and GridMask at `grid_ratio`."""
    if missing_rate > 0:
        table = drop_ocr_values(table, schema.fields, missing_rate, seed)
    if grid_ratio > 0:
        images = grid_mask_images(images, grid_ratio, seed + 1)
    return table, images


def scenario_setting(name: str) -> tuple[float, float]:
    if name not in SCENARIOS:
        raise GateError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def score_scenarios(members: Members, references, table: pd.DataFrame, images, names, seed: int,
                    device: str = "cpu") -> Mapping[str, Scenario]:
    """{scenario: Scenario(member probabilities, modality divergences)} for the given rows.

    `references`: a fitted `oanet.gate.reference.References`.
    """
    out = {}
    for name in names:
        t, im = corrupt(members.schema, table, images, *scenario_setting(name), seed)
        out[name] = Scenario(members.predict(t, im, device), references.divergences(t, im))
    return out
