"""One repeat of the paper's protocol: split, train every model, calibrate the gate, score every condition.

A repeat r uses its own split (split.seed + r) and model seeds (+ r). On the train rows
it fits the tabular models and, for each encoder, four networks:
  cnn     image only                       (Table 1, row 1)
  concat  image + OCR, no alignment, no refinement   (early-fusion baseline)
  align   + alignment                      (Table 1, row 2)
  fusion  + alignment + refinement         (Table 1, row 3; "OANet" without the gate)
then calibrates the gate over cnn, fusion and the tabular models on the val rows
(Table 1, row 4: "gate"), and scores the test rows under every condition: the four
scenarios of Table 2 and the sweeps over the OCR missing rate and GridMask strength.
Derived baselines: `bag` (mean of the tabular models), `best_tabular` (the tabular
model with the best val ROC AUC), `late_fusion` (noisy-OR of cnn and bag:
1 - (1 - p_cnn)(1 - p_bag), a unit is defective when its object or its process is).

Every model, baselines included, gets its decision threshold by one rule
(`oanet.metrics.choose_threshold`, floor `gate.min_accuracy`) on the same clean val rows;
the gate gets the same rule per regime on its calibration scenarios. Test rows never
choose anything.

With `staged` settings the three fusion variants take over the CNN's trained image
encoder, frozen: the image embeddings are computed once per condition and every
network scores from them, which makes a CPU profile with five repeats affordable.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from oanet.config import updated
from oanet.features import TabularSchema
from oanet.metrics import binary_metrics

VARIANTS = {"cnn": (False, False, False), "concat": (True, False, False),
            "align": (True, True, False), "fusion": (True, True, True)}   # name -> (tabular, align, refine)


def conditions(missing_rates, grid_ratios) -> dict[str, tuple[float, float]]:
    """Every test condition: name -> (OCR missing rate, GridMask ratio)."""
    from oanet.gate.members import SCENARIOS

    out = dict(SCENARIOS)
    out.update({f"missing={r:g}": (float(r), 0.0) for r in missing_rates})
    out.update({f"grid={g:g}": (0.0, float(g)) for g in grid_ratios})
    return out


def with_baselines(probs: dict[str, np.ndarray], tabular: tuple[str, ...], best_tabular: str) -> dict[str, np.ndarray]:
    from oanet.tabular.bag import bag_mean

    bag = bag_mean(probs[m] for m in tabular)
    late = 1.0 - (1.0 - probs["cnn"]) * (1.0 - bag)
    return {**probs, "bag": bag, "best_tabular": probs[best_tabular], "late_fusion": late}


def train_networks(fuse_cfg, schema: TabularSchema, images, rows: pd.DataFrame, device, echo=None) -> dict:
    """{variant: FusionBundle} trained on `rows` and their (N,1,S,S) uint8 object regions."""
    import torch

    from oanet.fusion.data import image_labels, tabular_input
    from oanet.fusion.stage import FusionBundle, train_one
    from oanet.fusion.train import TrainData, staged_training_data

    data = TrainData.build(images, tabular_input(schema, rows), rows["label"], schema.field_of_column(), device)
    training, encoder = fuse_cfg.training, fuse_cfg.network.encoder
    y_image = torch.from_numpy(image_labels(rows, training.process_defects))
    out, encoder_from = {}, None
    for name, (tabular, align, refine) in VARIANTS.items():
        cfg = updated(fuse_cfg, {"network": {"align": align, "refine": refine}})
        trained = train_one(f"{encoder}/{name}", cfg, tabular, len(schema.columns), data, device,
                            echo=echo if name == "cnn" else None,     # per-epoch lines for the long one
                            image_labels=y_image, encoder_from=encoder_from)
        out[name] = FusionBundle(name, trained.model, schema, (0, 0, 0, 0), training.image_size, {})
        if name == "cnn" and training.staged:      # the fusion variants learn on the CNN's frozen embeddings
            encoder_from = trained.model
            data = staged_training_data(trained.model, data, fuse_cfg, training.staged_views)
        if echo:
            echo(f"    {encoder:<8} {name:<7} trained in {trained.seconds:6.1f} s")
    return out


def shared_embedder(nets: dict, staged: bool):
    """With staged training every network shares the CNN's encoder: embed each image once for all."""
    if not staged:
        return None
    from oanet.fusion.train import image_embeddings

    return lambda images: image_embeddings(nets["cnn"].model, images)


def val_thresholds(y_val: np.ndarray, probs: dict[str, np.ndarray], min_accuracy: float) -> dict[str, float]:
    """{model: threshold}: the one rule of oanet.metrics on the clean val rows, for every model."""
    from oanet.metrics import choose_threshold

    return {m: choose_threshold(y_val, p, min_accuracy) for m, p in probs.items()}


