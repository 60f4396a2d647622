"""The training loop of the fusion network (and of the image-only CNN: same code).

SGD (lr, momentum, weight decay on weights only, not on biases and norm parameters),
a linear warm-up over `warmup_epochs`, then cosine decay (or constant, `schedule`),
class-weighted cross-entropy, plus `align_weight` * the cosine alignment loss when
alignment is on. Mask learning and image augmentation run on the device each step.

PCA refinement: the components are fitted on the training embeddings before the first
epoch and refitted at the end of every epoch but the last on the embeddings that epoch
produced; each such refit re-expresses the head's first layer in the new basis by least
squares (`refit_keeping_head`, approximate: the span moves) and the next epoch trains the
head on it. After training, `refit_refinement` re-centres and re-orients the components on
clean (eval-mode) training embeddings inside the span the head was trained on
(`PCARefinement.refit_within`), which the head absorbs exactly: the model's function is kept.

Tracking is injected: `fit` calls `on_epoch_end(epoch, metrics)` on each callback.
On CUDA: bf16 autocast, channels_last, cudnn.benchmark, the data held on the GPU,
optional torch.compile. On CPU: fp32, deterministic for a given seed.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from oanet.fusion.data import augment_images, mask_fields
from oanet.fusion.model import ArchConfig, OANet


class Callback(Protocol):
    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


class PrintProgress:
    """A callback printing one line per epoch."""

    def __init__(self, name: str = "", echo=print):
        self.name, self.echo = name, echo

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.echo(f"{self.name} epoch {epoch + 1}: loss {metrics['loss']:.4f} ce {metrics['ce']:.4f} "
                  f"align {metrics['align']:.4f} acc {metrics['train_accuracy']:.3f} "
                  f"lr {metrics['lr']:.4g} {metrics['seconds']:.1f}s")


@dataclass
class TrainData:
    """Training (or inference) inputs, on one device.

    images (N,1,S,S) uint8; tab (N,C) float32 with NaN for missing (C may be 0); labels (N,) long.
    field_of_column (C,) long and n_fields describe the tabular columns for mask learning.
    """
    images: torch.Tensor
    tab: torch.Tensor
    labels: torch.Tensor
    field_of_column: torch.Tensor
    n_fields: int

    @classmethod
    def build(cls, images: torch.Tensor, tab: np.ndarray | None, labels: Sequence[int] | None,
              field_of_column: np.ndarray | None = None, device: str | torch.device = "cpu") -> TrainData:
        n = images.shape[0]
        tab = np.zeros((n, 0), np.float32) if tab is None else np.asarray(tab, np.float32)
        foc = np.arange(tab.shape[1]) if field_of_column is None else np.asarray(field_of_column)
        y = np.zeros(n, np.int64) if labels is None else np.array(labels, dtype=np.int64)
        return cls(images.to(device), torch.from_numpy(tab).to(device), torch.from_numpy(y).to(device),
                   torch.from_numpy(foc.astype(np.int64)).to(device), int(foc.max()) + 1 if len(foc) else 0)

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class Fitted:
    """A trained model with its training history."""
    model: OANet
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def class_weights(labels: torch.Tensor, enabled: bool) -> torch.Tensor | None:
    """n / (2 * n_class) per class: both classes weigh the same in the loss."""
    if not enabled:
        return None
    counts = torch.bincount(labels, minlength=2).clamp_min(1).float()
    return counts.sum() / (2 * counts)


ONECYCLE_RISE = 0.3       # one-cycle: share of the steps spent rising to the peak
ONECYCLE_START = 25.0     # the rise starts at peak / this; the decay ends near 0


def lr_at(step: int, total: int, warmup: int, base: float, schedule: str = "cosine") -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 over the rest (or constant).

    `onecycle` (Smith's one-cycle, as torch's OneCycleLR): cosine rise from base/25 to
    base over the first 30% of the steps, then cosine decay to 0; `warmup` is ignored.
    """
    if schedule == "onecycle":
        rise = max(1, round(ONECYCLE_RISE * total))
        if step < rise:
            lo = base / ONECYCLE_START
            return lo + (base - lo) * 0.5 * (1 - math.cos(math.pi * step / rise))
        return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - rise) / max(1, total - rise))))
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    if schedule == "constant":
        return base
    if schedule != "cosine":
        raise ValueError(f"fuse.optimiser.schedule must be cosine, onecycle or constant, got {schedule!r}")
    rest = max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / rest)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices and kernels, none on biases and norm scales."""
    decay, plain = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else plain).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def make_optimizer(model, cfg, device: torch.device) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's) or AdamW (trains a narrow network from scratch in fewer epochs);
    `cfg` is the fuse.optimiser section."""
    kw = {"fused": True} if device.type == "cuda" else {}
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, **kw)
    if cfg.optimizer != "sgd":
        raise ValueError(f"fuse.optimiser.optimizer must be sgd or adamw, got {cfg.optimizer!r}")
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, **kw)


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def build_model(arch: ArchConfig, weights: str | None, device: torch.device) -> OANet:
    # channels_last on the CPU too: oneDNN's convolutions run faster on it
    # (docs/benchmarks.md, "Smaller measurements")
    return OANet(arch, weights=weights).to(device).to(memory_format=torch.channels_last)


