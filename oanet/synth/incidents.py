"""Simulated incidents: a night of `oanet synth` on a line that changed overnight.

An incident changes one thing about how units are photographed, printed or made, and
nothing else: it draws nothing from the units' generators, so every other value, label
and pixel of the night is the one the clean night of the same seed has. The layout
contract stays the style's own (a real machine does not announce its changes); the stage
writes the ground truth to `incident.json` instead.

- `none`: a clean night.
- `exposure`: the lamp or exposure changed: every object photograph's gray levels are
  scaled by `factor` (default 1.35, brighter; < 1 darker), clipped to 0..255. The printed
  MEAN, STD, DARK and EDGE are measured on the changed photograph, as the machine would.
- `font`: a firmware update changed the panel font: the style's font is replaced by
  STIX General 3 px smaller (`FONT`; same layout boxes, keys and templates), so OCR
  reads some fields worse (missing as low_confidence or unparsed) and most as before.
- `process`: a process shift in one value: the mean of `field` (default sinter_temp_c)
  moves by `shift_sd` (default +3.5) standard deviations of its process spread. The label
  model still applies, so more units may be out of spec, as on a real line.
- `camera`: the camera moved: the object moves by `shift` (default 0.2) of the object box
  right and down inside its box; the uncovered part shows the background, the part moved
  out of the box is lost. The printed statistics describe the part of the tile still seen.

Each incident is one builder in `INCIDENTS` (by name) around a pure function.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from oanet.config import ProcessConfig
from oanet.errors import OanetError
from oanet.synth.labels import PROCESS_FIELDS
from oanet.synth.objects import Box, ObjectSample
from oanet.synth.panel import PanelStyle

NONE = "none"
EXPOSURE_FACTOR = 1.35
PROCESS_FIELD, PROCESS_SHIFT_SD = "sinter_temp_c", 3.5
CAMERA_SHIFT = 0.2
# The new firmware's font: STIX General (a Times-like serif) 3 px smaller, at least 15 px.
# On aoi-v1 (built-in 18 px) OCR then loses about a quarter of the TEMP reads (the
# decimal point of 111x.x) and a few others; at 13 px it would lose most fields.
FONT, FONT_SHRINK, FONT_MIN = "stix", 3, 15
FONT_ALT = "dejavu-serif"      # for a style that already prints in STIX


class IncidentError(OanetError, ValueError):
    """An unknown incident, or an option it does not take; the message lists what is known."""


@dataclass(frozen=True)
class Incident:
    """What an incident does to a night (each hook defaults to nothing) and its ground truth."""
    name: str
    truth: dict = field(default_factory=dict)        # written to incident.json beside the name
    on_object: Callable[[ObjectSample], ObjectSample] | None = None
    on_panel: Callable[[PanelStyle], PanelStyle] | None = None
    process: ProcessConfig | None = None             # the night's process config, when it changed

    def object(self, sample: ObjectSample) -> ObjectSample:
        return sample if self.on_object is None else self.on_object(sample)

    def panel(self, style: PanelStyle) -> PanelStyle:
        return style if self.on_panel is None else self.on_panel(style)

    def record(self) -> dict:
        """incident.json: {"incident": name, ...what changed, by how much}."""
        return {"incident": self.name, **self.truth}


# --- the pure changes ----------------------------------------------------------------

def scale_gray(img: np.ndarray, factor: float) -> np.ndarray:
    """Gray levels times `factor`, rounded and clipped to 0..255 (uint8 in, uint8 out)."""
    return np.clip(img.astype(np.float32) * np.float32(factor), 0, 255).round().astype(np.uint8)


def shift_image(img: np.ndarray, dx: int, dy: int, fill: int) -> np.ndarray:
    """The image content moved by (dx, dy) px (right, down when positive); uncovered pixels `fill`."""
    h, w = img.shape[:2]
    out = np.full_like(img, fill)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def shift_box(box: Box, dx: int, dy: int, size: tuple[int, int]) -> Box:
    """A box moved by (dx, dy) and clipped to an image of `size` (width, height)."""
    x0, y0, x1, y1 = box
    w, h = size
    return (min(max(x0 + dx, 0), w), min(max(y0 + dy, 0), h), min(max(x1 + dx, 0), w), min(max(y1 + dy, 0), h))


def background_level(sample: ObjectSample) -> int:
    """The median gray around the tile (0 when the tile fills the image)."""
    x0, y0, x1, y1 = sample.tile_box
    outside = np.ones(sample.image.shape[:2], dtype=bool)
    outside[y0:y1, x0:x1] = False
    return int(np.median(sample.image[outside])) if outside.any() else 0


def move_camera(sample: ObjectSample, shift: float) -> ObjectSample:
    """The object moved by `shift` of the image size right and down, its tile box with it."""
    h, w = sample.image.shape[:2]
    dx, dy = round(shift * w), round(shift * h)
    return sample._replace(image=shift_image(sample.image, dx, dy, background_level(sample)),
                           tile_box=shift_box(sample.tile_box, dx, dy, (w, h)))


def expose(sample: ObjectSample, factor: float) -> ObjectSample:
    return sample._replace(image=scale_gray(sample.image, factor))


def shift_mean(pc: ProcessConfig, name: str, sds: float) -> ProcessConfig:
    """The process config with the mean of `name` moved by `sds` of its standard deviations."""
    mean, sd = getattr(pc, name)
    return dataclasses.replace(pc, **{name: (mean + sds * sd, sd)})


def swap_font(style: PanelStyle, font: str, size_delta: int) -> PanelStyle:
    return dataclasses.replace(style, font=font, font_size=style.font_size + size_delta)


# --- the registry ----------------------------------------------------------------------

Builder = Callable[..., Incident]
INCIDENTS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        if name in INCIDENTS:
            raise ValueError(f"incident {name!r} is already registered")
        INCIDENTS[name] = builder
        return builder
    return add


@register(NONE)
def _none(process: ProcessConfig, panel: PanelStyle, field: str | None, magnitude: float | None) -> Incident:
    return Incident(NONE)


@register("exposure")
def _exposure(process: ProcessConfig, panel: PanelStyle, field: str | None, magnitude: float | None) -> Incident:
    factor = EXPOSURE_FACTOR if magnitude is None else magnitude
    if not 0 < factor != 1:
        raise IncidentError(f"exposure factor must be positive and not 1, got {factor}")
    return Incident("exposure", {"factor": factor}, on_object=lambda s: expose(s, factor))


@register("font")
def _font(process: ProcessConfig, panel: PanelStyle, field: str | None, magnitude: float | None) -> Incident:
    font = FONT if panel.font != FONT else FONT_ALT
    delta = max(FONT_MIN, panel.font_size - FONT_SHRINK) - panel.font_size
    new = swap_font(panel, font, delta)
    return Incident("font", {"font": new.font, "font_size": new.font_size, "was": panel.font,
                             "was_size": panel.font_size}, on_panel=lambda s: swap_font(s, font, delta))


@register("process")
def _process(process: ProcessConfig, panel: PanelStyle, field: str | None, magnitude: float | None) -> Incident:
    name = field or PROCESS_FIELD
    sds = PROCESS_SHIFT_SD if magnitude is None else magnitude
    if name not in PROCESS_FIELDS:
        raise IncidentError(f"process incident field {name!r} is not a process value; known: {list(PROCESS_FIELDS)}")
    new = shift_mean(process, name, sds)
    (was, sd), mean = getattr(process, name), getattr(new, name)[0]
    return Incident("process", {"field": name, "shift_sd": sds, "shift": round(mean - was, 9), "sd": sd,
                                "mean": round(mean, 9), "was_mean": was}, process=new)


@register("camera")
def _camera(process: ProcessConfig, panel: PanelStyle, field: str | None, magnitude: float | None) -> Incident:
    shift = CAMERA_SHIFT if magnitude is None else magnitude
    if not 0 < abs(shift) < 0.5:
        raise IncidentError(f"camera shift is a share of the object box, 0 < |shift| < 0.5, got {shift}")
    return Incident("camera", {"shift": shift, "direction": "right and down" if shift > 0 else "left and up"},
                    on_object=lambda s: move_camera(s, shift))


@dataclass(frozen=True)
class IncidentSpec:
    """The incident a user asked for, checked at once; `build` makes it for one night.

    `field`: the process value to shift (process only); `magnitude`: the exposure factor,
    the process shift in standard deviations or the camera shift as a share of the object box.
    """
    name: str = NONE
    field: str | None = None
    magnitude: float | None = None

    def __post_init__(self):
        if self.name not in INCIDENTS:
            raise IncidentError(f"unknown incident {self.name!r}; known: {sorted(INCIDENTS)}")
        if self.field is not None and self.name != "process":
            raise IncidentError(f"an incident field names the process value to shift; {self.name!r} takes none")
        if self.magnitude is not None and self.name in (NONE, "font"):
            raise IncidentError(f"the {self.name!r} incident takes no magnitude")

    def build(self, process: ProcessConfig, panel: PanelStyle) -> Incident:
        """The incident for a night of this process config and base panel style."""
        return INCIDENTS[self.name](process, panel, self.field, self.magnitude)
