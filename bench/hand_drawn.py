"""A panel no part of oanet drew: an imaginary "kiln line 3" machine, for benchmarks.

    python bench/hand_drawn.py OUT [--n 40] [--level clean|hard|vhard] [--lots 4]

800x600 RGB, a navy panel on the right with serif-bold text, keys printed ten ways
(`Batch# L0041`, `Oven T [C] = 1083.8`, `Vac(kPa): -9.41`, `Shift - NIGHT`...), a textured
object top-left, label 1 when humidity > 55 or a scratch is drawn. `hard` jitters each
line by up to 5 px, greys the ink, blurs and saves JPEG at quality 55; `vhard` prints at
14 px with more blur and JPEG 35 (almost nothing reads). Writes images/, labels.csv,
truth.csv (the printed text of every field) and layout.yaml (hand-made: tight physical
ranges, categories, the lot as `group`). Drawn from an external probe of the docs' own
bring-your-own-data walk-through, where it showed in-format misreads the parser cannot
catch (bench/ocr_verify.py).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

LEVELS = {"clean": dict(size=19, blur=0.0, noise=3, jpeg=None, jitter=0, ink=(238, 230, 196)),
          "hard": dict(size=19, blur=1.1, noise=9, jpeg=55, jitter=5, ink=(150, 150, 140)),
          "vhard": dict(size=14, blur=1.4, noise=12, jpeg=35, jitter=5, ink=(150, 150, 140))}
PANEL, LINE_GAP, FIRST_LINE = (470, 20, 790, 580), 46, 38
FIELDS = [  # name, key, printed line, layout extras
    ("lot", "Batch#", "Batch# {}", dict(dtype="str", role="group", pattern=r"L\d{4}")),
    ("serial", "Serial", "Serial: {}", dict(dtype="str", role="id", pattern=r"SN\d{5}")),
    ("oven_t_c", "Oven T [C]", "Oven T [C] = {}", dict(dtype="float", decimals=1, range=[900.0, 1300.0])),
    ("line_speed", "Line speed", "Line speed {} m/min", dict(dtype="float", decimals=1, unit="m/min",
                                                             range=[5.0, 20.0])),
    ("operator", "Operator", "Operator: {}", dict(dtype="category", categories=["A", "B", "C"])),
    ("humidity", "Humidity", "Humidity {} %", dict(dtype="int", unit="%", range=[0, 100])),
    ("zones", "Zones", "Zones = {}", dict(dtype="int", range=[1, 20])),
    ("vac_k_pa", "Vac(kPa)", "Vac(kPa): {}", dict(dtype="float", decimals=2, range=[-30.0, 0.0])),
    ("shift", "Shift", "Shift - {}", dict(dtype="category", categories=["DAY", "NIGHT"])),
    ("ratio", "Ratio", "Ratio {}", dict(dtype="float", decimals=4, range=[0.0, 1.0])),
]


def _values(rng) -> dict[str, str]:
    return {"serial": f"SN{rng.integers(10000, 99999)}", "oven_t_c": f"{rng.normal(1080, 60):.1f}",
            "line_speed": f"{rng.uniform(8.0, 14.0):.1f}", "operator": str(rng.choice(["A", "B", "C"])),
            "humidity": str(rng.integers(30, 70)), "zones": str(rng.integers(3, 12)),
            "vac_k_pa": f"{rng.normal(-12.0, 3.0):.2f}", "shift": str(rng.choice(["DAY", "NIGHT"])),
            "ratio": f"{rng.uniform(0.7, 0.99):.4f}"}


def layout() -> dict:
    boxes = [[PANEL[0] + 4, FIRST_LINE + LINE_GAP * k - 10, PANEL[2], FIRST_LINE + LINE_GAP * k + 32]
             for k in range(len(FIELDS))]
    return {"name": "kiln3", "size": [800, 600], "object_roi": [0, 0, PANEL[0], 600],
            "fields": [{"name": n, "key": k, "roi": b, **extra} for (n, k, _, extra), b in zip(FIELDS, boxes,
                                                                                                 strict=True)]}


def draw(out: Path, n: int = 40, level: str = "clean", seed: int = 1234, lots: int = 4) -> Path:
    import yaml
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    look, rng = LEVELS[level], np.random.default_rng(seed)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf", look["size"])
    (out / "images").mkdir(parents=True, exist_ok=True)
    labels, truth = [], []
    for i in range(n):
        values = {"lot": f"L{41 + i * lots // n:04d}", **_values(rng)}
        scratch = bool(rng.random() < 0.3)
        img = Image.new("RGB", (800, 600), (200, 200, 196))
        ink = ImageDraw.Draw(img)
        img.paste(Image.fromarray(rng.normal(128, 18, (360, 360)).clip(0, 255).astype(np.uint8)).convert("RGB"),
                  (40, 40))
        if scratch:
            x, y = rng.integers(80, 300, 2)
            ink.line([(x, y), (x + rng.integers(40, 90), y + rng.integers(-60, 60))], fill=(20, 20, 20), width=3)
        ink.rectangle(PANEL, fill=(28, 36, 64))
        for k, (name, _, line, _) in enumerate(FIELDS):
            jx, jy = rng.integers(-look["jitter"], look["jitter"] + 1, 2) if look["jitter"] else (0, 0)
            ink.text((PANEL[0] + 16 + jx, FIRST_LINE + LINE_GAP * k - 2 + jy), line.format(values[name]), font=font,
                     fill=look["ink"])
        if look["blur"]:
            img = img.filter(ImageFilter.GaussianBlur(look["blur"]))
        noisy = np.asarray(img).astype(np.int16) + rng.normal(0, look["noise"], (600, 800, 1)).astype(np.int16)
        img = Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
        name = f"images/K3_{i:04d}.{'jpg' if look['jpeg'] else 'png'}"
        img.save(out / name, **({"quality": look["jpeg"]} if look["jpeg"] else {}))
        labels.append({"image": name, "label": int(int(values["humidity"]) > 55 or scratch), "lot": values["lot"]})
        truth.append({"image": name, **values})
    for file, rows in (("labels.csv", labels), ("truth.csv", truth)):
        with open(out / file, "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (out / "layout.yaml").write_text(yaml.safe_dump(layout(), sort_keys=False))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--level", choices=sorted(LEVELS), default="clean")
    ap.add_argument("--lots", type=int, default=4, help="lots the units are spread over (a grouped split wants 10+)")
    args = ap.parse_args()
    print(f"wrote {args.n} {args.level} kiln-3 panels in {args.lots} lots to "
          f"{draw(args.out, args.n, args.level, lots=args.lots)}")
