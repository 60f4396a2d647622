"""Image encoders, chosen by name from a small registry (torchvision architectures, weights=None).

Every encoder maps a normalised grayscale batch (n, 1, S, S) to an embedding (n, d):
- the first convolution takes one channel (a pretrained 3-channel kernel is summed
  over its input channels when loaded, which equals feeding the gray image three times);
- the classifier is replaced by global average pooling, so any image size works and
  the embedding is the last conv stage's width (AlexNet 256, VGG16 512, ResNet18 512).
  torchvision's AlexNet/VGG heads (6x6 / 7x7 pooling into 4096-wide FC layers, 58M and
  120M parameters) are what makes them collapse to the majority class from scratch on
  a thousand images; GAP keeps only the convolutional feature extractor.
- `vgg16` is torchvision's `vgg16_bn` and `alexnet` gets a BatchNorm2d after each of its
  five convolutions: plain VGG16 and AlexNet from scratch collapse to the majority class
  (docs/benchmarks.md, "Smaller measurements"); batch norm lets both train at lr 0.01.
- inputs smaller than an architecture's minimum (AlexNet's stride-4 stem and three
  max-pools need 63 px, VGG's five pools 32 px) are upsampled to it inside `forward`.

Nothing is downloaded. `weights` may name a local state_dict (torchvision's file layout,
e.g. resnet18-f37072fd.pth, or one saved from an `ImageEncoder`); a bad path or a file
that does not fit the architecture fails with a message saying what is wrong.
torchvision is imported inside the builders; import this module (torch) only where it is used.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from oanet.errors import OanetError


class UnknownEncoderError(OanetError, KeyError):
    """An encoder name that is not in the registry; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WeightsError(OanetError, ValueError):
    """A local weights file that is missing, unreadable or does not fit the encoder."""


@dataclass(frozen=True)
class EncoderSpec:
    """How to build one architecture: a torchvision factory and where its parts sit."""
    build: Callable[[], object]           # () -> torchvision nn.Module, weights=None
    first_conv: str                       # dotted path of the stem convolution
    trunk: Callable[[object], object]     # torchvision model -> nn.Module (n,3|1,H,W) -> (n,C,h,w)
    dim: int                              # C: width of the last conv stage
    min_size: int                         # smallest input side the trunk accepts
    pool: str = "avg"                     # avg: (n,C); avgmax: [avg, max] (n,2C), keeps small defects


_REGISTRY: dict[str, EncoderSpec] = {}


def register_encoder(name: str, spec: EncoderSpec) -> EncoderSpec:
    """Make an architecture available as `get_encoder(name)`; a name is registered once."""
    if name in _REGISTRY:
        raise ValueError(f"an image encoder named {name!r} is already registered")
    _REGISTRY[name] = spec
    return spec


def encoder_names() -> tuple[str, ...]:
    """Registered names, in registration order."""
    return tuple(_REGISTRY)


def _spec(name: str) -> EncoderSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownEncoderError(f"unknown image encoder {name!r}; known: {', '.join(encoder_names())}") from None


def encoder_dim(name: str) -> int:
    """Width of the embedding the named encoder returns (after pooling)."""
    spec = _spec(name)
    return spec.dim * (2 if spec.pool == "avgmax" else 1)


def _get_module(root, dotted: str):
    for part in dotted.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def _set_module(root, dotted: str, module) -> None:
    parent, _, last = dotted.rpartition(".")
    holder = _get_module(root, parent) if parent else root
    if last.isdigit():
        holder[int(last)] = module
    else:
        setattr(holder, last, module)


