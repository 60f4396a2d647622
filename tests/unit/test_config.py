"""Typed, frozen configuration: params.yaml -> Params, strict keys, coercion."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from oanet.config import (
    ConfigError,
    IngestConfig,
    LabelModelConfig,
    Params,
    PathsConfig,
    SynthConfig,
    ValidateConfig,
    from_dict,
    load_params,
    updated,
)


def test_repo_params_yaml_loads(repo_root):
    params = load_params(repo_root / "params.yaml")
    assert isinstance(params, Params)
    assert isinstance(params.synth, SynthConfig)
    assert isinstance(params.synth.label_model, LabelModelConfig)
    assert isinstance(params.ingest, IngestConfig)
    assert isinstance(params.validate, ValidateConfig)
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    # Top-level keys are stage names, each typed by its own dataclass.
    assert set(raw) <= {f.name for f in dataclasses.fields(Params)}
    assert params.ingest.min_confidence == raw["ingest"]["min_confidence"]
    assert params.synth.n == raw["synth"]["n"]
    assert params.synth.label_model.temp_shift == tuple(raw["synth"]["label_model"]["temp_shift"])


def test_repo_params_types_are_coerced(repo_root):
    params = load_params(repo_root / "params.yaml")
    lm, proc = params.synth.label_model, params.synth.process
    for pair in (lm.temp_shift, lm.thick_spec, proc.sinter_temp_c, proc.thickness_mm):
        assert isinstance(pair, tuple) and len(pair) == 2
        assert all(type(v) is float for v in pair)
    assert type(params.ingest.min_confidence) is float
    assert type(params.ingest.batch_size) is int


def test_missing_file_gives_defaults(tmp_path):
    assert load_params(tmp_path / "absent.yaml") == Params()


def test_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    assert load_params(path) == Params()


def test_partial_section_keeps_other_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("ingest:\n  min_confidence: 0.5\n  cache: null\n")
    params = load_params(path)
    assert params.ingest.min_confidence == 0.5 and params.ingest.cache is None
    assert params.ingest.batch_size == IngestConfig().batch_size
    assert params.synth == SynthConfig() and params.validate == ValidateConfig()


@pytest.mark.parametrize("text, names", [
    ("trian:\n  epochs: 3\n", ["trian"]),
    ("ingest:\n  min_conf: 0.5\n", ["min_conf", "ingest"]),
    ("synth:\n  label_model:\n    shift_probability: 0.5\n", ["shift_probability", "label_model"]),
])
def test_unknown_key_is_named(tmp_path, text, names):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    for name in names:
        assert name in str(err.value)


def test_unknown_key_error_lists_known_keys():
    with pytest.raises(ConfigError, match="min_confidence"):
        from_dict(IngestConfig, {"bogus": 1})


def test_ints_become_floats_and_lists_become_tuples():
    cfg = from_dict(LabelModelConfig, {"shift_prob": 1, "temp_shift": [25, 8], "temp_limit": 1160})
    assert type(cfg.shift_prob) is float and cfg.shift_prob == 1.0
    assert cfg.temp_shift == (25.0, 8.0) and all(type(v) is float for v in cfg.temp_shift)
    assert type(cfg.temp_limit) is float
    assert from_dict(IngestConfig, {"min_confidence": 1}).min_confidence == 1.0
    assert type(from_dict(IngestConfig, {"min_confidence": 1}).min_confidence) is float


def test_optional_values_pass_through():
    assert from_dict(IngestConfig, {"cache": None}).cache is None
    assert from_dict(IngestConfig, {"cache": "x.sqlite"}).cache == "x.sqlite"


@pytest.mark.parametrize("cls, raw", [
    (LabelModelConfig, {"temp_shift": [25.0]}),          # a pair needs two values
    (LabelModelConfig, {"temp_shift": [1, 2, 3]}),
    (Params, {"ingest": [1, 2]}),                        # a section is a mapping
])
def test_malformed_values_raise_config_error(cls, raw):
    with pytest.raises(ConfigError):
        from_dict(cls, raw)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        IngestConfig().min_confidence = 0.1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Params().synth.label_model.shift_prob = 0.1  # type: ignore[misc]


def test_ingest_workers_and_scheduler_default_to_in_process():
    cfg = IngestConfig()
    assert (cfg.workers, cfg.scheduler) == (0, None)
    cfg = from_dict(IngestConfig, {"workers": 2, "scheduler": "tcp://10.0.0.5:8786"})
    assert (cfg.workers, cfg.scheduler) == (2, "tcp://10.0.0.5:8786")


@pytest.mark.parametrize("raw, words", [
    ({"workers": -1}, "ingest.workers must be a whole number >= 0"),
    ({"workers": 1.5}, "ingest.workers must be a whole number >= 0"),
    ({"workers": True}, "ingest.workers must be a whole number >= 0"),
    ({"scheduler": ""}, "ingest.scheduler must be a Dask scheduler address"),
    ({"scheduler": 8786}, "ingest.scheduler must be a Dask scheduler address"),
    ({"engines": -2}, "ingest.engines must be a whole number >= 0"),
    ({"engines": "4"}, "ingest.engines must be a whole number >= 0"),
    ({"charset": "ascii"}, "ingest.charset must be one of layout, full, got 'ascii'"),
])
def test_ingest_cluster_settings_are_checked(tmp_path, raw, words):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"ingest": raw}))
    with pytest.raises(ConfigError, match=words):
        load_params(path)
    with pytest.raises(ConfigError, match=words):      # a command-line override is checked the same way
        updated(IngestConfig(), raw, "ingest")


@pytest.mark.parametrize("raw, words", [
    ({"validate": {"min_defect_rate": 0.9}}, r"validate\.min_defect_rate \(0\.9\) must not exceed max_defect_rate \(0\.8\)"),
    ({"validate": {"min_defect_rate": 0.3, "max_defect_rate": 0.2}}, r"validate\.min_defect_rate \(0\.3\)"),
])
def test_crossed_min_and_max_bounds_are_refused_at_load(tmp_path, raw, words):
    """A batch can never pass a defect-rate range whose floor is above its ceiling: the mistake is
    named in params.yaml, not found later as a failed batch that seems to blame its labels."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=words):
        load_params(path)
    with pytest.raises(ConfigError, match=words):      # an override is checked the same way
        updated(ValidateConfig(), raw["validate"], "validate")
    equal = {"min_defect_rate": 0.4, "max_defect_rate": 0.4}
    assert updated(ValidateConfig(), equal, "validate").min_defect_rate == 0.4     # equal bounds are a range


