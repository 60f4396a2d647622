"""The KL-divergence gate: references, weights, fallbacks, calibration, the saved artifact."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from oanet.features import TabularSchema
from oanet.gate.calibrate import Scenario, calibrate
from oanet.gate.gate import Gate, GateArtifact, GateError, member_modalities
from oanet.gate.reference import References, smoothed_kl
from oanet.gate.stage import GateResult
from oanet.perturb import drop_ocr_values, grid_mask_images

SCHEMA = TabularSchema(numeric=("temp", "press"), categories=(("stn", ("A", "B")),))
MEMBERS = ("cnn", "fusion", "lightgbm", "gbm")


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"temp": rng.normal(1120, 8, n), "press": rng.normal(48, 1.2, n),
                         "stn": rng.choice(["A", "B"], n)})


def images(n: int, seed: int = 0) -> torch.Tensor:
    """Smooth gray textures around level 120, like a brushed tile: (n,1,32,32) uint8."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (n, 1, 8, 8))
    up = np.kron(base, np.ones((4, 4)))                                  # blocky, low-gradient texture
    return torch.from_numpy(np.clip(120 + 12 * up + rng.normal(0, 2, up.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def refs() -> References:
    return References.fit(SCHEMA, table(400), images(400))


@pytest.fixture(scope="module")
def gate(refs) -> Gate:
    clean = refs.divergences(table(100, 1), images(100, 1))
    limits = {m: float(np.quantile(v, 0.99)) for m, v in clean.items()}
    baselines = {m: float(np.median(v)) for m, v in clean.items()}
    return Gate(MEMBERS, (0.2, 0.8, 0.7, 0.6), limits, baselines, off_factor=2.0, temperature=1.0,
                threshold={"both": 0.5, "image": 0.4, "ocr": 0.6})


def test_smoothed_kl_is_zero_for_the_reference_and_grows_with_surprise():
    ref = np.array([0.5, 0.3, 0.2])
    assert smoothed_kl(ref * 1000, ref) == pytest.approx(0.0, abs=1e-9)
    assert smoothed_kl(np.array([0, 0, 1.0]), ref) > smoothed_kl(np.array([1.0, 0, 0]), ref) > 0


def test_ocr_reference_scores_missing_and_unknown_values_as_surprising(refs):
    usual = refs.ocr.divergence(table(50, 2))
    blank = table(5, 3).assign(temp=np.nan, press=np.nan, stn=None)
    odd = table(5, 4).assign(stn="Z", temp=2000.0)
    assert refs.ocr.divergence(blank).min() > 2 * np.quantile(usual, 0.99)
    assert refs.ocr.divergence(odd).min() > np.median(usual)
    assert refs.ocr.batch_divergence(table(400, 5)) < 0.05 < refs.ocr.batch_divergence(blank)


def test_image_reference_scores_noise_and_gridmask_as_surprising(refs):
    usual = refs.image.divergence(images(50, 6))
    noise = torch.randint(0, 256, (5, 1, 32, 32), dtype=torch.uint8)
    masked = grid_mask_images(images(5, 7), 0.6, seed=1)
    assert refs.image.divergence(noise).min() > 2 * np.quantile(usual, 0.99)
    assert refs.image.divergence(masked).min() > np.quantile(usual, 0.99)


def test_weights_sum_to_one_and_follow_skill_on_usual_rows(refs, gate):
    div = refs.divergences(table(30, 8), images(30, 8))
    w = gate.weights(div)
    assert w.shape == (30, len(MEMBERS))
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (w >= 0).all() and (w[:, 1] > w[:, 0]).mean() > 0.9          # fusion (skill .8) over cnn (.2)


def test_all_fields_missing_switches_off_every_ocr_member(refs, gate):
    rows = table(10, 9).assign(temp=np.nan, press=np.nan, stn=None)
    d = gate.decide({m: np.full(10, 0.9 if m == "cnn" else 0.1) for m in MEMBERS}, refs.divergences(rows, images(10, 9)))
    ocr_members = [j for j, m in enumerate(MEMBERS) if "ocr" in member_modalities(m)]
    assert np.all(d.weights[:, ocr_members] == 0)
    np.testing.assert_allclose(d.weights[:, 0], 1.0)
    np.testing.assert_allclose(d.prob, 0.9)                               # the image member decides
    assert set(d.driver) == {"image"} and (d.regime == "image").mean() >= 0.8   # OCR off its usual range
    assert set(d.regime) <= {"image", "neither"}                          # (an image past its 99% quantile: neither)
    np.testing.assert_allclose(d.threshold[d.regime == "image"], 0.4)     # at the image-only regime's threshold


def test_noise_image_switches_off_every_image_member(refs, gate):
    noise = torch.randint(0, 256, (10, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    d = gate.decide({m: np.full(10, 0.5) for m in MEMBERS}, refs.divergences(table(10, 10), noise))
    assert np.all(d.weights[:, :2] == 0)                                  # cnn and fusion read the image
    np.testing.assert_allclose(d.weights[:, 2:].sum(axis=1), 1.0)
    assert set(d.driver) == {"ocr"} and set(d.regime) == {"ocr"}
    assert (d.decision == 0).all()                                        # 0.5 < the OCR-only threshold 0.6


def test_both_modalities_off_falls_back_to_the_less_diverged_one(gate):
    def at(mod, spreads):     # a divergence `spreads` usual ranges beyond the median
        b, t = gate.baselines[mod], gate.divergence_limits[mod]
        return b + np.asarray(spreads, dtype=float) * (t - b)

    w = gate.weights({"image": at("image", [10, 50]), "ocr": at("ocr", [50, 10])})   # both beyond k = 2
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert w[0, 0] == 1.0                                                 # image less off: the cnn alone
    assert w[1, 0] == 0 and w[1, 1] == 0 and w[1, 2:].sum() == pytest.approx(1.0)


def test_saved_artifact_reloads_and_decides_identically(tmp_path, refs, gate):
    rows, ims = drop_ocr_values(table(40, 11), SCHEMA.fields, 0.4, seed=3), images(40, 11)
    probs = {m: np.random.default_rng(j).random(40) for j, m in enumerate(MEMBERS)}
    art = GateArtifact(gate, refs, {"note": "test"})
    loaded = GateArtifact.load(art.save(tmp_path / "gate.json"))
    a, b = art.decide(probs, rows, ims), loaded.decide(probs, rows, ims)
    np.testing.assert_array_equal(a.prob, b.prob)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert loaded.gate == gate and loaded.calibration == {"note": "test"}


def test_divergence_limits_and_the_decision_threshold_have_their_own_keys(tmp_path, refs, gate):
    import json

    saved = json.loads(GateArtifact(gate, refs, {}).save(tmp_path / "gate.json").read_text())
    assert saved["gate"]["divergence_limits"] == dict(gate.divergence_limits)
    assert saved["gate"]["threshold"] == dict(gate.threshold) and "thresholds" not in saved["gate"]
    # a gate.json written before the rename (divergence limits under "thresholds") still loads
    saved["gate"]["thresholds"] = saved["gate"].pop("divergence_limits")
    (tmp_path / "old.json").write_text(json.dumps(saved))
    assert GateArtifact.load(tmp_path / "old.json").gate == gate


def test_loading_something_else_is_a_clear_error(tmp_path):
    with pytest.raises(GateError, match="run the gate stage"):
        GateArtifact.load(tmp_path / "absent.json")
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(GateError, match="not a gate artifact"):
        GateArtifact.load(tmp_path / "x.json")


def test_calibration_meets_the_accuracy_floor_and_leans_on_the_working_member(refs):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.clip(y * 0.6 + 0.2 + rng.normal(0, 0.1, 200), 0, 1)       # an informative OCR member
    rows, ims = table(200, 12), images(200, 12)
    clean = Scenario({"cnn": rng.random(200), "fusion": good, "lightgbm": good, "gbm": good},
                     refs.divergences(rows, ims))
    lost = drop_ocr_values(rows, SCHEMA.fields, 1.0, seed=0)
    broken = Scenario({"cnn": rng.random(200), "fusion": 1 - good, "lightgbm": 1 - good, "gbm": 1 - good},
                      refs.divergences(lost, ims))                         # OCR gone: OCR members are wrong
    gate, report = calibrate(y, {"clean": clean, "ocr_loss": broken}, MEMBERS, quantile=0.99,
                             off_factors=(2.0, 1e6), temperatures=(1.0,), min_accuracy=0.7)
    assert report["floor_met"] and report["chosen"]["accuracy"] >= 0.7
    assert gate.off_factor == 2.0                                         # switching off is what pays
    assert set(gate.threshold) == {"both", "image", "ocr", "neither"}
    assert all(0.05 <= t <= 0.95 for t in gate.threshold.values())
    with pytest.raises(GateError, match="both classes"):
        calibrate(np.zeros(20), {"clean": clean}, MEMBERS, quantile=0.99, off_factors=(2.0,),
                  temperatures=(1.0,), min_accuracy=0.7)


def test_drop_ocr_values_rates_and_determinism():
    t = table(500, 13)
    assert drop_ocr_values(t, SCHEMA.fields, 0.0, 1).equals(t)
    assert drop_ocr_values(t, SCHEMA.fields, 1.0, 1)[list(SCHEMA.fields)].isna().all().all()
    a, b = drop_ocr_values(t, SCHEMA.fields, 0.6, 1), drop_ocr_values(t, SCHEMA.fields, 0.6, 1)
    assert a.equals(b) and 0.55 < a[list(SCHEMA.fields)].isna().mean().mean() < 0.65
    with pytest.raises(ValueError):
        drop_ocr_values(t, SCHEMA.fields, 1.5, 1)


def test_grid_mask_strength_is_the_masked_area():
    x = torch.full((64, 1, 48, 48), 200, dtype=torch.uint8)
    for ratio in (0.3, 0.5, 0.7):
        share = (grid_mask_images(x, ratio, seed=0) == 0).float().mean().item()
        assert abs(share - ratio ** 2) < 0.08, (ratio, share)
    assert torch.equal(grid_mask_images(x, 0.0, seed=0), x)


def test_unreachable_accuracy_floor_falls_back_to_youden_not_to_calling_everything_good():
    from oanet.metrics import choose_threshold

    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.35).astype(int)                              # a minority of defects
    p = np.clip(0.45 + 0.1 * y + rng.normal(0, 0.1, 400), 0, 1)           # a weak scorer
    t = choose_threshold(y, p, min_accuracy=0.99)                          # no threshold reaches 99%
    recall = ((p >= t) & (y == 1)).sum() / y.sum()
    assert 0.3 < recall < 1.0                                             # most-accurate would be recall ~0


def _members_under(y: np.ndarray, rows: pd.DataFrame, ims: torch.Tensor, lose_ocr: bool, mask_image: bool,
                   rng: np.random.Generator) -> dict:
    """Member probabilities as the corruptions leave them: the image member sees object defects
    (y_obj) until GridMask turns it into a flag-everything detector; the OCR members see
    process defects (y_proc) and, with OCR lost, only a weak trace of them."""
    y_obj, y_proc = y // 2, y % 2
    noise = lambda s: rng.normal(0, s, len(y))                              # noqa: E731
    cnn = np.clip(0.15 + 0.7 * y_obj + noise(0.12), 0.01, 0.99)
    if mask_image:
        cnn = np.clip(0.9 + noise(0.05), 0.01, 0.99)                         # black squares look like defects
    ocr_signal = 0.5 if lose_ocr else 0.7
    tab = np.clip(0.15 + ocr_signal * y_proc + noise(0.12), 0.01, 0.99)
    return {"cnn": cnn, "fusion": np.maximum(cnn, tab), "lightgbm": tab, "gbm": tab}


@pytest.mark.parametrize("combine", ["stack", "mean"])
def test_gate_keeps_its_accuracy_floor_under_ocr_loss_plus_gridmask_and_never_flags_everything(refs, combine):
    """Calibrated on val copies of the four scenarios with an 85% floor, the gate keeps >= 80% accuracy
    on new rows where 60% of the OCR is lost and the object GridMasked, without reaching recall by
    flagging all (the floor sits above 80%: test accuracy scatters around the val floor)."""
    def scenario_rows(n: int, seed: int):
        rng = np.random.default_rng(seed)
        y4 = rng.choice(4, n, p=(0.7, 0.1, 0.1, 0.1))                       # 0 good; 1 process, 2 object, 3 both
        rows, ims = table(n, seed), images(n, seed)
        out = {}
        for name, (lose, mask) in {"clean": (False, False), "ocr_loss": (True, False), "gridmask": (False, True),
                                   "both": (True, True)}.items():
            t = drop_ocr_values(rows, SCHEMA.fields, 0.6, seed) if lose else rows
            im = grid_mask_images(ims, 0.5, seed) if mask else ims
            out[name] = Scenario(_members_under(y4, t, im, lose, mask, rng), refs.divergences(t, im))
        return (y4 > 0).astype(int), out

    y_val, val = scenario_rows(300, 21)
    gate, report = calibrate(y_val, val, MEMBERS, quantile=0.99, off_factors=(1.5, 3.0, 1e6), temperatures=(1.0,),
                             min_accuracy=0.85, combine=combine)
    y_test, test = scenario_rows(300, 22)
    both = gate.decide(test["both"].probs, test["both"].divergence)
    pred = both.decision
    accuracy = (pred == y_test).mean()
    assert accuracy >= 0.80, (combine, accuracy, report["chosen"])
    assert pred.mean() < 0.9 and ((pred == 0) & (y_test == 0)).sum() > 0.5 * (y_test == 0).sum()
    assert (both.weights[:, list(MEMBERS).index("cnn")] == 0).mean() > 0.9     # the masked image was switched off


def test_a_degraded_regime_gets_its_own_accuracy_floor():
    """Where a modality is off its usual range, `degraded_min_accuracy` buys recall with accuracy."""
    from oanet.gate.calibrate import _regime_thresholds, regime_floors

    assert regime_floors(0.9, None) == {r: 0.9 for r in ("both", "image", "ocr", "neither")}
    assert regime_floors(0.9, 0.8) == {"both": 0.9, "image": 0.8, "ocr": 0.8, "neither": 0.8}
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    prob = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.15, 400), 0, 1)   # 87% at best: 90% out of reach
    regime = np.array(["image"] * 400)
    strict = _regime_thresholds(y, prob, regime, regime_floors(0.9, None))["image"]
    loose = _regime_thresholds(y, prob, regime, regime_floors(0.9, 0.8))["image"]
    recall = lambda t: (prob[y == 1] >= t).mean()                              # noqa: E731
    accuracy = lambda t: ((prob >= t) == y).mean()                             # noqa: E731
    assert accuracy(loose) >= 0.8 and recall(loose) > recall(strict)


def test_out_of_fold_stacking_scores_each_unit_with_a_stack_that_never_saw_it(refs):
    """Members that are pure noise: a stack fitted on the rows it scores finds signal there, one that
    never saw the unit does not; so thresholds chosen on out-of-fold probabilities are not flattered."""
    from sklearn.metrics import roc_auc_score

    from oanet.gate.calibrate import fit_stack, out_of_fold_stack

    rng = np.random.default_rng(0)
    n = 40
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    rows, ims = table(n, 5), images(n, 5)
    div = refs.divergences(rows, ims)
    scenarios = {name: Scenario({m: rng.random(n) for m in MEMBERS}, div) for name in ("clean", "ocr_loss")}
    base = Gate(MEMBERS, (0.5,) * len(MEMBERS), {"image": 1.0, "ocr": 1.0}, {"image": 0.1, "ocr": 0.1},
                2.0, 1.0, {"both": 0.5})
    pooled_y = np.r_[y, y]
    in_sample = np.concatenate([fit_stack(base, y, scenarios).decide(s.probs, s.divergence).prob
                                for s in scenarios.values()])
    oof = out_of_fold_stack(base, y, scenarios, folds=5)
    assert oof.shape == (2 * n,) and np.isfinite(oof).all()
    assert roc_auc_score(pooled_y, in_sample) > roc_auc_score(pooled_y, oof) + 0.1     # 0.62 against 0.47
    assert np.array_equal(oof, out_of_fold_stack(base, y, scenarios, folds=5))       # seeded


def test_cross_fitted_calibration_keeps_the_stack_fitted_on_every_row(refs):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.clip(y * 0.6 + 0.2 + rng.normal(0, 0.1, 200), 0, 1)
    rows, ims = table(200, 12), images(200, 12)
    clean = {"clean": Scenario({"cnn": rng.random(200), "fusion": good, "lightgbm": good, "gbm": good},
                               refs.divergences(rows, ims))}
    kw = dict(quantile=0.99, off_factors=(2.0,), temperatures=(1.0,), min_accuracy=0.7, combine="stack")
    plain, _ = calibrate(y, clean, MEMBERS, **kw)
    crossed, report = calibrate(y, clean, MEMBERS, cross_fit=5, **kw)
    assert report["cross_fit"] == 5 and report["floor_met"]
    assert crossed.coef == plain.coef                       # the shipped stack saw every val row
    few = np.arange(60)
    assert np.bincount(y[few]).min() // 5 < 10                          # under 10 rows of a class a fold
    small = {"clean": Scenario({m: p[few] for m, p in clean["clean"].probs.items()},
                               {mod: d[few] for mod, d in clean["clean"].divergence.items()})}
    in_sample, _ = calibrate(y[few], small, MEMBERS, **kw)
    fallback, report = calibrate(y[few], small, MEMBERS, cross_fit=5, **kw)
    assert report["cross_fit"] == 0 and fallback == in_sample            # in-sample, and said so


def test_a_gate_that_cannot_reach_its_accuracy_floor_says_what_it_did_and_what_to_set():
    cal = {"off_factor": 1.5, "temperature": 2.0, "threshold": {"both": 0.3}, "recall": 0.75, "accuracy": 0.75,
           "floor_met": False, "min_accuracy": 0.9}
    metrics = {"calibration": cal, "scenarios": {"clean": {"gate": {"recall": 0.7, "accuracy": 0.7}}}}
    text = GateResult(metrics, Path("g.json"), Path("p.parquet"), 1.0).summary()
    assert "accuracy floor NOT met" in text and "gate.min_accuracy 0.9 on val" in text
    assert "learned nothing, no threshold helps" in text
    assert "warning" not in GateResult({**metrics, "calibration": {**cal, "floor_met": True}}, Path("g.json"),
                                       Path("p.parquet"), 1.0).summary()
