"""The gate: member weights from modality divergences, and the ensembled decision.

For a row with image divergence D_image and OCR divergence D_ocr (reference.py), each
modality's divergence is normalised by the clean validation rows' median B and high
quantile T: d = max(0, D - B) / (T - B), so d is 0 for a typical row, 1 at the edge of
the usual range, and counts "usual spreads" beyond it (a single row's smoothed KL never
reaches 0, so dividing D by T alone would squash every departure). Member m,
depending on the modalities M(m) (cnn: image; each tabular model: ocr; fusion: both),
gets

    on_m = all(d_mod <= k for mod in M(m))                       switched off beyond k
    w_m  = on_m * skill_m * prod_{mod in M(m)} exp(-max(0, d_mod - 1) / tau)
    w    = w / sum(w)                                             the weights sum to one
    p    = sum_m w_m p_m,   decision: p >= threshold[regime]

skill_m = max(0.01, 2 AUC_m - 1) on clean validation rows.

`combine: stack` replaces the weighted mean by stacking: a logistic model on the
members' logits, split by their modality activity a_m = on_m * prod exp(-...) (the same
divergence signal) into the part read while the modality is usual and the part read
while it is far off:

    p = sigmoid(b + sum_m [c_m a_m + e_m (1 - a_m)] logit(p_m)),   c, e, b fitted on the
                                                                  validation scenarios.

So the calibration learns, member by member, what its output is worth when its input
has drifted: nothing for a CNN fooled by an occluder, most of it for a fusion network
trained with masked OCR fields when OCR values go missing.

A mean cannot say "defective if the object OR the process is": a unit whose image
shows a crack while its process values are normal gets half the votes. The stacked
model learns that from the members' logits. When every member is off
(both modalities beyond k), the members that use only the less diverged modality are
kept (or, with `fallback` image or ocr, those of the modality calibration found more
trustworthy when both are far off), so a prediction is always made. The regime of a row
says which modalities look like training data (d <= 1): "both", "image" (the OCR is
off its usual range), "ocr" (the image is) or "neither"; each regime has its own
decision threshold, because an ensemble leaning on one modality is calibrated
differently from one reading both. k, tau and the thresholds
are calibrated on validation data (calibrate.py). The modality that drove a decision is the one with
the larger weight share (a fusion member counts half to each).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oanet.errors import OanetError

FORMAT = "oanet-gate/1"
MODALITIES = ("image", "ocr")
MIN_SKILL = 0.01
REGIMES = ("both", "image", "ocr", "neither")


class GateError(OanetError, ValueError):
    """A gate that cannot be built, loaded or applied to the members given."""


def member_modalities(name: str) -> tuple[str, ...]:
    """cnn reads the image, fusion both, every other member (a tabular model) the OCR table."""
    return {"cnn": ("image",), "fusion": ("image", "ocr")}.get(name, ("ocr",))


@dataclass(frozen=True)
class GateDecision:
    prob: np.ndarray           # (N,) ensembled defect probability
    weights: np.ndarray        # (N, M) member weights, rows sum to one
    members: tuple[str, ...]
    driver: np.ndarray         # (N,) "image" | "ocr"
    regime: np.ndarray         # (N,) "both" | "image" | "ocr": the modalities of the active members
    threshold: np.ndarray      # (N,) the decision threshold of each row's regime

    @property
    def decision(self) -> np.ndarray:
        return (self.prob >= self.threshold).astype(int)



@dataclass(frozen=True)
class Gate:
    members: tuple[str, ...]
    skill: tuple[float, ...]
    divergence_limits: Mapping[str, float]   # modality -> T (high quantile of clean divergences)
    baselines: Mapping[str, float]       # modality -> B (median of clean divergences), B < T
    off_factor: float                    # k
    temperature: float                   # tau
    threshold: Mapping[str, float]       # regime -> decision threshold on the ensembled probability
    combine: str = "mean"                # mean: skill-weighted mean | stack: logistic model on scaled logits
    coef: tuple[float, ...] = ()         # stack: (c_1..c_M, e_1..e_M, b)
    fallback: str = "calm"               # every member off: keep the calmer modality's | "image" | "ocr"

    def __post_init__(self):
        if self.fallback not in ("calm", *MODALITIES):
            raise GateError(f"gate fallback must be calm, image or ocr, got {self.fallback!r}")
        if self.combine not in ("mean", "stack"):
            raise GateError(f"gate combine must be mean or stack, got {self.combine!r}")
        if self.combine == "stack" and len(self.coef) != 2 * len(self.members) + 1:
            raise GateError(f"a stacking gate needs {2 * len(self.members) + 1} coefficients, got {len(self.coef)}")
        if len(self.members) != len(self.skill) or not self.members:
            raise GateError("a gate needs one skill per member and at least one member")
        if set(self.divergence_limits) != set(MODALITIES) or set(self.baselines) != set(MODALITIES) \
                or any(self.divergence_limits[m] <= self.baselines[m] for m in MODALITIES):
            raise GateError(f"need baseline < divergence limit for each of {MODALITIES}, got baselines "
                            f"{dict(self.baselines)}, divergence limits {dict(self.divergence_limits)}")

    def normalised(self, divergence: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, 2) d = max(0, D - B) / (T - B) per modality (columns in MODALITIES order)."""
        return np.stack([np.clip(np.asarray(divergence[mod], dtype=np.float64) - self.baselines[mod], 0.0, None)
                         / (self.divergence_limits[mod] - self.baselines[mod]) for mod in MODALITIES], axis=1)

    def regime(self, divergence: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N,) which modalities look like training data (d <= 1): both | image | ocr | neither."""
        usual = self.normalised(divergence) <= 1.0                                                   # (N, 2)
        img, ocr = usual[:, 0], usual[:, 1]
        return np.where(img & ocr, "both", np.where(img, "image", np.where(ocr, "ocr", "neither")))

    def activity(self, divergence: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, M) in [0, 1]: on_m * prod exp(-max(0, d - 1) / tau) over the member's modalities."""
        uses = np.array([[mod in member_modalities(m) for mod in MODALITIES] for m in self.members])  # (M, 2)
        dmat = self.normalised(divergence)                                                           # (N, 2)
        penalty = np.exp(-np.clip(dmat - 1.0, 0.0, None) / self.temperature) if self.temperature > 0 \
            else (dmat <= 1.0).astype(np.float64)
        factor = np.prod(np.where(uses[None], penalty[:, None, :], 1.0), axis=2)                      # (N, M)
        on = np.all(~uses[None] | (dmat[:, None, :] <= self.off_factor), axis=2)                     # (N, M)
        a = on * factor
        dead = a.sum(axis=1) <= 0
        if dead.any():                       # every member off: keep those using only the fallback modality
            calm = np.argmin(dmat[dead], axis=1) if self.fallback == "calm" \
                else np.full(int(dead.sum()), MODALITIES.index(self.fallback))                       # (n_dead,)
            only = uses[None, :, :] == (np.arange(2)[None, None, :] == calm[:, None, None])          # (n_dead, M, 2)
            keep = np.all(only, axis=2)
            keep[~keep.any(axis=1)] = True
            a[dead] = keep
        return a

    def weights(self, divergence: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, M) member weights from per-row divergences {modality: (N,)}; rows sum to one."""
        return self._weights(self.activity(divergence))

    def _weights(self, activity: np.ndarray) -> np.ndarray:
        w = activity * np.asarray(self.skill)[None]
        return w / w.sum(axis=1, keepdims=True) if len(w) else np.zeros((0, len(self.members)))

    @staticmethod
    def stack_features(probs: np.ndarray, activity: np.ndarray) -> np.ndarray:
        """(N, 2M): each member's logit (probs (N, M)) times its activity a (N, M), then times 1 - a."""
        p = np.clip(probs, 1e-4, 1 - 1e-4)
        logit = np.log(p / (1 - p))
        return np.concatenate([activity * logit, (1 - activity) * logit], axis=1)

    def decide(self, probs: Mapping[str, np.ndarray], divergence: Mapping[str, np.ndarray]) -> GateDecision:
        missing = [m for m in self.members if m not in probs]
        if missing:
            raise GateError(f"no probabilities for the gate members {missing}")
        p = np.stack([np.asarray(probs[m], dtype=np.float64) for m in self.members], axis=1)   # (N, M)
        a = self.activity(divergence)                                                         # (N, M)
        w = self._weights(a)
        share = {mod: (w * np.array([(mod in member_modalities(m)) / len(member_modalities(m))
                                     for m in self.members])).sum(axis=1) for mod in MODALITIES}
        driver = np.where(share["image"] >= share["ocr"], "image", "ocr")
        regime = self.regime(divergence)
        threshold = np.array([self.threshold.get(r, self.threshold["both"]) for r in regime], dtype=np.float64)
        if self.combine == "stack":
            z = self.stack_features(p, a) @ np.asarray(self.coef[:-1]) + self.coef[-1]
            prob = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        else:
            prob = (w * p).sum(axis=1)
        return GateDecision(prob, w, self.members, driver, regime, threshold)

    def to_dict(self) -> dict:
        return {"members": list(self.members), "skill": list(self.skill),
                "divergence_limits": dict(self.divergence_limits), "baselines": dict(self.baselines),
                "off_factor": self.off_factor, "temperature": self.temperature,
                "threshold": dict(self.threshold), "combine": self.combine, "coef": list(self.coef),
                "fallback": self.fallback}

    @classmethod
    def from_dict(cls, raw: dict) -> Gate:
        limits = raw["divergence_limits"] if "divergence_limits" in raw else raw["thresholds"]   # older gate.json
        return cls(tuple(raw["members"]), tuple(raw["skill"]), dict(limits), dict(raw["baselines"]),
                   float(raw["off_factor"]), float(raw["temperature"]),
                   {k: float(v) for k, v in raw["threshold"].items()}, raw.get("combine", "mean"),
                   tuple(float(c) for c in raw.get("coef", ())), raw.get("fallback", "calm"))


def skill_of(labels: Sequence[int], prob: np.ndarray) -> float:
    """2 AUC - 1 on validation rows, floored at MIN_SKILL (a member is never weighted negative)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels)
    if len(np.unique(y)) < 2:
        return 1.0
    return max(MIN_SKILL, 2.0 * float(roc_auc_score(y, prob)) - 1.0)


@dataclass(frozen=True)
class GateArtifact:
    """Everything the gate needs at inference, saved as one JSON file next to the models."""
    gate: Gate
    references: object   # oanet.gate.reference.References
    calibration: dict    # what was searched and what was found

    def decide(self, probs: Mapping[str, np.ndarray], table, images) -> GateDecision:
        return self.gate.decide(probs, self.references.divergences(table, images))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"format": FORMAT, "gate": self.gate.to_dict(),
                                    "references": self.references.to_dict(), "calibration": self.calibration},
                                   indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> GateArtifact:
        from oanet.gate.reference import References
        from oanet.jsonsafe import read_artifact

        raw = read_artifact(path, FORMAT, "gate artifact", GateError, "run the gate stage")
        return cls(Gate.from_dict(raw["gate"]), References.from_dict(raw["references"]), raw.get("calibration", {}))
