"""Finding 12: params.yaml scalars are type- and range-checked at load; the error names the key."""
from __future__ import annotations

import dataclasses
import math

import pytest
import yaml

from oanet.config import ConfigError, FuseConfig, Params, from_dict, load_params


def _load(tmp_path, section: str, key: str, value):
    """params.yaml with one key set; `section` may be dotted (fuse.optimiser)."""
    raw = {key: value}
    for name in reversed(section.split(".")):
        raw = {name: raw}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_params(path)


@pytest.mark.parametrize("section, key, value, words", [
    ("split", "group_by_lot", "false", "true or false"),          # a non-empty string is truthy
    ("fuse.network", "tta", 1, "true or false"),
    ("nightly", "push", "no", "true or false"),
    ("register", "max_accuracy_drop", math.inf, "finite"),         # would promote any model
    ("ingest", "min_confidence", math.nan, "finite"),              # would switch the confidence gate off
    ("gate", "min_accuracy", math.nan, "finite"),
    ("ingest", "min_confidence", 1.5, "in [0, 1]"),
    ("fuse.training", "mask_prob", -0.1, "in [0, 1]"),
    ("fuse.training", "gridmask_prob", 2, "in [0, 1]"),
    ("gate", "min_accuracy", 90, "in [0, 1]"),                     # a percentage where a share belongs
    ("register", "max_robust_recall_drop", 5, "in [0, 1]"),
    ("validate", "max_missing_rate", -0.5, "in [0, 1]"),
    ("split", "test_size", 30, "in [0, 1]"),
    ("fuse.optimiser", "epochs", True, "whole number"),                      # True is 1 to Python
    ("fuse.optimiser", "epochs", 2.5, "whole number"),
    ("fuse.optimiser", "epochs", 0, ">= 1"),
    ("fuse.optimiser", "batch_size", -32, ">= 1"),
    ("synth", "n", 0, ">= 1"),
    ("split", "seed", -1, ">= 0"),
    ("fuse.optimiser", "lr", 0, "> 0"),
    ("fuse.optimiser", "lr", "1e-3", "number"),                              # YAML 1.1 reads 1e-3 as text
    ("ingest", "rec_model", 5, "text"),
    ("evaluate", "missing_rates", [0.0, 1.5], "in [0, 1]"),
    ("gate", "temperatures", [1.0, 0.0], "> 0"),
    ("bag", "models", "lightgbm", "list"),
    ("synth", "defect_weights", {"Crack": -1}, ">= 0"),
])
def test_params_bad_scalar_is_refused_naming_the_key(tmp_path, section, key, value, words):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, section, key, value)
    assert f"{section}.{key}" in str(err.value) and words in str(err.value), str(err.value)


def test_params_whole_float_becomes_an_int_and_an_int_a_float(tmp_path):
    assert type(_load(tmp_path, "fuse.optimiser", "epochs", 3.0).fuse.optimiser.epochs) is int
    assert type(_load(tmp_path, "fuse.optimiser", "lr", 1).fuse.optimiser.lr) is float


@dataclasses.dataclass(frozen=True)
class _Optional:
    drop_prob: float | None = None
    note: str | None = None


@pytest.mark.parametrize("raw", [{"drop_prob": None}, {"drop_prob": 0.5}, {"note": None}, {"note": "x"}])
def test_params_optional_accepts_none_or_its_type(raw):
    from_dict(_Optional, raw)


@pytest.mark.parametrize("raw", [{"drop_prob": math.nan}, {"drop_prob": 2.0}, {"drop_prob": "0.5"}, {"note": 3}])
def test_params_optional_refuses_anything_else(raw):
    with pytest.raises(ConfigError, match=next(iter(raw))):
        from_dict(_Optional, raw)


def test_params_repo_file_and_every_default_pass_the_checks(repo_root):
    load_params(repo_root / "params.yaml")
    from_dict(Params, dataclasses.asdict(Params()), "params")


def test_params_profile_overrides_are_checked_like_the_fuse_section():
    params = Params()
    profile = dataclasses.replace(params.evaluate.paper, fuse={"training": {"gridmask_prob": 1.3}})
    with pytest.raises(ConfigError, match="gridmask_prob"):
        profile.fuse_config(FuseConfig(), "vgg16", 0)