class TrainStep:
    """One optimisation step on a batch of raw inputs: augment, mask, forward, loss, backward, update.

    Returns device tensors (loss, ce, align, n_correct), never synchronising, so the
    benchmark and `fit` measure the same code.
    """

    def __init__(self, model: OANet, optimizer: torch.optim.Optimizer, cfg, weights: torch.Tensor | None,
                 field_of_column: torch.Tensor, n_fields: int, generator: torch.Generator,
                 compile: bool = False):
        self.model, self.optimizer, self.cfg = model, optimizer, cfg
        self.weights, self.foc, self.n_fields, self.gen = weights, field_of_column, n_fields, generator
        self.device = next(model.parameters()).device
        self.forward = torch.compile(model) if compile else model
        self.use_align = model.arch.tabular and model.arch.network.align and cfg.optimiser.align_weight > 0

    def __call__(self, images: torch.Tensor, tab: torch.Tensor, labels: torch.Tensor, lr: float):
        cfg, aug = self.cfg, self.cfg.training
        x = images
        if images.ndim == 4:                  # raw images; precomputed embeddings (b, Di) are used as they are
            x = augment_images(images, aug.gridmask_prob, self.gen, aug.jitter)  # (b,1,S,S) uint8
        if x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        t = mask_fields(tab, self.foc, self.n_fields, aug.mask_prob, self.gen) if self.model.arch.tabular else None
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with _autocast(self.device):
            out = self.forward(x, t)
            ce = F.cross_entropy(out.logits.float(), labels, weight=self.weights)
            loss = ce + cfg.optimiser.align_weight * out.align_loss if self.use_align else ce
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        correct = (out.logits.detach().argmax(1) == labels).sum()
        return loss.detach(), ce.detach(), out.align_loss.detach(), correct, out


def _batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    """A random permutation cut into full batches (the last partial one is dropped when n > batch)."""
    perm = torch.randperm(n, generator=generator, device=device)
    if n <= batch_size:
        return [perm]
    return list(perm[: n - n % batch_size].split(batch_size))


