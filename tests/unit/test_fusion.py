"""The fusion network's pieces: encoder registry, alignment, PCA refinement, inputs, loop helpers.

Tiny sizes (32 px images, a few dozen rows, one thread) keep the file at a few seconds of CPU.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from blocked_imports import run_without

from oanet.config import PAPER_RECIPE, FuseConfig, NetworkConfig, updated
from oanet.features import TabularSchema
from oanet.fusion.data import augment_images, gridmask, mask_fields, tabular_input
from oanet.fusion.encoders import (
    EncoderSpec,
    UnknownEncoderError,
    WeightsError,
    encoder_names,
    get_encoder,
    register_encoder,
)
from oanet.fusion.model import Alignment, ArchConfig, InputNorm, OANet, OANetOutput, PCARefinement
from oanet.fusion.train import TrainData, embeddings, fit, lr_at, predict_proba, refit_refinement, seed_everything

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_data(n: int = 24, columns: int = 6, seed: int = 0) -> TrainData:
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (n, 1, SIZE, SIZE), dtype=np.uint8))
    tab = rng.normal(size=(n, columns)).astype(np.float32)
    tab[rng.random(tab.shape) < 0.2] = np.nan
    y = np.r_[np.zeros(n - n // 3), np.ones(n // 3)].astype(int)
    return TrainData.build(images, tab, y, np.r_[np.arange(columns - 2), [columns - 2] * 2])


def tiny_cfg(**changes) -> FuseConfig:
    """The paper's recipe, small; `changes` are shaped like the fuse section."""
    small = {"network": {"encoder": "resnet18", "align_dim": 16, "refine_dim": 8, "tab_hidden": 16, "head_hidden": 16},
             "optimiser": {"epochs": 2, "batch_size": 8}, "training": {"image_size": SIZE}, "device": "cpu", "seed": 3}
    return updated(updated(updated(FuseConfig(), PAPER_RECIPE), small), changes)


# --- encoder registry -------------------------------------------------------------------------

def test_registry_holds_the_papers_encoders():
    assert set(encoder_names()) >= {"alexnet", "vgg16", "resnet18"}


@pytest.mark.parametrize("name", encoder_names())
def test_every_registered_encoder_builds_and_embeds_a_small_gray_batch(name):
    enc = get_encoder(name).eval()
    with torch.no_grad():
        out = enc(torch.randn(2, 1, SIZE, SIZE))
    assert out.shape == (2, enc.dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", encoder_names())
def test_every_registered_encoder_runs_inside_oanet(name):
    net = NetworkConfig(encoder=name, align_dim=8, refine_dim=4, tab_hidden=8, head_hidden=8, tta=False)
    model = OANet(ArchConfig(net, n_columns=4))
    model.eval()
    images = torch.randint(0, 256, (3, 1, SIZE, SIZE), dtype=torch.uint8)
    out = model(images, torch.randn(3, 4))
    assert isinstance(out, OANetOutput)
    assert out.logits.shape == (3, 2) and out.z_img.shape == out.z_tab.shape == (3, 8)
    assert out.fused.shape == (3, 8)                                   # 2 * refine_dim


def test_vgg16_is_the_batch_norm_variant():
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in get_encoder("vgg16").modules())


def test_unknown_encoder_lists_the_known_names():
    with pytest.raises(UnknownEncoderError, match="known: alexnet, vgg16, resnet18"):
        get_encoder("vgg19")


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("resnet18", EncoderSpec(lambda: None, "conv1", lambda m: m, 1, 1))


def test_local_torchvision_weights_load_and_the_rgb_stem_is_summed_to_gray(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    donor = resnet18(weights=None)
    torch.save(donor.state_dict(), tmp_path / "r18.pth")
    enc = get_encoder("resnet18", weights=tmp_path / "r18.pth")
    stem = enc.trunk[0].weight
    assert stem.shape[1] == 1
    assert torch.allclose(stem, donor.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(enc.trunk[4][0].conv1.weight, donor.layer1[0].conv1.weight)
    x = torch.rand(2, 1, SIZE, SIZE)
    donor.fc = torch.nn.Identity()
    enc.eval(), donor.eval()
    with torch.no_grad():
        assert torch.allclose(enc(x), donor(x.expand(-1, 3, -1, -1)), atol=1e-5)   # gray x3 == summed stem


def test_our_own_encoder_weights_round_trip(tmp_path):
    enc = get_encoder("alexnet")
    torch.save(enc.state_dict(), tmp_path / "mine.pt")
    again = get_encoder("alexnet", weights=tmp_path / "mine.pt")
    assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), again.state_dict().values(), strict=True))