def _read_state_dict(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} (fuse.network.weights in params.yaml; nothing is downloaded)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise WeightsError(f"cannot read weights file {path}: {err}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightsError(f"weights file {path} does not hold a state_dict of tensors")
    return state


def _load_weights(model, spec: EncoderSpec, state: dict, path, name: str) -> None:
    """Load a torchvision-layout state_dict into the full torchvision `model` (before adaptation)."""
    own = model.state_dict()
    conv_w = spec.first_conv + ".weight"
    if conv_w in state and state[conv_w].shape[1] != own[conv_w].shape[1]:   # e.g. a 1-channel file
        state = {**state, conv_w: state[conv_w].sum(dim=1, keepdim=True).expand_as(own[conv_w])
                 / own[conv_w].shape[1]}
    trunk_keys = {k for k in own if not k.startswith(("fc.", "classifier."))}
    missing = sorted(trunk_keys - set(state))
    if missing:
        raise WeightsError(f"weights file {path} does not fit encoder {name!r}: missing {len(missing)} tensors, "
                           f"e.g. {missing[:3]}; expected torchvision's layout of this architecture")
    bad = sorted(k for k in trunk_keys if tuple(state[k].shape) != tuple(own[k].shape))
    if bad:
        raise WeightsError(f"weights file {path} does not fit encoder {name!r}: wrong shapes for {bad[:3]}")
    model.load_state_dict({k: state[k] for k in trunk_keys}, strict=False)


class ImageEncoder(nn.Module):
    """trunk + global pooling: (n, in_ch, S, S) float -> (n, dim).

    Average pooling alone dilutes a defect that covers a few cells of the last feature
    map (a blowhole is about 1 cell of 8x8 at 128 px); `avgmax` concatenates the
    maximum, which keeps it, so dim = 2C.
    """

    def __init__(self, trunk: nn.Module, channels: int, min_size: int, pool: str = "avg"):
        super().__init__()
        if pool not in ("avg", "avgmax"):
            raise ValueError(f"encoder pooling must be avg or avgmax, got {pool!r}")
        self.trunk = trunk
        self.with_max = pool == "avgmax"
        self.dim = channels * (2 if self.with_max else 1)
        self.min_size = min_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (n, c, S, S) -> (n, dim)
        if min(x.shape[-2:]) < self.min_size:
            x = F.interpolate(x, size=(self.min_size, self.min_size), mode="bilinear", align_corners=False)
        f = self.trunk(x)                                         # (n, C, h, w)
        avg = f.mean(dim=(2, 3))                                  # (n, C)
        return torch.cat([avg, f.amax(dim=(2, 3))], 1) if self.with_max else avg


def get_encoder(name: str, *, in_channels: int = 1, weights: str | Path | None = None):
    """A new `ImageEncoder` (nn.Module, attribute `dim`) of the named architecture.

    `weights`: a local state_dict in torchvision's layout (its classifier is ignored) or
    one saved from an `ImageEncoder` of the same architecture (keys `trunk.*`).
    """
    spec = _spec(name)
    model = spec.build()
    state = _read_state_dict(weights) if weights else None
    for prefix in ("module.", "_orig_mod."):                     # DDP / torch.compile wrappers
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    ours = bool(state) and all(k.startswith("trunk.") for k in state)
    if state and not ours:
        _load_weights(model, spec, state, weights, name)
    old = _get_module(model, spec.first_conv)
    if in_channels != old.in_channels:
        new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                        bias=old.bias is not None)
        if state and not ours:   # summing RGB kernels == feeding the gray image to all three channels
            new.weight.data.copy_(old.weight.data.sum(dim=1, keepdim=True).expand_as(new.weight) / in_channels)
            if old.bias is not None:
                new.bias.data.copy_(old.bias.data)
        _set_module(model, spec.first_conv, new)
    encoder = ImageEncoder(spec.trunk(model), spec.dim, spec.min_size, spec.pool)
    if ours:
        own = encoder.state_dict()
        bad = sorted(set(own) ^ set(state)) or sorted(k for k in own if own[k].shape != state[k].shape)
        if bad:
            raise WeightsError(f"weights file {weights} does not fit encoder {name!r} with {in_channels} input "
                               f"channel(s): {len(bad)} tensors differ, e.g. {bad[:3]}")
        encoder.load_state_dict(state)
    return encoder


def _alexnet():
    from torchvision.models import alexnet
    return alexnet(weights=None)


def _vgg16_bn():
    from torchvision.models import vgg16_bn
    return vgg16_bn(weights=None)


def _resnet18():
    from torchvision.models import resnet18
    return resnet18(weights=None)


def _with_batchnorm(features: nn.Sequential) -> nn.Sequential:
    """AlexNet's features with a BatchNorm2d after every convolution (AlexNet-BN).

    Built after any torchvision weights were loaded into the plain convolutions, so a
    pretrained file still loads; the new norms start as identity-scaled and train.
    """
    layers = []
    for layer in features:
        layers.append(layer)
        if isinstance(layer, nn.Conv2d):
            layers.append(nn.BatchNorm2d(layer.out_channels))
    return nn.Sequential(*layers)


def _resnet_trunk(m):
    return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4)


class _BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with a (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.short(x), inplace=True)


class NarrowResNet(nn.Module):
    """A ResNet sized for a 2-core CPU: widths 16-32-64-128, `blocks` basic blocks per stage.

    The stem is one 3x3 stride-2 convolution (no max-pool): ResNet18's 7x7 stride-2 conv
    plus max-pool divides the side by 4 before any residual block, which turns a 2 px
    defect into half a cell. Here a 128 px tile ends as an 8x8 map of 128 channels, at
    about 1/25 of ResNet18's multiply-adds at the same size. Attributes follow
    torchvision's names (`conv1`, `fc`) so the weights loader treats it like the others.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), blocks: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, c_in = [], widths[0]
        for k, c in enumerate(widths):
            for b in range(blocks):
                layers.append(_BasicBlock(c_in, c, 2 if (k > 0 and b == 0) else 1))
                c_in = c
        self.layers = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in self.layers:          # zero-init the last norm of each block: it starts as identity
            nn.init.zeros_(block.bn2.weight)

    def trunk(self) -> nn.Module:
        return nn.Sequential(self.conv1, self.bn1, nn.ReLU(inplace=True), self.layers)


register_encoder("alexnet", EncoderSpec(_alexnet, "features.0", lambda m: _with_batchnorm(m.features), 256, 63))
register_encoder("vgg16", EncoderSpec(_vgg16_bn, "features.0", lambda m: m.features, 512, 32))
register_encoder("resnet18", EncoderSpec(_resnet18, "conv1", _resnet_trunk, 512, 1))
# The CPU encoder: from scratch in minutes on 2 cores (docs/benchmarks.md, "MT-AOI benchmark").
register_encoder("narrow_resnet", EncoderSpec(NarrowResNet, "conv1", lambda m: m.trunk(), 128, 1, "avgmax"))
