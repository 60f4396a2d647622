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
  (measured on MT-AOI, ../shared/DESIGN.md, and again here: AlexNet at 32 px on the CPU
  had test recall 0.0); batch norm lets both train at lr 0.01.
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
    dim: int                              # C: width of the embedding after pooling
    min_size: int                         # smallest input side the trunk accepts


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
    return _spec(name).dim


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
        raise WeightsError(f"weights file not found: {path} (fuse.weights in params.yaml; nothing is downloaded)")
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
    """trunk + global average pooling: (n, in_ch, S, S) float -> (n, dim)."""

    def __init__(self, trunk: nn.Module, dim: int, min_size: int):
        super().__init__()
        self.trunk = trunk
        self.dim = dim
        self.min_size = min_size
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (n, c, S, S) -> (n, dim)
        if min(x.shape[-2:]) < self.min_size:
            x = F.interpolate(x, size=(self.min_size, self.min_size), mode="bilinear", align_corners=False)
        return self.pool(self.trunk(x)).flatten(1)                # (n, C, h, w) -> (n, C)


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
    encoder = ImageEncoder(spec.trunk(model), spec.dim, spec.min_size)
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


register_encoder("alexnet", EncoderSpec(_alexnet, "features.0", lambda m: _with_batchnorm(m.features), 256, 63))
register_encoder("vgg16", EncoderSpec(_vgg16_bn, "features.0", lambda m: m.features, 512, 32))
register_encoder("resnet18", EncoderSpec(_resnet18, "conv1", _resnet_trunk, 512, 1))
