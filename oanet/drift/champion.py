"""What the models did with a set of rows: the gate's view of the two modalities and the decisions.

Reported beside the drift so the report says what drifted and what the pipeline did about
it: the share of rows where a modality left its usual range (the gate down-weights its
members) or passed the off limit (the gate switches them off), the defect rate and the
mean defect probability.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def champion_view(bag_dir: str | Path, fusion_dir: str | Path, gate_path: str | Path, table: pd.DataFrame,
                  data_dir: str | Path, object_roi) -> dict:
    """{defect_rate, mean_prob, <modality>_unusual, <modality>_off} over `table`'s rows ({} when no rows)."""
    from oanet.fusion.data import load_rois
    from oanet.gate.gate import MODALITIES, GateArtifact
    from oanet.gate.members import load_members

    if not len(table):
        return {}
    members, artifact = load_members(bag_dir, fusion_dir), GateArtifact.load(gate_path)
    images = load_rois(data_dir, table["image"].tolist(), tuple(object_roi), members.image_size)
    decision = artifact.decide(members.predict(table, images), table, images)
    d = artifact.gate.normalised(artifact.references.divergences(table, images))       # (N, 2)
    view = {"rows": len(table), "defect_rate": float(decision.decision.mean()), "mean_prob": float(decision.prob.mean())}
    for k, mod in enumerate(MODALITIES):
        view[f"{mod}_unusual"] = float(np.mean(d[:, k] > 1.0))
        view[f"{mod}_off"] = float(np.mean(d[:, k] > artifact.gate.off_factor))
    return view