@pytest.mark.parametrize("raw, where, choices", [
    ({"fuse": {"optimiser": {"optimizer": "adam"}}}, "fuse.optimiser.optimizer", "sgd, adamw"),
    ({"fuse": {"optimiser": {"schedule": "linear"}}}, "fuse.optimiser.schedule", "cosine, constant, onecycle"),
    ({"fuse": {"network": {"image_norm": "global"}}}, "fuse.network.image_norm", "dataset, per_image"),
    ({"fuse": {"training": {"image_label": True}}}, "fuse.training.image_label", "unit, object"),
    ({"gate": {"combine": "max"}}, "gate.combine", "stack, mean"),
    ({"evaluate": {"profile": "gpu"}}, "evaluate.profile", "quick, cpu, cpu_paper_encoders, paper"),
    ({"synth": {"preset": "dirty"}}, "synth.preset", "clean, noisy"),
])
def test_a_value_outside_a_settings_choices_is_refused_at_load(tmp_path, raw, where, choices):
    """A misspelt choice is named with the choices when params.yaml is read, before OCR and training
    have run for minutes and the stage that reads it fails (or, for some, quietly does something else)."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=rf"{re.escape(where)} must be one of {re.escape(choices)}, got"):
        load_params(path)


def test_the_defaults_are_the_shipped_params_yaml(repo_root):
    """One set of defaults: a section left out of a project's params.yaml behaves as the shipped file says."""
    assert load_params(repo_root / "params.yaml") == Params()


# ------------------------------------------------------------------ paths: named once

def test_a_path_set_once_reaches_every_stage_that_writes_under_it(tmp_path):
    """Each stage's outputs come from `paths`: moved there, every stage writes to the new place."""
    from flows.stages import PIPELINE

    moved = {k: f"elsewhere/{k}" for k in (f.name for f in dataclasses.fields(PathsConfig))}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"paths": moved}))
    p = load_params(tmp_path / "params.yaml")
    assert p.paths.layout == Path("elsewhere/raw/layout.yaml")
    for name, stage in PIPELINE.items():
        outputs = stage.outputs(p.paths)
        assert outputs and all(str(o).startswith("elsewhere/") for o in outputs), (name, outputs)


@pytest.mark.parametrize("section, key", [("fuse", "table"), ("gate", "out"), ("register", "bundle_dir"),
                                          ("bag", "predictions")])
def test_a_section_that_names_a_path_itself_is_refused(tmp_path, section, key):
    (tmp_path / "params.yaml").write_text(f"{section}:\n  {key}: data/x.parquet\n")
    with pytest.raises(ConfigError, match=rf"{section}\.{key} is not a setting of {section}.*paths section"):
        load_params(tmp_path / "params.yaml")


def test_an_unknown_key_that_is_no_path_is_named_with_the_known_ones(tmp_path):
    (tmp_path / "params.yaml").write_text("fuse:\n  optimser: adamw\n")
    with pytest.raises(ConfigError, match=r"unknown keys \['optimser'\]; known: .*'optimiser'"):
        load_params(tmp_path / "params.yaml")


def test_no_section_holds_a_path():
    """Files and folders live in `paths` only: no setting of any section (sub-sections included)
    defaults to one of them, so none can drift from the file a stage really reads."""
    values = set(dataclasses.asdict(PathsConfig()).values())

    def settings(section, where):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if dataclasses.is_dataclass(value):
                yield from settings(value, f"{where}.{f.name}")
            else:
                yield f"{where}.{f.name}", value

    params = Params()
    found = [kv for f in dataclasses.fields(params) if f.name != "paths"
             for kv in settings(getattr(params, f.name), f.name)]
    assert len(found) > 100
    assert [(key, value) for key, value in found if isinstance(value, str) and value in values] == []


def test_dvc_yaml_names_each_path_only_through_the_paths_section(repo_root):
    import re

    paths = dataclasses.asdict(PathsConfig())
    text = (repo_root / "dvc.yaml").read_text()
    keys = set(re.findall(r"\$\{paths\.([a-z_]+)\}", text))
    assert keys and keys <= set(paths), keys - set(paths)
    entries = re.findall(r"^\s*-\s+([^\s:#]+)", text, re.M)
    literal = sorted(set(entries) & set(paths.values()))
    assert literal == [], f"dvc.yaml writes these paths itself instead of ${{paths.*}}: {literal}"


def test_a_built_section_written_as_params_loads_back_as_itself(tmp_path):
    from oanet.config import FuseConfig, updated

    cfg = updated(FuseConfig(), {"optimiser": {"epochs": 3}, "network": {"encoder": "resnet18"}})
    raw = {"fuse": dataclasses.asdict(cfg)}
    raw["fuse"]["training"]["process_defects"] = list(cfg.training.process_defects)   # YAML has lists, not tuples
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert load_params(tmp_path / "params.yaml").fuse == cfg
