"""The CPU image recipe: tight object cut, per-image standardisation, photometric jitter,
the narrow encoder with avg + max pooling, AdamW one-cycle, test-time flips, object labels
for the image branch and staged training on a frozen encoder."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from oanet.config import FuseConfig, NetworkConfig, OptimiserConfig, load_params, updated
from oanet.fusion.data import flip8, image_labels, photometric_jitter, roi_of, tight_box
from oanet.fusion.encoders import encoder_dim, get_encoder
from oanet.fusion.model import ArchConfig, InputNorm, OANet
from oanet.fusion.train import TrainData, image_embeddings, lr_at, make_optimizer, predict_proba

pytestmark = pytest.mark.usefixtures("one_thread")


def padded_tile(h: int, w: int, box: int = 120, level: int = 90, seed: int = 0) -> tuple[np.ndarray, tuple]:
    """A (box, box) uint8 object box: a textured tile of h x w centred on black padding."""
    rng = np.random.default_rng(seed)
    out = np.zeros((box, box), np.uint8)
    y0, x0 = (box - h) // 2, (box - w) // 2
    out[y0:y0 + h, x0:x0 + w] = np.clip(rng.normal(level, 6, (h, w)), 1, 255).astype(np.uint8)
    return out, (x0, y0, x0 + w, y0 + h)


@pytest.mark.parametrize("h,w", [(120, 50), (40, 110), (80, 80), (30, 30)])
def test_tight_box_finds_the_tile_on_its_padding(h, w):
    img, box = padded_tile(h, w)
    assert tight_box(img) == box


def test_tight_box_finds_a_darker_part_on_a_light_table():
    table = np.full((200, 160), 200, np.uint8)                              # a back-lit table, its part darker
    table[40:160, 30:130] = np.random.default_rng(2).normal(128, 18, (120, 100)).clip(0, 255).astype(np.uint8)
    assert tight_box(table) == (30, 40, 130, 160)                           # was the whole box: nothing stood above


def test_tight_box_keeps_a_box_the_object_fills_or_a_dark_object():
    rng = np.random.default_rng(1)
    full = rng.integers(60, 200, (64, 64)).astype(np.uint8)              # no background: nothing to cut
    assert tight_box(full) == (0, 0, 64, 64)
    dark = np.full((64, 64), 3, np.uint8)                                   # nothing stands out of the border
    assert tight_box(dark) == (0, 0, 64, 64)
    speck, _ = padded_tile(6, 6)                                            # too small to trust as the object
    assert tight_box(speck) == (0, 0, 120, 120)


def test_roi_of_spends_the_whole_square_on_the_tile():
    img, _ = padded_tile(120, 40, level=150)
    canvas = np.zeros((200, 300), np.uint8)
    canvas[50:170, 10:130] = img
    out = roi_of(canvas, (10, 50, 130, 170), 32)
    assert out.shape == (32, 32) and out.min() > 100                        # no black padding left


def test_per_image_standardisation_removes_exposure():
    norm = InputNorm(0, "per_image")
    base = torch.from_numpy(np.random.default_rng(2).integers(20, 60, (1, 1, 16, 16)).astype(np.uint8))
    bright = (base.float() * 2.5).to(torch.uint8)                           # the same tile at a longer exposure
    assert torch.allclose(norm.image(base), norm.image(bright), atol=0.05)
    with pytest.raises(ValueError, match="per_image"):
        InputNorm(0, "per_pixel")


def test_photometric_jitter_changes_gray_levels_keeps_shape_and_is_seeded():
    x = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (8, 1, 16, 16)).astype(np.uint8))
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = photometric_jitter(x, 0.2, g1), photometric_jitter(x, 0.2, g2)
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    assert not torch.equal(a, x)
    assert torch.equal(photometric_jitter(x, 0.0, g1), x)


def test_flip8_gives_the_eight_symmetries_of_a_square():
    x = torch.arange(9, dtype=torch.uint8).reshape(1, 1, 3, 3)
    views = {tuple(flip8(x, k).flatten().tolist()) for k in range(8)}
    assert len(views) == 8


def test_narrow_resnet_is_registered_with_avg_and_max_pooling():
    enc = get_encoder("narrow_resnet")
    assert encoder_dim("narrow_resnet") == enc.dim == 256                  # [avg, max] of 128 channels
    x = torch.zeros(2, 1, 64, 64)
    x[0, 0, 30:33, 30:33] = 5.0                                              # a small bright defect
    enc.eval()
    emb = enc(x)
    assert emb.shape == (2, 256) and not torch.allclose(emb[0, 128:], emb[1, 128:])
    small = sum(p.numel() for p in enc.parameters())
    assert small < sum(p.numel() for p in get_encoder("resnet18").parameters()) / 10


def test_one_cycle_rises_then_anneals_to_zero():
    lrs = [lr_at(s, 100, 0, 0.003, "onecycle") for s in range(101)]
    peak = int(np.argmax(lrs))
    assert 25 <= peak <= 35 and lrs[peak] == pytest.approx(0.003)
    assert lrs[0] == pytest.approx(0.003 / 25) and lrs[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1], strict=True))


def test_optimizer_by_name():
    model = OANet(ArchConfig(NetworkConfig(encoder="narrow_resnet"), tabular=False))
    cpu = torch.device("cpu")
    assert isinstance(make_optimizer(model, OptimiserConfig(optimizer="adamw"), cpu), torch.optim.AdamW)
    assert isinstance(make_optimizer(model, OptimiserConfig(optimizer="sgd"), cpu), torch.optim.SGD)
    with pytest.raises(ValueError, match="adamw"):
        make_optimizer(model, OptimiserConfig(optimizer="lion"), cpu)


def test_test_time_flips_make_the_prediction_orientation_free():
    torch.manual_seed(0)
    model = OANet(ArchConfig(NetworkConfig(encoder="narrow_resnet", tta=True), tabular=False)).eval()
    x = torch.from_numpy(np.random.default_rng(4).integers(0, 256, (3, 1, 32, 32)).astype(np.uint8))
    p = predict_proba(model, TrainData.build(x, None, None))
    p_flipped = predict_proba(model, TrainData.build(flip8(x, 5), None, None))
    assert np.allclose(p, p_flipped, atol=1e-5)


def test_image_labels_drop_process_only_defects():
    rows = pd.DataFrame({"label": [1, 1, 0, 1], "defect_type": ["Crack", "param", None, "Blowhole"]})
    assert image_labels(rows, ("param",)).tolist() == [1, 0, 0, 1]
    assert image_labels(rows, ()).tolist() == [1, 1, 0, 1]
    assert image_labels(rows.drop(columns="defect_type"), ("param",)).tolist() == [1, 1, 0, 1]


def test_staged_training_keeps_the_cnn_encoder_frozen_and_scores_from_embeddings():
    from oanet.fusion.stage import train_one

    rng = np.random.default_rng(5)
    n, cols = 24, 4
    images = torch.from_numpy(rng.integers(0, 256, (n, 1, 32, 32)).astype(np.uint8))
    tab = rng.normal(size=(n, cols)).astype(np.float32)
    y = np.r_[np.zeros(16), np.ones(8)].astype(int)
    data = TrainData.build(images, tab, y, np.arange(cols))
    cfg = updated(FuseConfig(), {
        "network": {"encoder": "narrow_resnet", "align_dim": 8, "refine_dim": 4, "tab_hidden": 8, "head_hidden": 8,
                    "image_norm": "per_image", "tta": True},
        "optimiser": {"epochs": 1, "batch_size": 8, "optimizer": "adamw", "lr": 0.003, "schedule": "onecycle"},
        "training": {"image_size": 32, "staged": True}, "device": "cpu", "seed": 1})
    cnn = train_one("cnn", cfg, False, cols, data, "cpu").model
    before = {k: v.clone() for k, v in cnn.image_encoder.state_dict().items()}
    emb = image_embeddings(cnn, data.images)
    fusion = train_one("fusion", cfg, True, cols, dataclasses.replace(data, images=emb), "cpu",
                       encoder_from=cnn).model
    after = fusion.image_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)             # the encoder did not move
    from_images = predict_proba(fusion, TrainData.build(images, tab, None))
    from_embeddings = predict_proba(fusion, TrainData.build(emb, tab, None))
    assert np.allclose(from_images, from_embeddings, atol=1e-5)              # one encoder, two ways in


def test_profiles_build_their_recipes_and_reject_unknown_keys():
    params = load_params()
    cpu = params.evaluate.cpu.fuse_config(params.fuse, "narrow_resnet", 7)
    assert (cpu.network.encoder, cpu.training.image_size, cpu.seed, cpu.optimiser.optimizer, cpu.training.staged) == \
        ("narrow_resnet", params.evaluate.cpu.image_size, 7, "adamw", True)
    assert cpu.optimiser.epochs == params.evaluate.cpu.epochs and cpu.network == dataclasses.replace(
        params.fuse.network, encoder="narrow_resnet")                       # the rest of the section is the fuse's
    paper = params.evaluate.paper.fuse_config(params.fuse, "vgg16", 0)      # the paper's recipe, unchanged
    assert (paper.training.image_size, paper.optimiser.optimizer, paper.optimiser.lr, paper.network.image_norm,
            paper.training.staged, paper.training.image_label) == (224, "sgd", 0.01, "dataset", False, "unit")
    bad = dataclasses.replace(params.evaluate.cpu, fuse={"optimiser": {"learning_rate": 1}})
    with pytest.raises(ValueError, match="learning_rate"):
        bad.fuse_config(params.fuse, "narrow_resnet", 0)
    flat = dataclasses.replace(params.evaluate.cpu, fuse={"lr": 1})          # a key of a sub-section, at the top
    with pytest.raises(ValueError, match="lr is now optimiser.lr"):
        flat.fuse_config(params.fuse, "narrow_resnet", 0)


def test_filled_occlusion_reads_as_plain_surface_not_as_a_dark_defect():
    rng = np.random.default_rng(6)
    tile = torch.from_numpy(rng.integers(60, 120, (1, 1, 16, 16)).astype(np.uint8))
    hidden = tile.clone()
    hidden[..., 4:8, 4:8] = 0                                                 # a GridMask square
    filled = InputNorm(0, "per_image", fill_occlusion=True).image(hidden)
    assert filled[..., 4:8, 4:8].abs().max() < 1e-5                            # the square is at the mean: 0
    plain = InputNorm(0, "per_image").image(hidden)
    assert plain[..., 4:8, 4:8].max() < -2                                      # unfilled, it is a deep dark blot
    untouched = InputNorm(0, "per_image", fill_occlusion=True).image(tile)
    assert torch.allclose(untouched, InputNorm(0, "per_image").image(tile))     # nothing at 0: nothing changes


def test_the_image_only_cnn_can_train_with_its_own_gridmask_probability(monkeypatch):
    """cnn_gridmask_prob overrides gridmask_prob for the image-only CNN only (staged fusion heads keep it)."""

    import oanet.fusion.train as train_mod
    from oanet.config import FuseConfig
    from oanet.fusion.stage import train_one
    from oanet.fusion.train import TrainData

    seen = {}

    def fake_fit(model, data, cfg, callbacks):
        seen.setdefault("probs", []).append(cfg.training.gridmask_prob)
        return type("Fitted", (), {"history": []})()

    monkeypatch.setattr(train_mod, "fit", fake_fit)
    monkeypatch.setattr(train_mod, "refit_refinement", lambda *a, **k: {})
    cfg = updated(FuseConfig(), {"network": {"encoder": "narrow_resnet"}, "device": "cpu",
                                 "training": {"image_size": 32, "gridmask_prob": 0.3, "cnn_gridmask_prob": 0.0}})
    data = TrainData.build(torch.zeros((4, 1, 32, 32), dtype=torch.uint8), np.zeros((4, 3), np.float32), [0, 1, 0, 1],
                           np.array([0, 1, 2]), "cpu")
    train_one("cnn", cfg, False, 3, data, "cpu")
    train_one("fusion", cfg, True, 3, data, "cpu")
    assert seen["probs"] == [0.0, 0.3]
