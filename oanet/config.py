"""Typed, frozen configuration: one dataclass per stage, composed into `Params`.

`params.yaml` is loaded once; each stage receives its own section and `paths`, the files it reads
and writes (no section holds a path).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from oanet.errors import OanetError

Pair = tuple[float, float]
# Settings with a fixed set of values: checked at load (`_coerce`), so a typo is named before any stage
# runs, not when the stage that reads it starts, minutes into a night.
Preset = Literal["clean", "noisy"]
Charset = Literal["layout", "full"]
ImageNorm = Literal["dataset", "per_image"]
OptimizerName = Literal["sgd", "adamw"]
Schedule = Literal["cosine", "constant", "onecycle"]
ImageLabel = Literal["unit", "object"]
Combine = Literal["stack", "mean"]
Profile = Literal["quick", "cpu", "cpu_paper_encoders", "paper"]


class ConfigError(OanetError, ValueError):
    """A params.yaml section that does not match its dataclass."""


@dataclass(frozen=True)
class PathsConfig:
    """Every file and folder the stages hand each other, named once (params.yaml `paths`).

    dvc.yaml interpolates these (`${paths.clean}`) and each stage receives them beside its own
    section, which holds no path: like a DVC stage, a stage's settings (params) are apart from
    the files it reads and writes (deps, outs), so a path is changed in one place.
    """
    raw: str = "data/raw"                          # the raw dataset every later stage reads
    incoming: str = "incoming"                     # drop folder for new images: images/ + labels.csv
    ocr: str = "data/ocr.parquet"                  # ingest: one row per image
    ocr_quarantine: str = "data/ocr_quarantine.parquet"
    clean: str = "data/clean.parquet"              # validate: the rows that passed the data-quality gate
    quarantine: str = "data/quarantine.parquet"
    validation_reports: str = "reports/validation"
    split: str = "data/split.parquet"
    bag_models: str = "models/bag"
    bag_predictions: str = "data/bag_predictions.parquet"
    bag_metrics: str = "reports/bag_metrics.json"
    bag_importances: str = "reports/bag_importances.png"
    fusion_models: str = "models/fusion"
    fusion_predictions: str = "data/fusion_predictions.parquet"
    fusion_metrics: str = "reports/fusion_metrics.json"
    fusion_curves: str = "reports/fusion_curves.png"
    gate: str = "models/gate.json"
    gate_predictions: str = "data/gate_predictions.parquet"
    gate_metrics: str = "reports/gate_metrics.json"
    drift_reference: str = "models/drift_reference.json"
    drift_reports: str = "reports/drift"
    evaluation_dir: str = "reports"
    evaluation: str = "reports/evaluation.json"
    metrics: str = "reports/metrics.json"
    bundle: str = "models/bundle"                  # register: the serving bundle

    @property
    def layout(self) -> Path:
        """The layout of the raw set: what every stage after ingest reads unless given another."""
        return Path(self.raw) / "layout.yaml"



@dataclass(frozen=True)
class LabelModelConfig:
    """synth.label_model: how the demo generator turns process values into process-only defects."""
    shift_prob: float = 0.70
    temp_shift: Pair = (25.0, 8.0)
    press_drop: Pair = (4.0, 1.0)
    thick_shift: Pair = (0.04, 0.01)
    press_rise: Pair = (3.0, 1.0)
    param_defect_prob: float = 0.12
    temp_limit: float = 1160.0
    thick_spec: Pair = (3.950, 4.050)


@dataclass(frozen=True)
class ProcessConfig:
    """Normal (mean, sd) of the machine and process values of a good unit."""
    exposure_ms: Pair = (12.0, 1.5)
    gain_db: Pair = (6.0, 1.0)
    sinter_temp_c: Pair = (1120.0, 8.0)
    press_mpa: Pair = (48.0, 1.2)
    thickness_mm: Pair = (4.000, 0.015)


@dataclass(frozen=True)
class SynthConfig:
    """synth: the synthetic demo set and `oanet synth --out DIR` (oanet/synth)."""
    n: int = 480
    seed: int = 7
    preset: Preset = "clean"
    style: str = "aoi-v1"              # panel style: a name in oanet/synth/styles/ or a style .yaml path
    objects: str | None = None
    units_per_lot: int = 48
    lot_yymm: str = "2611"
    defect_rate: float = 0.29
    defect_weights: dict[str, float] = field(default_factory=lambda: {
        "Blowhole": 115, "Break": 85, "Crack": 57, "Fray": 32, "Uneven": 103})
    edge_threshold: float = 100.0
    label_model: LabelModelConfig = LabelModelConfig()
    process: ProcessConfig = ProcessConfig()


@dataclass(frozen=True)
class DataConfig:
    """Stage `data` (oanet/intake.py): how new images are taken from paths.incoming into paths.raw."""
    seed_demo: bool = True             # an empty raw dataset starts as the synthetic demo set
    settle_s: float = 10.0             # an incoming file is taken once unchanged this long (incoming/README.md)
    max_image_mb: float = 50.0         # larger incoming images are refused, left in incoming with the reason
    max_labels_mb: float = 20.0        # the same for a labels*.csv (and truth.csv, layout.yaml) in incoming


@dataclass(frozen=True)
class IngestConfig:
    """Stage `ingest` (oanet/ingest): the OCR of every panel and its parse by the layout."""
    min_confidence: float = 0.80
    verify_below: float = 0.95         # a read that parses under this score is read again (whole line) and must agree
    batch_size: int = 32
    crop_pad: int = 2                  # see params.yaml: 2 px absorbs print-position jitter
    blank_panel_std: float = 2.0
    max_image_mb: float = 50.0         # a larger file is quarantined (too_large) unread: one file must not fill memory
    cache: str | None = ".cache/ocr.sqlite"
    rec_model: str = "multi_PP-OCRv6_small"
    charset: Charset = "layout"        # layout: recognise ASCII + the layout's characters only; full: all 18,708
    engines: int = 0                   # in-process recognisers of one thread each; 0: one per core
    workers: int = 0                   # 0: OCR in this process; N: a local Dask cluster of N 1-thread workers
    scheduler: str | None = None       # address of a running Dask scheduler (tcp://host:8786); wins over workers

    def __post_init__(self):
        if type(self.engines) is not int or self.engines < 0:
            raise ConfigError(f"ingest.engines must be a whole number >= 0 (0 = one per core), got {self.engines!r}")
        if type(self.workers) is not int or self.workers < 0:
            raise ConfigError(f"ingest.workers must be a whole number >= 0 (0 = OCR in process), got {self.workers!r}")
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()):
            raise ConfigError(f"ingest.scheduler must be a Dask scheduler address such as tcp://host:8786, "
                              f"or null, got {self.scheduler!r}")


@dataclass(frozen=True)
class ValidateConfig:
    """Stage `validate` (flows/validate.py): the data-quality gate's thresholds on the OCR table.
    Critical ones stop the batch (no clean table is written); the confidence one only warns."""
    max_missing_rate: float = 0.10         # critical, per field: more missing reads means its box or parser broke
    min_rows: int = 20                     # critical: fewer rows (or clean rows) cannot fill train / val / test
    min_defect_rate: float = 0.01          # critical: a batch's defect rate outside [min, max] points at
    max_defect_rate: float = 0.80          # swapped or lost labels (real lines run at 0.1-5% defective)
    min_median_confidence: float = 0.90    # warning, per field: falling read confidence (print or image drift)


@dataclass(frozen=True)
class SplitConfig:
    """Stage `split` (oanet/split.py): train / val / test by lot, and the cross-validation folds."""
    test_size: float = 0.3
    folds: int = 5
    seed: int = 42
    group_by_lot: bool = True
    val_fold: int = 0       # train rows of this fold become `val`: held out of the final fits, for the gate
    stable: bool = True     # test lots in a seeded hash order of their names: the split holds as lots arrive


@dataclass(frozen=True)
class BagConfig:
    """Stage `bag` (oanet/tabular): the tabular learners, their intra-bagging and mask learning."""
    models: tuple[str, ...] = ("lightgbm", "catboost", "gbm", "random_forest")
    seed: int = 42
    mask_prob: float = 0.2      # mask learning: share of fields dropped in each masked copy
    mask_copies: int = 1        # masked copies of the training rows added to every fit (0: off)


@dataclass(frozen=True)
class NetworkConfig:
    """fuse.network: the module's shape and its fixed input treatment; with the data's column count
    it is the `ArchConfig` saved beside the weights."""
    encoder: str = "narrow_resnet"         # the CPU encoder; the paper's: alexnet | vgg16 | resnet18
    weights: str | None = None             # a local pretrained state_dict; nothing is downloaded
    image_norm: ImageNorm = "per_image"    # dataset | per_image (each image standardised by its own mean/std)
    fill_occlusion: bool = True            # black (0) pixels of the object are occluded: filled with its mean
    tta: bool = True                       # predict as the mean over the 8 flips of the object image
    tab_hidden: int = 128
    align: bool = True                     # the cosine alignment loss between the two embeddings
    align_dim: int = 128
    refine: bool = True                    # PCA refinement of the aligned embeddings
    refine_dim: int = 64
    refine_steps: int = 2
    head_hidden: int = 128
    dropout: float = 0.2


@dataclass(frozen=True)
class OptimiserConfig:
    """fuse.optimiser: how the weights move."""
    epochs: int = 90
    batch_size: int = 32
    optimizer: OptimizerName = "adamw"     # sgd (the paper's) | adamw
    lr: float = 0.003
    momentum: float = 0.9                  # sgd only
    weight_decay: float = 0.05
    warmup_epochs: int = 1                 # cosine only: linear warm-up
    schedule: Schedule = "onecycle"        # after warm-up: cosine (decay to 0) | constant | onecycle
    class_weighting: bool = True
    align_weight: float = 0.5              # weight of the alignment loss beside the cross-entropy


@dataclass(frozen=True)
class TrainingConfig:
    """fuse.training: what each network learns from: the images, their augmentation, the labels, the stages."""
    image_size: int = 64
    jitter: float = 0.2                    # photometric jitter strength while training (0: off)
    gridmask_prob: float = 0.3
    cnn_gridmask_prob: float | None = None  # GridMask while the image-only CNN trains (None: gridmask_prob); with
                                            # `staged` the fusion heads still learn on views masked at gridmask_prob
    mask_prob: float = 0.2                 # mask learning: each OCR field set missing with this probability
    image_label: ImageLabel = "object"     # what the image-only CNN learns: unit | object (process-only defects are 0)
    process_defects: tuple[str, ...] = ("param",)   # defect_type values that mark a process-only defect
    staged: bool = True                    # fusion models reuse the trained CNN's image encoder, frozen
    staged_views: int = 3                  # staged: augmented views per training image for the fusion head


@dataclass(frozen=True)
class FuseConfig:
    """Stage `fuse` (oanet/fusion): the image-only CNN and the fusion network, in three sub-sections."""
    network: NetworkConfig = NetworkConfig()
    optimiser: OptimiserConfig = OptimiserConfig()
    training: TrainingConfig = TrainingConfig()
    seed: int = 42
    device: str = "auto"                   # auto | cpu | cuda
    compile: bool = False
    num_threads: int = 0                   # CPU threads for torch; 0 = torch's default


@dataclass(frozen=True)
class GateConfig:
    """Stage `gate` (oanet/gate): the KL references, the calibration grid and the decision rule on val."""
    ocr_bins: int = 10
    quantile: float = 0.99
    off_factors: tuple[float, ...] = (1.5, 2.0, 3.0, 5.0, 10.0)
    temperatures: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    min_accuracy: float = 0.9
    degraded_min_accuracy: float | None = None   # the floor in regimes where a modality is off (None: min_accuracy)
    combine: Combine = "stack"           # stack: logistic model on the members' scaled logits | mean: weighted mean
    cross_fit: int = 5                   # stack: >= 2 judges thresholds on out-of-fold stacked probabilities (k folds)
    scenarios: tuple[str, ...] = ("clean", "ocr_loss", "gridmask", "both")
    seed: int = 42
    device: str = "auto"


@dataclass(frozen=True)
class EvalProfile:
    """One evaluation profile: the networks' size, epochs, repeats and encoders, and its fuse recipe."""
    image_size: int = 32
    epochs: int = 4
    batch_size: int = 16
    repeats: int = 2
    encoders: tuple[str, ...] = ("alexnet", "vgg16", "resnet18")
    fuse: dict = field(default_factory=dict)    # the profile's own recipe: the fuse section's keys, nested

    def fuse_config(self, base: FuseConfig, encoder: str, seed: int) -> FuseConfig:
        """The fuse settings one network of this profile trains with: its recipe over `base`, then its
        encoder, size, epochs and batch."""
        recipe = updated(base, self.fuse, "evaluate profile fuse")
        return updated(recipe, {"network": {"encoder": encoder}, "training": {"image_size": self.image_size},
                                "optimiser": {"epochs": self.epochs, "batch_size": self.batch_size}, "seed": seed})


