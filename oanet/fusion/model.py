"""The OANet fusion network as pure nn.Modules, each returning tensors or a NamedTuple.

    image (n,1,S,S) uint8 ─ InputNorm ─ ImageEncoder ──── image_emb (n,Di) ─┐
                                                                          Alignment ─ z_img, z_tab (n,A), align_loss
    OCR   (n,C) float, NaN = missing ─ InputNorm ─ TabularEncoder ─ tab_emb (n,Dt) ─┘
    z_img, z_tab ─ PCARefinement (or concat) ─ fused (n,F) ─ Head ─ logits (n,2)

With the tabular branch off (`ArchConfig.tabular=False`) the same module is the
image-only CNN: image_emb goes straight to the head. The module holds its input
normalisation (fitted on training data, saved in the state_dict), so raw uint8 images
and raw OCR values go in, and perturbations (GridMask, masked fields) are applied to
raw inputs before it. The training loop lives in `oanet.fusion.train`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from oanet.config import NetworkConfig, from_dict
from oanet.fusion.data import flip8
from oanet.fusion.encoders import get_encoder


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild the module; saved next to its state_dict: the `fuse.network`
    section and what the data decides."""
    network: NetworkConfig = NetworkConfig()
    n_columns: int = 0            # C: tabular input columns (0 with the tabular branch off)
    tabular: bool = True          # False: the image-only CNN (no alignment, no refinement)

    @classmethod
    def of(cls, network: NetworkConfig, n_columns: int, tabular: bool = True) -> ArchConfig:
        if not tabular:
            network = dataclasses.replace(network, align=False, refine=False)
        return cls(network, n_columns if tabular else 0, tabular)

    @classmethod
    def from_saved(cls, raw: dict) -> ArchConfig:
        """From `dataclasses.asdict(arch)`; also the flat form saved before `fuse.network` existed."""
        if "network" not in raw:
            known = {f.name for f in dataclasses.fields(NetworkConfig)}
            raw = {"network": {k: v for k, v in raw.items() if k in known},
                   **{k: v for k, v in raw.items() if k not in known}}
        return from_dict(cls, raw, "saved arch")


class OANetOutput(NamedTuple):
    logits: torch.Tensor              # (n, 2)
    image_emb: torch.Tensor           # (n, Di) encoder output
    tab_emb: torch.Tensor | None      # (n, Dt) tabular encoder output; None for the CNN
    z_img: torch.Tensor | None        # (n, A) aligned image embedding
    z_tab: torch.Tensor | None        # (n, A) aligned tabular embedding
    fused: torch.Tensor               # (n, F) head input
    align_loss: torch.Tensor          # () mean cosine distance of z_img and z_tab; 0 for the CNN


class AlignOutput(NamedTuple):
    z_img: torch.Tensor               # (n, A)
    z_tab: torch.Tensor               # (n, A)
    loss: torch.Tensor                # () mean(1 - cos(z_img, z_tab))