def run_repeat(params, profile, table: pd.DataFrame, layout, images, r: int, device,
               echo: Callable[[str], None] | None = None) -> dict:
    """{"encoders": {enc: {condition: {model: metrics}}}, "clean_probs": {enc: {model: probs}}, ...}."""
    from oanet.fusion.data import image_labels
    from oanet.gate.calibrate import calibrate
    from oanet.gate.gate import skill_of
    from oanet.gate.members import Members, corrupt, score_scenarios
    from oanet.gate.reference import References
    from oanet.split import make_split
    from oanet.tabular.masking import FieldMasking, fit_learner

    schema = TabularSchema.from_layout(layout)
    split = make_split(table, layout, dataclasses.replace(params.split, seed=params.split.seed + r, stable=False))
    part = {p: np.flatnonzero(split["split"].to_numpy() == p) for p in ("train", "val", "test")}
    rows = {p: table.iloc[i].reset_index(drop=True) for p, i in part.items()}
    ims = {p: images[i] for p, i in part.items()}
    y = {p: rows[p]["label"].to_numpy().astype(int) for p in part}
    X_train = schema.matrix(rows["train"])
    masking = FieldMasking.from_schema(schema, params.bag.mask_prob, params.bag.mask_copies, params.bag.seed + r)
    tabular = {m: fit_learner(m, X_train, y["train"], masking, random_state=params.bag.seed + r, n_jobs=1)
               for m in params.bag.models}
    refs = References.fit(schema, rows["train"], ims["train"], ocr_bins=params.gate.ocr_bins)
    conds = conditions(params.evaluate.missing_rates, params.evaluate.grid_ratios)
    out = {"split_seed": params.split.seed + r, "rows": {p: len(i) for p, i in part.items()},
           "encoders": {}, "clean": {}, "val": {}, "gate": {}}
    for enc in profile.encoders:
        cfg = profile.fuse_config(params.fuse, enc, params.fuse.seed + r)
        nets = train_networks(cfg, schema, ims["train"], rows["train"], device, echo)
        scorer = Members(schema, tabular, nets, embed=shared_embedder(nets, cfg.training.staged))
        val = score_scenarios(scorer, refs, rows["val"], ims["val"], params.gate.scenarios, params.gate.seed + r, device)
        gate_members = ("cnn", "fusion", *tabular)
        gate, report = calibrate(y["val"], val, gate_members, quantile=params.gate.quantile,
                                 off_factors=params.gate.off_factors, temperatures=params.gate.temperatures,
                                 min_accuracy=params.gate.min_accuracy, combine=params.gate.combine,
                                 degraded_min_accuracy=params.gate.degraded_min_accuracy, cross_fit=params.gate.cross_fit)
        best = max(tabular, key=lambda m: skill_of(y["val"], val["clean"].probs[m]))
        val_probs = with_baselines(val["clean"].probs, tuple(tabular), best)
        cuts = val_thresholds(y["val"], val_probs, params.gate.min_accuracy)
        # the CNN against the object-defect label, where labels.csv's defect_type sets process defects apart
        by_object = "defect_type" in rows["val"].columns and bool(cfg.training.process_defects)
        if by_object:
            y_object = {p: image_labels(rows[p], cfg.training.process_defects) for p in ("val", "test")}
            cuts["cnn_object"] = val_thresholds(y_object["val"], {"cnn": val["clean"].probs["cnn"]},
                                                params.gate.min_accuracy)["cnn"]
        per_condition = {}
        for k, (name, (rate, ratio)) in enumerate(conds.items()):
            t, im = corrupt(schema, rows["test"], ims["test"], rate, ratio, seed=1000 * (r + 1) + k)
            probs = with_baselines(scorer.predict(t, im, device), tuple(tabular), best)
            decision = gate.decide(probs, refs.divergences(t, im))
            per_condition[name] = {**{m: binary_metrics(y["test"], p, cuts[m]) for m, p in probs.items()},
                                   **({"cnn_object": binary_metrics(y_object["test"], probs["cnn"], cuts["cnn_object"])}
                                      if by_object else {}),
                                   "gate": binary_metrics(y["test"], decision.prob, decision.threshold)}
            if name == "clean":
                out["clean"][enc] = {**{m: p.tolist() for m, p in probs.items()}, "gate": decision.prob.tolist(),
                                     "gate_decision": decision.decision.tolist(), "label": y["test"].tolist()}
        out["val"][enc] = {**{m: p.tolist() for m, p in val_probs.items()}, "label": y["val"].tolist()}
        out["encoders"][enc] = per_condition
        out["gate"][enc] = {**gate.to_dict(), "floor_met": report["floor_met"], "best_tabular": best,
                            "val_thresholds": cuts}
        if echo:
            c = per_condition["clean"]
            echo(f"  repeat {r} {enc}: recall cnn {c['cnn']['recall']:.3f} fusion {c['fusion']['recall']:.3f} "
                 f"gate {c['gate']['recall']:.3f} bag {c['bag']['recall']:.3f}")
    return out