PROFILES: tuple[str, ...] = typing.get_args(Profile)
# The paper's training recipe (GPU), over the CPU recipe that is the fuse section's default.
PAPER_RECIPE = {
    "network": {"image_norm": "dataset", "tta": False, "fill_occlusion": False},
    "optimiser": {"optimizer": "sgd", "lr": 0.01, "weight_decay": 0.0005, "schedule": "cosine"},
    "training": {"jitter": 0.0, "image_label": "unit", "staged": False, "gridmask_prob": 0.3,
                 "cnn_gridmask_prob": None}}


@dataclass(frozen=True)
class EvaluateConfig:
    """Stage `evaluate` (oanet/evaluate): the paper's protocol, its profiles and its sweeps."""
    profile: Profile = "quick"              # quick | cpu | cpu_paper_encoders | paper
    quick: EvalProfile = EvalProfile()
    cpu: EvalProfile = EvalProfile(image_size=64, epochs=120, batch_size=32, repeats=5, encoders=("narrow_resnet",))
    cpu_paper_encoders: EvalProfile = EvalProfile(image_size=64, epochs=30, batch_size=32, repeats=3)
    paper: EvalProfile = EvalProfile(image_size=224, epochs=30, batch_size=64, repeats=5, fuse=dict(PAPER_RECIPE))
    missing_rates: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    grid_ratios: tuple[float, ...] = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8)
    robustness_encoder: str = "vgg16"       # Table 2 and the sweeps (the paper uses VGG16)
    device: str = "auto"

    def chosen(self) -> EvalProfile:
        if self.profile not in PROFILES:
            raise ConfigError(f"evaluate.profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        return getattr(self, self.profile)


@dataclass(frozen=True)
class RegisterConfig:
    """Stage `register` (flows/register.py): MLflow tracking, the registry and the promotion rule."""
    model_name: str = "oanet"
    experiment: str = "oanet"
    tracking_uri: str | None = None        # None: $MLFLOW_TRACKING_URI, else the project's mlruns/mlflow.db
    artifact_root: str = "mlruns/artifacts"
    min_recall_gain: float = 0.0
    max_accuracy_drop: float = 0.01
    max_robust_recall_drop: float = 0.02
    max_robust_accuracy_drop: float = 0.05
    min_recall: float = 0.5                # floors every promotion must clear, the first one included
    min_accuracy: float = 0.6              # flagging every unit scores the defect rate (~0.37 in the demo)
    min_robust_recall: float = 0.3         # under 60% OCR missing + GridMask
    min_robust_accuracy: float = 0.5
    lock_dir: str | None = None            # alias-move lock folder (None: the system temp folder; share it
                                           # between hosts that register into one registry)


@dataclass(frozen=True)
class NightlyConfig:
    """The nightly Prefect flow (flows/nightly.py); its schedule is in prefect.yaml."""
    record_dvc: bool = True            # dvc commit the new data version (and the trained stages)
    push: bool = True                  # then dvc push to the default remote, when one is configured
    train: bool = True                 # false: a data-only night (intake, OCR, data-quality gate; no training)
    lock_wait_s: float = 600.0         # a run finding the project lock held waits this long, then refuses


@dataclass(frozen=True)
class DriftConfig:
    """Stage `drift` (oanet/drift): a night against the reference of the rows the models learned on
    (paths.clean, paths.split, the images of paths.raw) and what the models (paths) did with it."""
    ocr_bins: int = 10
    box_size: int = 64                     # object boxes are read at this square size for the image statistics
    quantile: float = 0.99                 # alert threshold: factor x this quantile of clean nights of the same size
    factor: float = 1.5
    draws: int = 400                       # bootstrap clean nights per threshold
    min_divergence: float = 0.05           # threshold floor (nats), for what never varied in clean rows
    min_rows: int = 20                     # a smaller night is reported, never alerted on
    image_derived: tuple[str, ...] = ("gray_mean", "gray_std", "dark_pct", "edge_frac")
    thumbnails: int = 8
    plots: int = 8                         # items whose histograms the page shows
    seed: int = 42


@dataclass(frozen=True)
class ServeConfig:
    """What a serving process accepts; set on the serving host by OANET_SERVE_<KEY> (oanet.serving)."""
    path_root: str | None = None       # `path` inputs are read only under this folder; None: image_b64 only
    max_image_bytes: int = 20_000_000  # one encoded image (decoded base64, or a file under path_root)
    max_image_pixels: int = 40_000_000  # width x height, checked from the header before decoding


@dataclass(frozen=True)
class Params:
    paths: PathsConfig = PathsConfig()
    data: DataConfig = DataConfig()
    synth: SynthConfig = SynthConfig()
    ingest: IngestConfig = IngestConfig()
    validate: ValidateConfig = ValidateConfig()
    split: SplitConfig = SplitConfig()
    bag: BagConfig = BagConfig()
    fuse: FuseConfig = FuseConfig()
    gate: GateConfig = GateConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    register: RegisterConfig = RegisterConfig()
    nightly: NightlyConfig = NightlyConfig()
    drift: DriftConfig = DriftConfig()


# Ranges by key name, in whichever section the key sits. Shares, probabilities, accuracies and the
# promotion's drops are in [0, 1] (by the name's ending, so new keys follow); counts and sizes >= 1;
# other whole numbers >= 0; every float is finite (NaN passes no comparison: a NaN floor is no floor).
_SHARE_ENDINGS = ("_prob", "_rate", "_rates", "_ratios", "_confidence", "_accuracy", "_recall", "_accuracy_drop",
                  "_recall_drop")
_AMOUNT_ENDINGS = ("_s", "_mb", "_bytes", "_pixels")      # durations and sizes: >= 0
_SHARE = (lambda v: 0 <= v <= 1, "in [0, 1]")
_COUNT = (lambda v: v >= 1, ">= 1")
_POSITIVE = (lambda v: v > 0, "> 0")
_NOT_NEGATIVE = (lambda v: v >= 0, ">= 0")
_RANGES = {
    **dict.fromkeys(("test_size", "quantile", "momentum", "verify_below"), _SHARE),
    **dict.fromkeys(("n", "units_per_lot", "batch_size", "folds", "image_size", "epochs", "staged_views",
                     "align_dim", "refine_dim", "tab_hidden", "head_hidden", "ocr_bins", "repeats",
                     "max_image_bytes", "max_image_pixels", "draws", "box_size", "plots"), _COUNT),
    **dict.fromkeys(("lr", "off_factors", "temperatures", "factor"), _POSITIVE),
    **dict.fromkeys(("blank_panel_std", "weight_decay", "jitter", "align_weight", "edge_threshold",
                     "defect_weights"), _NOT_NEGATIVE),
    "min_recall_gain": (lambda v: -1 <= v <= 1, "in [-1, 1]"),
}
_MAY_BE_INFINITE: frozenset[str] = frozenset()      # float keys where .inf means "no limit" (none yet)


def _range_rule(key: str, value):
    if key in _RANGES:
        return _RANGES[key]
    if key.endswith(_SHARE_ENDINGS):
        return _SHARE
    return _NOT_NEGATIVE if type(value) is int or key.endswith(_AMOUNT_ENDINGS) else None


def _check_range(key: str, value, where: str) -> None:
    """The numbers of `value` (one, a list's or a mapping's) against the rule for `key`."""
    numbers = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else (value,)
    for v in numbers:
        rule = _range_rule(key, v) if type(v) in (int, float) else None
        if rule is not None and not rule[0](v):
            raise ConfigError(f"{where} must be {rule[1]}, got {v!r}")


def _scalar(tp, value, where: str):
    """`value` as type `tp`, strictly: YAML's "false" is text, not a bool, and True is not 1."""
    if tp is bool and type(value) is not bool:
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if tp is int:
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is not int:
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
    if tp is float:
        if type(value) not in (int, float):
            hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) else ""
            raise ConfigError(f"{where} must be a number{hint}, got {value!r}")
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and where.rsplit(".", 1)[-1] not in _MAY_BE_INFINITE):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"{where} must be text, got {value!r}")
    if tp is dict and not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    return value


