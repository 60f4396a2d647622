"""The `synth` stage: write a synthetic AOI data set whose every printed value is known.

Output folder:
- images/U{nnnnnn}.png   AOI screens of the panel style (`cfg.style`); aoi-v1: 8-bit grayscale
                         640x480, object lower-left, panel around. A style that saves JPEG
                         writes images/U{nnnnnn}.jpg.
- labels.csv             image,label,defect_type,lot (defect_type empty for good units;
                         a lot never splits the photos of one physical tile)
- truth.csv              image + one column per layout field: the exact printed value
                         (`Field.format_value`; a style's `+` sign is not part of it)
- layout.yaml            the style's layout contract, with its line boxes: what a user of
                         that machine would write
- incident.json          only for a night with an incident (`incident=`, see incidents.py):
                         its name and what it changed; the layout does not show it

Every unit draws from its own generator, spawned from the seed, so a unit's content
depends only on the seed and its index: the same seed gives identical files. The style
changes only how a unit is printed and saved, never what is drawn: one seed gives the
same units, labels and truth values under every style (the layout field order of a
style decides the truth.csv column order).

Seed: `cfg.seed` always. A style file's own `seed` is the default of the command line:
`oanet synth --style NAME` without `--seed` uses the style's seed, so a style corpus is
reproducible from its name alone; `--seed` overrides it, and a style set in params.yaml
(synth.style) renders with synth.seed. The built-in aoi-v1 style's seed is 7, the
params.yaml default.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from oanet.config import SynthConfig
from oanet.errors import OanetError
from oanet.layout import Layout
from oanet.synth.incidents import Incident, IncidentSpec
from oanet.synth.labels import draw_unit
from oanet.synth.objects import ObjectSource, object_source
from oanet.synth.panel import PRESETS, compose, draw_style
from oanet.synth.stats import object_stats
from oanet.synth.styles import Style, load_style

MAX_UNIT_ID = 999_999
STATIONS = ("AOI-01", "AOI-02", "AOI-03", "AOI-04")
_IMAGE_NAME = re.compile(r"U\d{6}\.(png|jpg)")
_MAX_PENDING = 16


@dataclass(frozen=True)
class SynthResult:
    out: Path
    n: int
    defects: int
    by_type: dict[str, int] = field(default_factory=dict)   # defect type -> units, "param" included
    source: str = "procedural"
    incident: dict | None = None      # incident.json, for a night with an incident

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_type.items())) or "none"
        night = f"\n  incident.json: {json.dumps(self.incident)}" if self.incident else ""
        return (f"synth: {self.n} images ({self.source} objects) in {self.out}\n"
                f"  defective {self.defects} ({kinds}); labels.csv, truth.csv, layout.yaml written" + night)


@dataclass(frozen=True)
class _Plan:
    """What every unit shares: config, style and its layout, object source, first unit id, output folder."""
    cfg: SynthConfig
    style: Style
    layout: Layout
    source: ObjectSource
    first_id: int
    images: Path
    decimals: dict[str, int]
    incident: Incident


def _unit(plan: _Plan, index: int, seed: np.random.SeedSequence) -> tuple[dict, dict, Image.Image]:
    """Render one unit: its labels.csv row, truth.csv row and image."""
    cfg, rng = plan.cfg, np.random.default_rng(seed)
    obj = plan.incident.object(plan.source(index, rng))
    draw = draw_unit(obj.defect_type, cfg.label_model, cfg.process, rng, plan.decimals)
    lot = f"L{cfg.lot_yymm}-{plan.source.lot_of(index, cfg.units_per_lot) + 1:04d}"   # tiles never span lots
    values = {"lot": lot, "unit_id": f"U{plan.first_id + index:06d}",
              "station": STATIONS[int(rng.integers(len(STATIONS)))], "light": str(obj.light),
              **draw.values, **object_stats(obj.tile, cfg.edge_threshold)._asdict()}
    fields = plan.layout.fields
    render = plan.style.render
    img = compose(plan.layout, obj.image, render.lines(plan.layout, values),
                  draw_style(cfg.preset, rng, plan.incident.panel(render.panel_style())), rng)
    name = f"images/{values['unit_id']}.{render.suffix}"
    label = {"image": name, "label": draw.label, "defect_type": draw.defect_type or "", "lot": lot}
    return label, {"image": name, **{f.name: f.format_value(values[f.name]) for f in fields}}, img


def _save(img: Image.Image, path: Path, image_format: str = "png", quality: int = 90) -> None:
    if image_format == "jpeg":
        img.save(path, format="JPEG", quality=quality)
    else:
        img.save(path, format="PNG", compress_level=1)   # level 1: several times faster than the default


def _render_all(plan: _Plan, seeds: list[np.random.SeedSequence], progress: bool) -> list[tuple[dict, dict]]:
    """Render units in order; a writer thread encodes the images meanwhile (Pillow releases the GIL)."""
    from tqdm import tqdm

    rows, pending = [], deque()
    with ThreadPoolExecutor(max_workers=1) as writer:
        for i, seed in enumerate(tqdm(seeds, desc="synth", unit="img", disable=not progress)):
            label, truth, img = _unit(plan, i, seed)
            rows.append((label, truth))
            pending.append(writer.submit(_save, img, plan.images.parent / label["image"],
                                         plan.style.render.image_format, plan.style.render.jpeg_quality))
            if len(pending) > _MAX_PENDING:       # bound memory; also surfaces a write error early
                pending.popleft().result()
        for done in pending:
            done.result()
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _clear_images(images: Path) -> None:
    """Remove unit images of an earlier run, so the folder holds exactly this data set."""
    for path in images.glob("U*.*"):
        if _IMAGE_NAME.fullmatch(path.name):
            path.unlink()


def _plan(cfg: SynthConfig, out: Path, rng: np.random.Generator, incident: IncidentSpec) -> _Plan:
    if not 1 <= cfg.n < MAX_UNIT_ID:
        raise ValueError(f"synth n must be between 1 and {MAX_UNIT_ID - 1}, got {cfg.n}")
    if cfg.units_per_lot < 1:
        raise ValueError(f"synth units_per_lot must be at least 1, got {cfg.units_per_lot}")
    if not re.fullmatch(r"\d{4}", str(cfg.lot_yymm)):
        raise ValueError(f"synth lot_yymm must be 4 digits (yymm), got {cfg.lot_yymm!r}")
    if cfg.preset not in PRESETS:     # fail before any file is touched, not at the first image
        raise ValueError(f"unknown synth preset {cfg.preset!r}; known: {PRESETS}")
    style = load_style(cfg.style)
    layout = style.layout
    night = incident.build(cfg.process, style.render.panel_style())   # draws nothing from rng
    cfg = cfg if night.process is None else replace(cfg, process=night.process)
    source = object_source(cfg.objects, cfg.defect_rate, cfg.defect_weights, rng)
    first_id = int(rng.integers(1, MAX_UNIT_ID - cfg.n + 1))
    decimals = {f.name: f.decimals for f in layout.fields if f.dtype == "float" and f.decimals is not None}
    return _Plan(cfg, style, layout, source, first_id, out / "images", decimals, night)


def with_lot_prefix(cfg: SynthConfig, prefix: str | None) -> SynthConfig:
    """Lots L<prefix>-0001...: 4 digits replace `lot_yymm`; `seed` takes the seed's last four
    digits, so nights of different seeds (under 10,000 apart) never share a lot name."""
    if prefix is None:
        return cfg
    if prefix != "seed" and not re.fullmatch(r"\d{4}", prefix):
        raise OanetError(f"a lot prefix is 4 digits or `seed`, got {prefix!r}")
    return replace(cfg, lot_yymm=f"{cfg.seed % 10_000:04d}" if prefix == "seed" else prefix)


def run(cfg: SynthConfig, out: Path, *, progress: bool = True,
        incident: IncidentSpec | str | None = None) -> SynthResult:
    """Write `cfg.n` AOI images with labels.csv, truth.csv and layout.yaml into `out`;
    with an `incident` (a name or an IncidentSpec), a night with it and its incident.json."""
    out = Path(out)
    spec = IncidentSpec(incident) if isinstance(incident, str) else incident or IncidentSpec()
    plan_seed, units_seed = np.random.SeedSequence(cfg.seed).spawn(2)
    plan = _plan(cfg, out, np.random.default_rng(plan_seed), spec)
    plan.images.mkdir(parents=True, exist_ok=True)
    _clear_images(plan.images)
    rows = _render_all(plan, units_seed.spawn(cfg.n), progress)
    labels, truth = [r[0] for r in rows], [r[1] for r in rows]
    _write_csv(out / "labels.csv", labels)
    _write_csv(out / "truth.csv", truth)
    plan.layout.save(out / "layout.yaml")
    record = out / "incident.json"
    if incident is None:
        record.unlink(missing_ok=True)       # a clean run leaves no incident of an earlier one
    else:
        record.write_text(json.dumps(plan.incident.record(), indent=2) + "\n")
    by_type = Counter(r["defect_type"] for r in labels if r["label"] == 1)
    return SynthResult(out=out, n=cfg.n, defects=sum(by_type.values()), by_type=dict(by_type),
                       source=str(cfg.objects) if cfg.objects else "procedural",
                       incident=None if incident is None else plan.incident.record())