class InputNorm(nn.Module):
    """Preprocessing defined once: fitted on the training rows, stored as buffers.

    `per_image`: every image is standardised by its own mean and std, which removes the
    exposure (the dominant variance of AOI photographs) before the encoder sees it.
    `fill_occlusion`: pixels at exactly 0 are taken as occluded (a tight-cut object has
    no black background left) and set to the mean of the image's other pixels before
    standardising, so an occluder (GridMask, a shadow, a dropped tile of the frame) reads
    as plain surface, not as a dark defect; the statistics skip them too.
    """

    def __init__(self, n_columns: int, image_norm: str = "dataset", fill_occlusion: bool = False):
        super().__init__()
        if image_norm not in ("dataset", "per_image"):
            raise ValueError(f"image_norm must be dataset or per_image, got {image_norm!r}")
        self.per_image = image_norm == "per_image"
        self.fill_occlusion = fill_occlusion
        self.register_buffer("img_mean", torch.zeros(()))
        self.register_buffer("img_std", torch.ones(()))
        self.register_buffer("tab_mean", torch.zeros(n_columns))
        self.register_buffer("tab_std", torch.ones(n_columns))

    @torch.no_grad()
    def fit(self, images: torch.Tensor | None, tab: torch.Tensor | None) -> InputNorm:
        """images (N,1,S,S) uint8 (or (N, Di) embeddings: image statistics kept); tab (N,C) float, NaN = missing."""
        if images is not None and images.ndim == 4:
            x = images.float() / 255.0
            self.img_mean.copy_(x.mean())
            self.img_std.copy_(x.std().clamp_min(1e-3))
        if tab is not None and tab.shape[1]:
            t = tab.double()
            mean = torch.nanmean(t, dim=0)
            var = torch.nanmean((t - mean) ** 2, dim=0)
            self.tab_mean.copy_(torch.nan_to_num(mean, nan=0.0).float())
            self.tab_std.copy_(torch.nan_to_num(var.sqrt(), nan=1.0).clamp_min(1e-6).float())
        return self

    def image(self, x: torch.Tensor) -> torch.Tensor:          # (n,1,S,S) uint8 -> float
        v = x.float() / 255.0
        if self.fill_occlusion:
            seen = (x > 0).to(v.dtype)                                # (n,1,S,S) 1 where not occluded
            mean = (v * seen).sum(dim=(1, 2, 3), keepdim=True) / seen.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1)
            v = torch.where(seen > 0, v, mean)                        # occluded pixels read as average surface
        if self.per_image:
            mean = v.mean(dim=(1, 2, 3), keepdim=True)              # (n,1,1,1)
            return (v - mean) / v.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-2)
        return (v - self.img_mean) / self.img_std

    def tab(self, t: torch.Tensor) -> torch.Tensor:             # (n,C) raw -> standardised, NaN kept
        return (t - self.tab_mean) / self.tab_std