def _chunks(n: int, size: int, device) -> list[torch.Tensor]:
    """Row indices in order, in chunks of `size`; a last chunk of one row joins the one before
    (batch norm in train mode cannot normalise a single row: 97 rows at 16 used to crash)."""
    chunks = list(torch.arange(n, device=device).split(size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


@torch.no_grad()
def embeddings(model: OANet, data: TrainData, batch_size: int = 256, train_mode: bool = False):
    """Aligned embeddings (z_img, z_tab), each (N, A) float32, of unaugmented, unmasked inputs."""
    was = model.training
    model.train(train_mode)
    za, zb = [], []
    dev = data.images.device
    for idx in _chunks(len(data), batch_size, dev):
        with _autocast(dev):
            out = model(data.images[idx], data.tab[idx])
        za.append(out.z_img.float())
        zb.append(out.z_tab.float())
    model.train(was)
    return torch.cat(za), torch.cat(zb)


@torch.no_grad()
def image_embeddings(model: OANet, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, Di) float32: the model's image embeddings in eval mode (test-time flips if the model uses them)."""
    was = model.training
    model.eval()
    out = []
    for idx in torch.arange(images.shape[0], device=images.device).split(batch_size):
        with _autocast(images.device):
            out.append(model.embed(images[idx]).float())
    model.train(was)
    return torch.cat(out) if out else torch.zeros((0, model.image_encoder.dim), device=images.device)


@torch.no_grad()
def staged_training_data(model: OANet, data: TrainData, cfg, copies: int) -> TrainData:
    """The training rows for the fusion stage of staged training: image embeddings by the
    trained, frozen encoder `model`, of the clean images and of `copies` augmented views
    (flips, jitter, GridMask as `cfg` trains with), each beside its own OCR row.

    The encoder has seen these images while it trained, so their clean embeddings are
    cleaner than any test image's; the augmented views show the fusion head embeddings
    of imperfect images (and of GridMasked ones when the recipe uses GridMask).
    """
    gen = torch.Generator(device=data.images.device)
    gen.manual_seed(cfg.seed + 1)
    aug = cfg.training
    views = [data.images] + [augment_images(data.images, aug.gridmask_prob, gen, aug.jitter) for _ in range(copies)]
    emb = torch.cat([image_embeddings(model, v) for v in views])                  # ((1+copies) N, Di)
    k = len(views)
    return dataclasses.replace(data, images=emb, tab=data.tab.repeat(k, 1), labels=data.labels.repeat(k))


@torch.no_grad()
def predict_proba(model: OANet, data: TrainData, batch_size: int = 256) -> np.ndarray:
    """(N,) defect probability, in eval mode, on unperturbed inputs."""
    was = model.training
    model.eval()
    probs = []
    dev = data.images.device
    for idx in torch.arange(len(data), device=dev).split(batch_size):
        tab = data.tab[idx] if model.arch.tabular else None
        with _autocast(dev):
            logits = model(data.images[idx], tab).logits.float()
        probs.append(torch.softmax(logits, 1)[:, 1])
    model.train(was)
    return torch.cat(probs).cpu().numpy().astype(np.float64) if probs else np.zeros(0)


RIDGE = 1e-3      # refit_keeping_head: shrinkage of the basis change, relative to the features' variance


@torch.no_grad()
def refit_keeping_head(model: OANet, za: torch.Tensor, zb: torch.Tensor) -> float:
    """Refit the PCA on (za, zb) (N, A) and re-express the head's first layer in the new basis.

    The old and new refinement are both affine in (z_img, z_tab), so old = A @ new + c
    holds on (za, zb) up to what PCA dropped; the head's first layer W becomes W A and
    its bias b + W c, so the model's function barely moves. Returns the R^2 of that fit.

    The fit is ridge-regularised (RIDGE x the mean variance of the new features): with few
    training rows (N near or under F + 1) plain least squares is ill-posed, A takes huge
    entries along nearly collinear columns, and every epoch multiplied the head's weights
    until the loss overflowed (a 60-image set: loss 1.3 -> 1e32 in 35 epochs).
    """
    ref = model.refinement
    old = ref(za, zb).double()                                          # (N, F)
    ref.fit(za, zb)
    new = ref(za, zb).double()                                          # (N, F)
    design = torch.cat([new, torch.ones_like(new[:, :1])], 1).cpu()    # (N, F+1)
    gram = design.T @ design                                            # (F+1, F+1)
    ridge = RIDGE * float(gram.diagonal()[:-1].mean().clamp_min(1e-12))
    penalty = torch.diag(torch.full((gram.shape[0],), ridge, dtype=gram.dtype))
    penalty[-1, -1] = 0.0                                               # the intercept is not shrunk
    sol = torch.linalg.solve(gram + penalty, design.T @ old.cpu()).to(old.device)          # (F+1, F)
    a, c = sol[:-1].T, sol[-1]                                          # old ~ new @ a.T + c
    fc1 = model.head.fc1
    w = fc1.weight.double()
    fc1.bias.copy_((fc1.bias.double() + w @ c).to(fc1.bias.dtype))
    fc1.weight.copy_((w @ a).to(fc1.weight.dtype))
    resid = old - (new @ a.T + c)
    return 1.0 - float(resid.pow(2).sum() / (old - old.mean(0)).pow(2).sum().clamp_min(1e-12))


@torch.no_grad()
def refit_refinement(model: OANet, data: TrainData, batch_size: int = 256) -> dict[str, float]:
    """After training: refit the PCA on clean (eval-mode) training embeddings, keeping the head.

    Method fix: this used to refit the PCA freely and re-express the head by least squares
    (`refit_keeping_head`), which cannot be exact once the span moves (docs/benchmarks.md,
    "Smaller measurements"; the test predictions were reordered). Nothing trains
    after this refit, so it now keeps each round's span (`PCARefinement.refit_within`):
    mean and axes come from the training rows, and old = new @ rot + shift holds for every
    input, so fc1 becomes W rot^T with bias b + W shift and the model predicts what it did.
    `refine_head_r2` is the R^2 of that reconstruction on the training rows (1 up to rounding).
    """
    if model.refinement is None:
        return {}
    za, zb = embeddings(model, data, batch_size)
    ref, fc1 = model.refinement, model.head.fc1
    old = ref(za, zb).double()                                          # (N, F)
    rot, shift = ref.refit_within(za, zb)                               # old = new @ rot + shift
    w = fc1.weight.double()
    fc1.bias.copy_((fc1.bias.double() + w @ shift).to(fc1.bias.dtype))
    fc1.weight.copy_((w @ rot.T).to(fc1.weight.dtype))
    resid = old - (ref(za, zb).double() @ rot + shift)
    r2 = 1.0 - float(resid.pow(2).sum() / (old - old.mean(0)).pow(2).sum().clamp_min(1e-12))
    return {"refine_fit_rows": int(ref.fit_rows), "refine_head_r2": r2}


def fit(model: OANet, data: TrainData, cfg, callbacks: Iterable[Callback] = ()) -> Fitted:
    """Train `model` in place on `data` with the settings of `cfg` (a FuseConfig)."""
    device = data.images.device
    callbacks = list(callbacks)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    n = len(data)
    if n < 2:
        raise ValueError(f"need at least 2 training rows, got {n}")
    frozen = getattr(model, "image_frozen", False)       # staged: the image statistics came with the encoder
    model.norm.fit(None if frozen else data.images, data.tab if model.arch.tabular else None)
    optimiser = cfg.optimiser
    opt = make_optimizer(model, optimiser, device)
    step = TrainStep(model, opt, cfg, class_weights(data.labels, optimiser.class_weighting), data.field_of_column,
                     data.n_fields, gen, compile=cfg.compile)
    steps_per_epoch = max(1, n // optimiser.batch_size) if n > optimiser.batch_size else 1
    total, warmup = optimiser.epochs * steps_per_epoch, optimiser.warmup_epochs * steps_per_epoch
    ref = model.refinement
    if ref is not None:                   # a first basis from the untrained network, training rows only
        ref.fit(*embeddings(model, data, optimiser.batch_size, train_mode=True))
        bank_a = torch.zeros((n, model.arch.network.align_dim), device=device)
        bank_b = torch.zeros_like(bank_a)
    history, t_start, k = [], time.perf_counter(), 0
    model.train()
    for epoch in range(optimiser.epochs):
        t0 = time.perf_counter()
        sums = torch.zeros(4, device=device, dtype=torch.float64)        # loss, ce, align, correct (x rows)
        seen = torch.zeros(n, dtype=torch.bool, device=device)
        rows = 0
        lr = optimiser.lr
        for idx in _batches(n, optimiser.batch_size, gen, device):
            lr = lr_at(k, total, warmup, optimiser.lr, optimiser.schedule)
            loss, ce, align, correct, out = step(data.images[idx], data.tab[idx], data.labels[idx], lr)
            b = idx.shape[0]
            sums += torch.stack([loss.double() * b, ce.double() * b, align.double() * b, correct.double()])
            if ref is not None:
                bank_a[idx] = out.z_img.detach().float()
                bank_b[idx] = out.z_tab.detach().float()
                seen[idx] = True
            rows += b
            k += 1
        if ref is not None and epoch < optimiser.epochs - 1:
            # new basis, nearly the same function (the next epoch trains the head on it; after the
            # last epoch nothing would, so that refit is refit_refinement's, exact); fc1's momentum
            # belongs to the old basis
            refit_keeping_head(model, bank_a[seen], bank_b[seen])
            for p in (model.head.fc1.weight, model.head.fc1.bias):
                opt.state.pop(p, None)
        s = (sums / rows).tolist()
        metrics = {"epoch": epoch + 1, "loss": s[0], "ce": s[1], "align": s[2], "train_accuracy": s[3],
                   "lr": lr, "seconds": time.perf_counter() - t0}
        if not all(map(math.isfinite, s[:3])):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1}: {metrics}")
        history.append(metrics)
        for cb in callbacks:
            cb.on_epoch_end(epoch, metrics)
    if device.type == "cuda":
        torch.cuda.synchronize()
    model.eval()
    return Fitted(model, history, time.perf_counter() - t_start, str(device))