def test_bad_weights_files_say_what_is_wrong(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found"):
        get_encoder("resnet18", weights=tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        get_encoder("resnet18", weights=tmp_path / "junk.pth")
    torch.save(get_encoder("alexnet").trunk.state_dict(), tmp_path / "alex_trunk.pth")
    with pytest.raises(WeightsError, match="does not fit encoder 'resnet18'"):
        get_encoder("resnet18", weights=tmp_path / "alex_trunk.pth")


# --- alignment and refinement ------------------------------------------------------------------

def test_alignment_loss_falls_over_a_few_steps():
    torch.manual_seed(0)
    img, tab = torch.randn(32, 20), torch.randn(32, 12)
    align = Alignment(20, 12, 8)
    opt = torch.optim.SGD(align.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        out = align(img, tab)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_alignment_cannot_collapse_to_a_constant():
    """Batch-standardised projections: a constant output is not a way to reach cos = 1."""
    align = Alignment(5, 5, 4).train()
    z_img, z_tab, _ = align(torch.randn(16, 5), torch.randn(16, 5))
    assert torch.allclose(z_img.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(z_tab.std(0, unbiased=False), torch.ones(4), atol=1e-3)


def test_alignment_loss_falls_when_training_the_fusion_model():
    data = tiny_data(32)
    seed_everything(0)
    model = OANet(ArchConfig.of(tiny_cfg().network, data.tab.shape[1]))
    cfg = tiny_cfg(optimiser={"epochs": 4, "warmup_epochs": 0}, training={"mask_prob": 0.0, "gridmask_prob": 0.0})
    hist = fit(model, data, cfg).history
    assert hist[-1]["align"] < hist[0]["align"]


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_pca_refinement_shapes(steps):
    ref = PCARefinement(16, 12, 5, steps)
    a, b = torch.randn(40, 16), torch.randn(40, 12)
    ref.fit(a, b)
    out = ref(a, b)
    assert out.shape == (40, 10) and ref.out_dim == 10
    assert int(ref.fit_rows) == 40
    comp = ref.comp_a0
    assert torch.allclose(comp @ comp.T, torch.eye(5), atol=1e-5)     # orthonormal components
    assert {f"comp_b{steps - 1}", "fit_rows"} <= set(ref.state_dict())  # saved with the model


def test_pca_refinement_with_fewer_rows_than_components_still_runs():
    ref = PCARefinement(16, 16, 8, 2).fit(torch.randn(4, 16), torch.randn(4, 16))
    out = ref(torch.randn(3, 16), torch.randn(3, 16))
    assert out.shape == (3, 16) and torch.isfinite(out).all()


def test_pca_refinement_first_round_is_the_pca_of_its_input():
    torch.manual_seed(0)
    a = torch.randn(200, 6) @ torch.diag(torch.tensor([5.0, 3, 1, 0.5, 0.2, 0.1]))
    ref = PCARefinement(6, 6, 2, 1).fit(a, a)
    assert torch.allclose(ref.comp_a0.abs(), torch.eye(6)[:2], atol=0.1)


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_refit_within_is_exactly_affine_for_rows_it_never_saw(steps):
    """old(z) = new(z) @ rot + shift on any row, so a head reading the output can absorb the refit."""
    g = torch.Generator().manual_seed(steps)
    ref = PCARefinement(10, 8, 4, steps).fit(torch.randn(50, 10, generator=g), torch.randn(50, 8, generator=g))
    fit_a, fit_b = 3 * torch.randn(30, 10, generator=g) + 1, torch.randn(30, 8, generator=g) - 2
    other_a, other_b = torch.randn(7, 10, generator=g), torch.randn(7, 8, generator=g)
    old = ref(other_a, other_b).double()
    rot, shift = ref.refit_within(fit_a, fit_b)
    assert torch.allclose(ref(other_a, other_b).double() @ rot + shift, old, atol=1e-4)
    assert torch.allclose(rot @ rot.T, torch.eye(8, dtype=rot.dtype), atol=1e-6)      # a rotation
    assert int(ref.fit_rows) == 30
    assert torch.allclose(ref.mean_a0, fit_a.mean(0), atol=1e-5)                      # centred on the fit rows
    out = ref(fit_a, fit_b)
    for side in (out[:, :4], out[:, 4:]):                                               # principal axes there
        cov = torch.cov(side.T)
        assert torch.allclose(cov - torch.diag(cov.diagonal()), torch.zeros(4, 4), atol=1e-4)
        assert (cov.diagonal()[:-1] >= cov.diagonal()[1:] - 1e-5).all()


def test_refit_refinement_sees_training_rows_only_and_keeps_the_head():
    train, test = tiny_data(32, seed=1), tiny_data(12, seed=2)
    seed_everything(0)
    model = OANet(ArchConfig.of(tiny_cfg().network, train.tab.shape[1]))
    fit(model, train, tiny_cfg(optimiser={"epochs": 3}))
    before, before_train = predict_proba(model, test), predict_proba(model, train)
    za, zb = embeddings(model, train)                     # the clean (eval-mode) training embeddings
    info = refit_refinement(model, train)
    assert info["refine_fit_rows"] == 32
    assert info["refine_head_r2"] > 1 - 1e-9
    # the head's function is kept, on rows the refit never saw too (it used to reorder them)
    assert np.abs(predict_proba(model, test) - before).max() < 1e-5
    assert np.abs(predict_proba(model, train) - before_train).max() < 1e-5
    assert np.ptp(before) > 1e-3                          # not a constant model, where keeping it is trivial
    # fitted on the training rows: their mean, their principal axes
    assert torch.allclose(model.refinement.mean_a0, za.mean(0), atol=1e-5)
    assert torch.allclose(model.refinement.mean_b0, zb.mean(0), atol=1e-5)
    fused = model.refinement(za, zb)
    cov = torch.cov(fused[:, :8].T)
    assert torch.allclose(cov - torch.diag(cov.diagonal()), torch.zeros(8, 8), atol=1e-4)
    zt_a, _ = embeddings(model, test)
    leaky_mean = torch.cat([za, zt_a]).mean(0)
    assert not torch.allclose(leaky_mean, model.refinement.mean_a0, atol=1e-4)


# --- inputs: OCR matrix, mask learning, augmentation ---------------------------------------------

def test_tabular_input_marks_a_missing_category_field_missing_in_all_its_columns():
    schema = TabularSchema(numeric=("t",), categories=(("st", ("A", "B")),))
    table = pd.DataFrame({"t": [1.0, None, 3.0], "st": ["A", "B", None]})
    x = tabular_input(schema, table)
    assert x.shape == (3, 3) and x.dtype == np.float32
    assert np.isnan(x[1, 0]) and not np.isnan(x[1, 1:]).any()
    assert np.isnan(x[2, 1:]).all() and x[2, 0] == 3.0
    assert x[0].tolist() == [1.0, 1.0, 0.0]


def test_mask_fields_masks_whole_fields():
    tab = torch.ones(500, 5)
    foc = torch.tensor([0, 1, 2, 2, 2])
    out = mask_fields(tab, foc, 3, 0.5, torch.Generator().manual_seed(0))
    nan = torch.isnan(out)
    assert torch.equal(nan[:, 2], nan[:, 3]) and torch.equal(nan[:, 2], nan[:, 4])
    assert 0.4 < nan[:, :3].float().mean() < 0.6
    assert torch.equal(mask_fields(tab, foc, 3, 0.0), tab)
    assert torch.isnan(mask_fields(tab, foc, 3, 1.0)).all()


def test_augmentation_keeps_shape_dtype_and_is_seeded():
    x = torch.randint(1, 256, (16, 1, SIZE, SIZE), dtype=torch.uint8)
    a = augment_images(x, 0.5, torch.Generator().manual_seed(1))
    b = augment_images(x, 0.5, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    assert sorted(a.flatten().tolist()) != sorted(x.flatten().tolist())     # some GridMask holes


def test_gridmask_blacks_out_about_a_quarter_of_a_chosen_image():
    x = torch.full((64, 1, 64, 64), 200, dtype=torch.uint8)
    holes = (gridmask(x, 1.0, torch.Generator().manual_seed(0)) == 0).float().mean()
    assert 0.15 < holes < 0.35
    assert torch.equal(gridmask(x, 0.0), x)


def test_input_normalisation_is_fitted_with_missing_values_and_saved():
    norm = InputNorm(2).fit(torch.full((4, 1, 2, 2), 51, dtype=torch.uint8),
                            torch.tensor([[1.0, float("nan")], [3.0, 2.0], [float("nan"), 4.0], [5.0, 6.0]]))
    assert norm.tab_mean.tolist() == [3.0, 4.0]
    assert math.isclose(float(norm.img_mean), 0.2, rel_tol=1e-5)
    assert {"img_mean", "img_std", "tab_mean", "tab_std"} <= set(norm.state_dict())


# --- loop helpers ---------------------------------------------------------------------------------

def test_learning_rate_warms_up_linearly_then_decays():
    lrs = [lr_at(s, 20, 4, 0.01) for s in range(20)]
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lr_at(10, 20, 4, 0.01, "constant") == 0.01


def test_image_only_cnn_is_the_same_module_without_the_tabular_branch():
    arch = ArchConfig.of(tiny_cfg().network, n_columns=6, tabular=False)
    model = OANet(arch).eval()
    assert model.tab_encoder is None and model.refinement is None and not arch.network.align
    out = model(torch.zeros(2, 1, SIZE, SIZE, dtype=torch.uint8))
    assert out.tab_emb is None and out.logits.shape == (2, 2) and float(out.align_loss) == 0.0


HEAVY = ("catboost", "lightgbm", "cnocr", "cnstd", "prefect", "mlflow", "great_expectations")


def test_fusion_code_imports_and_trains_without_catboost_lightgbm_or_cnocr():
    """A GPU box may have only torch, torchvision, numpy, pandas and scikit-learn."""
    code = ("import torch, numpy as np\n"
            "import oanet.fusion, oanet.fusion.encoders, oanet.fusion.data, oanet.fusion.stage\n"
            "from oanet.config import FuseConfig, updated\n"
            "from oanet.fusion.model import ArchConfig, OANet\n"
            "from oanet.fusion.train import TrainData, fit, predict_proba\n"
            "torch.set_num_threads(1)\n"
            "cfg = updated(FuseConfig(), {'training': {'image_size': 32}, 'optimiser': {'epochs': 1, 'batch_size': 8},"
            " 'device': 'cpu', 'network': {'align_dim': 8, 'refine_dim': 4}})\n"
            "d = TrainData.build(torch.zeros(16, 1, 32, 32, dtype=torch.uint8), np.zeros((16, 3), np.float32),"
            " [0, 1] * 8)\n"
            "m = OANet(ArchConfig.of(cfg.network, 3))\n"
            "fit(m, d, cfg)\n"
            "print(predict_proba(m, d).shape)\n")
    assert run_without(HEAVY, code) == "(16,)"


def test_importing_the_package_itself_does_not_import_torch():
    assert run_without((), "import sys, oanet.fusion, oanet.cli\nprint('torch' in sys.modules)\n") == "False"


@pytest.mark.parametrize("n", [17, 33])
def test_a_training_set_one_row_past_a_full_batch_trains(n):
    """The refinement's first basis embeds in train mode; a last chunk of one row used to crash batch norm."""
    data = tiny_data(n, seed=3)
    seed_everything(0)
    model = OANet(ArchConfig.of(tiny_cfg().network, data.tab.shape[1]))
    fit(model, data, tiny_cfg(optimiser={"epochs": 1, "batch_size": 16}))
    za, _ = embeddings(model, data, batch_size=16, train_mode=True)
    assert za.shape[0] == n


def test_refitting_the_pca_on_few_rows_keeps_the_head_bounded():
    """Fewer training rows than refined features (a 60-image set): the per-epoch refit must not blow up
    the head. Unregularised least squares took the loss from 1.3 to 1e32 in 35 epochs there."""
    from oanet.fusion.train import refit_keeping_head

    torch.manual_seed(0)
    model = OANet(ArchConfig(NetworkConfig(encoder="narrow_resnet", align_dim=16, refine_dim=16, refine_steps=2),
                             n_columns=6))
    za, zb = torch.randn(20, 16), torch.randn(20, 16)                 # 20 rows, 32 refined features
    model.refinement.fit(za, zb)
    start = model.head.fc1.weight.detach().norm()
    for _ in range(30):                                               # the embeddings move every epoch
        za, zb = za + 0.3 * torch.randn_like(za), zb + 0.3 * torch.randn_like(zb)
        refit_keeping_head(model, za, zb)
    assert torch.isfinite(model.head.fc1.weight).all()
    assert model.head.fc1.weight.detach().norm() < 3 * start