class TabularEncoder(nn.Module):
    """MLP over [values with NaN -> 0, missing indicators]: (n, C) -> (n, hidden)."""

    def __init__(self, n_columns: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * n_columns, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.dim = hidden

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        missing = torch.isnan(t)                                          # (n, C) bool
        values = torch.where(missing, torch.zeros_like(t), t)             # (n, C)
        return self.net(torch.cat([values, missing.to(t.dtype)], dim=1))  # (n, 2C) -> (n, hidden)


class Alignment(nn.Module):
    """Project both embeddings to a shared space; the cosine distance pulls them together.

    Each projection ends in a batch norm without affine parameters, so every shared
    dimension has zero mean and unit variance over the batch. Without it the cosine loss
    has a trivial minimum (both projections output one constant vector, cos = 1) that
    erases the information the head needs; with it the two modalities can only agree by
    co-varying from sample to sample.
    """

    def __init__(self, image_dim: int, tab_dim: int, dim: int):
        super().__init__()
        self.proj_img = nn.Sequential(nn.Linear(image_dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False))
        self.proj_tab = nn.Sequential(nn.Linear(tab_dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False))

    def forward(self, image_emb: torch.Tensor, tab_emb: torch.Tensor) -> AlignOutput:
        z_img, z_tab = self.proj_img(image_emb), self.proj_tab(tab_emb)   # (n, A) each, standardised
        loss = (1.0 - F.cosine_similarity(z_img.float(), z_tab.float(), dim=1, eps=1e-6)).mean()
        return AlignOutput(z_img, z_tab, loss)


class PCARefinement(nn.Module):
    """`steps` rounds of PCA-reduce-to-`dim` and concatenate; components are buffers.

    Round 1 reduces each aligned embedding to `dim`: a = P1a(z_img), b = P1b(z_tab).
    Round k > 1 reduces each modality's aligned embedding together with the other
    modality's current reduction: a' = Pka([z_img, b]), b' = Pkb([z_tab, a]).
    The output is [a, b] (n, 2*dim). Fitted by `fit` (never by backprop) on training
    embeddings only; `fit_rows` records how many rows the fit saw.
    """

    def __init__(self, dim_a: int, dim_b: int, dim: int, steps: int):
        super().__init__()
        if steps < 1:
            raise ValueError(f"refine_steps must be >= 1, got {steps}")
        self.dim, self.steps = dim, steps
        self.register_buffer("fit_rows", torch.zeros((), dtype=torch.long))
        for k in range(steps):
            for side, d in (("a", dim_a), ("b", dim_b)):
                d_in = d if k == 0 else d + dim
                self.register_buffer(f"mean_{side}{k}", torch.zeros(d_in))            # (d_in,)
                self.register_buffer(f"comp_{side}{k}", torch.eye(dim, d_in))         # (dim, d_in)

    @property
    def out_dim(self) -> int:
        return 2 * self.dim

    def _project(self, x: torch.Tensor, side: str, k: int) -> torch.Tensor:   # (n, d_in) -> (n, dim)
        mean, comp = getattr(self, f"mean_{side}{k}"), getattr(self, f"comp_{side}{k}")
        return (x - mean.to(x.dtype)) @ comp.to(x.dtype).T

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:  # (n,A),(n,A) -> (n,2*dim)
        a, b = self._project(z_a, "a", 0), self._project(z_b, "b", 0)
        for k in range(1, self.steps):
            a, b = self._project(torch.cat([z_a, b], 1), "a", k), self._project(torch.cat([z_b, a], 1), "b", k)
        return torch.cat([a, b], dim=1)

    @torch.no_grad()
    def _fit_one(self, x: torch.Tensor, side: str, k: int) -> torch.Tensor:
        mean_buf, comp_buf = getattr(self, f"mean_{side}{k}"), getattr(self, f"comp_{side}{k}")
        x = x.double()
        mean = x.mean(0)
        _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)          # vh (min(n,d), d)
        comp = torch.zeros_like(comp_buf, dtype=torch.float64)
        r = min(self.dim, vh.shape[0])
        comp[:r] = vh[:r]
        # Deterministic signs: agree with the previous fit (less disruption while training),
        # else make each component's largest entry positive.
        prev = comp_buf.double()
        agree = (comp * prev).sum(1)
        peak = comp.gather(1, comp.abs().argmax(1, keepdim=True)).squeeze(1)
        sign = torch.where(agree.abs() > 1e-8, agree.sign(), peak.sign())
        comp *= torch.where(sign == 0, torch.ones_like(sign), sign)[:, None]
        mean_buf.copy_(mean.to(mean_buf.dtype))
        comp_buf.copy_(comp.to(comp_buf.dtype))
        return self._project(x.float(), side, k)

    @torch.no_grad()
    def fit(self, z_a: torch.Tensor, z_b: torch.Tensor) -> PCARefinement:
        """Fit every round in order on training embeddings z_a (N,A), z_b (N,A)."""
        a, b = self._fit_one(z_a, "a", 0), self._fit_one(z_b, "b", 0)
        for k in range(1, self.steps):
            a, b = self._fit_one(torch.cat([z_a.float(), b], 1), "a", k), \
                self._fit_one(torch.cat([z_b.float(), a], 1), "b", k)
        self.fit_rows.fill_(z_a.shape[0])
        return self

    @torch.no_grad()
    def refit_within(self, z_a: torch.Tensor, z_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Refit every round on training embeddings z_a, z_b (N, A), keeping each round's span.

        Each round's mean becomes the training rows' mean and its components the principal
        axes of the training rows inside the span the round already had (a rotation R of
        its outputs). A refit that moved the span could not keep a trained head: what the
        head read outside the new span is gone (least squares lost part of the features and
        reordered the test predictions: docs/benchmarks.md, "Smaller measurements"). Inside
        the span the change is exactly affine: returns (rot (2*dim, 2*dim), shift (2*dim,))
        with old(z) = new(z) @ rot + shift for every input z, not only the training rows, so
        the head absorbs it exactly.
        """
        z = {"a": z_a.double(), "b": z_b.double()}
        eye = torch.eye(self.dim, dtype=torch.float64, device=z_a.device)
        rot = {"a": eye, "b": eye}                    # previous round: old = new @ rot + shift
        shift = {"a": eye.new_zeros(self.dim), "b": eye.new_zeros(self.dim)}
        new: dict[str, torch.Tensor] = {}
        for k in range(self.steps):
            out, rot_k, shift_k = {}, {}, {}
            for side, other in (("a", "b"), ("b", "a")):
                mean_buf, comp_buf = getattr(self, f"mean_{side}{k}"), getattr(self, f"comp_{side}{k}")
                mean, comp, x = mean_buf.double(), comp_buf.double(), z[side]
                if k > 0:                              # input [z, other's previous output], re-expressed
                    d = z[side].shape[1]               # for that output's new basis: b = b' R + s
                    comp = torch.cat([comp[:, :d], comp[:, d:] @ rot[other].T], 1)
                    mean = torch.cat([mean[:d], (mean[d:] - shift[other]) @ rot[other].T])
                    x = torch.cat([z[side], new[other]], 1)
                mu = x.mean(0)
                y = (x - mu) @ comp.T                  # (N, dim) the old outputs, centred on the training rows
                r = torch.linalg.svd(y, full_matrices=True)[2]                     # (dim, dim) orthogonal
                diag = r.diagonal()                    # signs: agree with the old axes, else peak positive
                peak = r.gather(1, r.abs().argmax(1, keepdim=True)).squeeze(1)
                sign = torch.where(diag.abs() > 1e-8, diag.sign(), peak.sign())
                r = r * torch.where(sign == 0, torch.ones_like(sign), sign)[:, None]
                out[side], rot_k[side], shift_k[side] = y @ r.T, r, (mu - mean) @ comp.T
                mean_buf.copy_(mu.to(mean_buf.dtype))
                comp_buf.copy_((r @ comp).to(comp_buf.dtype))
            new, rot, shift = out, rot_k, shift_k
        self.fit_rows.fill_(z_a.shape[0])
        return torch.block_diag(rot["a"], rot["b"]), torch.cat([shift["a"], shift["b"]])


class Head(nn.Module):
    """(n, F) -> (n, 2) logits."""

    def __init__(self, in_dim: int, hidden: int, dropout: float, n_classes: int = 2):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class OANet(nn.Module):
    """Image encoder (+ tabular encoder, alignment, refinement) + head; see the module docstring."""

    def __init__(self, arch: ArchConfig, weights: str | None = None):
        super().__init__()
        self.arch, net = arch, arch.network
        self.norm = InputNorm(arch.n_columns, net.image_norm, net.fill_occlusion)
        self.image_encoder = get_encoder(net.encoder, in_channels=1, weights=weights)
        di = self.image_encoder.dim
        self.tab_encoder = self.alignment = self.refinement = None
        if arch.tabular:
            if arch.n_columns < 1:
                raise ValueError("the fusion model needs at least one tabular column")
            self.tab_encoder = TabularEncoder(arch.n_columns, net.tab_hidden)
            self.alignment = Alignment(di, net.tab_hidden, net.align_dim)
            if net.refine:
                self.refinement = PCARefinement(net.align_dim, net.align_dim, net.refine_dim, net.refine_steps)
            fused = self.refinement.out_dim if net.refine else 2 * net.align_dim
        else:
            fused = di
        self.head = Head(fused, net.head_hidden, net.dropout)

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """(n,1,S,S) uint8 -> (n, Di); a (n, Di) float input is taken as precomputed embeddings.

        With `tta` and in eval mode the embedding is the mean over the 8 flips and
        transposes of the image: a defect's evidence does not depend on its orientation.
        """
        if image.ndim == 2:
            return image
        if self.arch.network.tta and not self.training:
            return torch.stack([self.image_encoder(self.norm.image(flip8(image, k))) for k in range(8)]).mean(0)
        return self.image_encoder(self.norm.image(image))

    def freeze_image_encoder(self) -> OANet:
        """Staged training: the image encoder (and its input norm) stay as they are."""
        self.image_encoder.requires_grad_(False)
        self.image_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> OANet:
        super().train(mode)
        if getattr(self, "image_frozen", False):    # batch-norm statistics of a frozen encoder stay fixed
            self.image_encoder.eval()
        return self

    def forward(self, image: torch.Tensor, tab: torch.Tensor | None = None) -> OANetOutput:
        """image (n,1,S,S) uint8 or precomputed embeddings (n, Di); tab (n, C) raw, NaN = missing."""
        image_emb = self.embed(image)                                           # (n, Di)
        if self.tab_encoder is None:
            logits = self.head(image_emb)
            zero = image_emb.new_zeros((), dtype=torch.float32)
            return OANetOutput(logits, image_emb, None, None, None, image_emb, zero)
        if tab is None:
            raise ValueError("the fusion model needs the tabular input (NaN marks missing values)")
        tab_emb = self.tab_encoder(self.norm.tab(tab))                          # (n, Dt)
        z_img, z_tab, align_loss = self.alignment(image_emb, tab_emb)           # (n, A) x2, ()
        if self.refinement is not None:
            fused = self.refinement(z_img, z_tab)                               # (n, 2*refine_dim)
        else:
            fused = torch.cat([z_img, z_tab], dim=1)                            # (n, 2A)
        return OANetOutput(self.head(fused), image_emb, tab_emb, z_img, z_tab, fused, align_loss)