def _coerce(tp, value, where: str):
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, {} if value is None else value, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):                # X | None: None or an X
        kinds = [a for a in args if a is not type(None)]
        if value is None and len(kinds) < len(args):
            return None
        return _coerce(kinds[0], value, where) if len(kinds) == 1 else value
    if origin is Literal:
        if not any(type(value) is type(a) and value == a for a in args):
            raise ConfigError(f"{where} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:          # tuple[str, ...]: any length
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, where) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return {_coerce(args[0], k, where): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return _scalar(tp, value, where)


def from_dict(cls, raw: dict, where: str = ""):
    """Build dataclass `cls` from a mapping, rejecting keys it does not know and values of the wrong
    type or range (the message names the key)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    unknown = set(raw) - set(hints)
    if unknown:
        moved = {k: f"{s}.{k}" for s, tp in hints.items() if dataclasses.is_dataclass(tp)
                 for k in unknown if k in {f.name for f in dataclasses.fields(tp)}}
        hint = f" (sub-sections: {', '.join(f'{k} is now {v}' for k, v in sorted(moved.items()))})" if moved else ""
        raise ConfigError(f"{where or cls.__name__}: unknown keys {sorted(unknown)}; known: {sorted(hints)}{hint}")
    values, problems = {}, []
    for k, v in raw.items():
        try:
            values[k] = _coerce(hints[k], v, f"{where}.{k}".strip("."))
            _check_range(k, values[k], f"{where}.{k}".strip("."))
        except ConfigError as err:
            values[k] = v
            problems.append(err)
    try:
        built = cls(**values)
    except ConfigError:
        raise                            # the section's own check (__post_init__) says it best
    except Exception as err:
        raise problems[0] if problems else ConfigError(f"{where or cls.__name__}: {err}") from None
    if problems:
        raise problems[0]
    _check_bounds(built, where or cls.__name__)
    return built


def _check_bounds(section, where: str) -> None:
    """`min_X` above `max_X` in one section is a range nothing falls in: refused at load, where the
    mistake is, not at the first batch that fails on it and blames its data."""
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    for key, low in values.items():
        high = values.get("max_" + key.removeprefix("min_")) if key.startswith("min_") else None
        if type(low) in (int, float) and type(high) in (int, float) and low > high:
            raise ConfigError(f"{where}.{key} ({low:g}) must not exceed max_{key.removeprefix('min_')} "
                              f"({high:g}): no value could pass")


def _stray_path(raw: dict) -> str | None:
    """The first `section.key` of `raw` that the section does not know and whose value reads as a path
    (a folder or a file name); other unknown keys are left to `from_dict`, which lists the known ones."""
    sections = typing.get_type_hints(Params)
    for section, given in raw.items():
        if section != "paths" and section in sections and isinstance(given, dict):
            known = {f.name for f in dataclasses.fields(sections[section])}
            stray = sorted(k for k, v in given.items() if k not in known and isinstance(v, str)
                           and ("/" in v or Path(v).suffix))
            if stray:
                return f"{section}.{stray[0]}"
    return None


def params_from(raw: dict) -> Params:
    """Params from a params.yaml mapping. A stage's section holds its settings only: the files a stage
    reads and writes are the `paths` section's, so a path written in a section is refused, saying so."""
    if isinstance(raw, dict) and (stray := _stray_path(raw)):
        raise ConfigError(f"{stray} is not a setting of {stray.split('.')[0]}: files and folders are named once, "
                          f"in the paths section ({', '.join(f.name for f in dataclasses.fields(PathsConfig))})")
    return from_dict(Params, raw, "params")


def updated(cfg, changes: dict, where: str = ""):
    """`cfg` with `changes` applied, checked as params.yaml is: `changes` is shaped like the section
    (sub-sections as mappings, e.g. {"optimiser": {"epochs": 3}}), and an unknown key or a bad value
    is named."""
    def merged(base: dict, over: dict) -> dict:
        return {**base, **{k: merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                           for k, v in over.items()}}
    if not isinstance(changes, dict):
        raise ConfigError(f"{where or type(cfg).__name__}: expected a mapping, got {changes!r}")
    return from_dict(type(cfg), merged(dataclasses.asdict(cfg), changes), where)


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    return params_from(raw or {})
