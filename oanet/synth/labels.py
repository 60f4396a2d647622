"""The label model: machine and process values of a unit, and whether the unit is defective.

- Every unit draws normal values from `ProcessConfig` (EXPO, GAIN, TEMP, PRESS, THICK).
- An object defect makes the unit defective. For `shift_prob` of them the process
  values also shift by defect type (Crack, Break: TEMP up; Blowhole: PRESS down;
  Uneven: THICK up or down; Fray: PRESS up), so those defects show in the panel too.
  A defect type without a rule (a user's own class) shifts nothing.
- Of defect-free objects, `param_defect_prob` get one process value pushed clearly
  out of spec (THICK outside `thick_spec` or TEMP over `temp_limit`): defect type `param`.
- Values are rounded to their printed decimals before the spec rule is applied, so
  the label follows from the printed numbers. A defect-free object whose normal draw
  is out of spec by chance (THICK beyond 3.3 sd: about 0.1%) is a `param` defect too.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from oanet.config import LabelModelConfig, ProcessConfig

PARAM = "param"
PROCESS_FIELDS = ("exposure_ms", "gain_db", "sinter_temp_c", "press_mpa", "thickness_mm")
# How far past the limit a param defect is pushed: uniform (low, high) in the field's unit.
TEMP_PUSH = (5.0, 30.0)
THICK_PUSH = (0.005, 0.030)


class UnitDraw(NamedTuple):
    values: dict[str, float]       # process field name -> value, rounded as printed
    label: int                     # 0 normal, 1 defect
    defect_type: str | None        # object defect type, "param", or None


def normal_process(pc: ProcessConfig, rng: np.random.Generator) -> dict[str, float]:
    return {name: float(rng.normal(*getattr(pc, name))) for name in PROCESS_FIELDS}


def shift_process(values: dict[str, float], defect_type: str, lm: LabelModelConfig,
                  rng: np.random.Generator) -> dict[str, float]:
    """The process drift that caused an object defect of `defect_type`."""
    out = dict(values)
    if defect_type in ("Crack", "Break"):
        out["sinter_temp_c"] += rng.normal(*lm.temp_shift)
    elif defect_type == "Blowhole":
        out["press_mpa"] -= rng.normal(*lm.press_drop)
    elif defect_type == "Uneven":
        out["thickness_mm"] += rng.choice((-1.0, 1.0)) * rng.normal(*lm.thick_shift)
    elif defect_type == "Fray":
        out["press_mpa"] += rng.normal(*lm.press_rise)
    return out


def push_out_of_spec(values: dict[str, float], lm: LabelModelConfig,
                     rng: np.random.Generator) -> dict[str, float]:
    """One process value clearly out of spec: half TEMP over its limit, half THICK below or above spec."""
    out = dict(values)
    if rng.random() < 0.5:
        out["sinter_temp_c"] = lm.temp_limit + rng.uniform(*TEMP_PUSH)
    elif rng.random() < 0.5:
        out["thickness_mm"] = lm.thick_spec[0] - rng.uniform(*THICK_PUSH)
    else:
        out["thickness_mm"] = lm.thick_spec[1] + rng.uniform(*THICK_PUSH)
    return out


def out_of_spec(values: Mapping[str, float], lm: LabelModelConfig) -> bool:
    """The inspector's rule on printed values: TEMP over its limit or THICK outside [low, high]."""
    lo, hi = lm.thick_spec
    return values["sinter_temp_c"] > lm.temp_limit or not lo <= values["thickness_mm"] <= hi


def round_printed(values: Mapping[str, float], decimals: Mapping[str, int]) -> dict[str, float]:
    """Round like the panel prints (same formatting as `Field.format`), so truth equals print."""
    return {k: float(f"{v:.{decimals[k]}f}") if k in decimals else float(v) for k, v in values.items()}


def draw_unit(object_defect: str | None, lm: LabelModelConfig, pc: ProcessConfig,
              rng: np.random.Generator, decimals: Mapping[str, int] | None = None) -> UnitDraw:
    """Process values and label of one unit whose object has `object_defect` (None: defect-free)."""
    values = normal_process(pc, rng)
    if object_defect is not None:
        if rng.random() < lm.shift_prob:
            values = shift_process(values, object_defect, lm, rng)
    elif rng.random() < lm.param_defect_prob:
        values = push_out_of_spec(values, lm, rng)
    values = round_printed(values, decimals or {})
    if object_defect is not None:
        return UnitDraw(values, 1, object_defect)
    if out_of_spec(values, lm):
        return UnitDraw(values, 1, PARAM)
    return UnitDraw(values, 0, None)
