"""Typed, frozen configuration: one dataclass per stage, composed into `Params`.

`params.yaml` is loaded once; each stage receives only its own section.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from oanet.errors import OanetError

Pair = tuple[float, float]


class ConfigError(OanetError, ValueError):
    """A params.yaml section that does not match its dataclass."""


@dataclass(frozen=True)
class LabelModelConfig:
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
    n: int = 480
    seed: int = 7
    preset: str = "clean"
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
    raw: str = "data/raw"              # the raw dataset every later stage reads
    incoming: str = "incoming"         # drop folder for new images: images/ + labels.csv
    seed_demo: bool = True             # an empty raw dataset starts as the synthetic demo set


@dataclass(frozen=True)
class IngestConfig:
    data: str = "data/raw"
    out: str = "data/ocr.parquet"
    quarantine: str = "data/ocr_quarantine.parquet"
    min_confidence: float = 0.80
    batch_size: int = 32
    crop_pad: int = 2                  # see params.yaml: 2 px absorbs print-position jitter
    blank_panel_std: float = 2.0
    cache: str | None = ".cache/ocr.sqlite"
    rec_model: str = "multi_PP-OCRv6_small"
    charset: str = "layout"            # layout: recognise ASCII + the layout's characters only; full: all 18,708
    engines: int = 0                   # in-process recognisers of one thread each; 0: one per core
    workers: int = 0                   # 0: OCR in this process; N: a local Dask cluster of N 1-thread workers
    scheduler: str | None = None       # address of a running Dask scheduler (tcp://host:8786); wins over workers

    def __post_init__(self):
        if self.charset not in ("layout", "full"):
            raise ConfigError(f"ingest.charset must be 'layout' (ASCII + the layout's characters, faster) "
                              f"or 'full' (every character of the model), got {self.charset!r}")
        if type(self.engines) is not int or self.engines < 0:
            raise ConfigError(f"ingest.engines must be a whole number >= 0 (0 = one per core), got {self.engines!r}")
        if type(self.workers) is not int or self.workers < 0:
            raise ConfigError(f"ingest.workers must be a whole number >= 0 (0 = OCR in process), got {self.workers!r}")
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler.strip()):
            raise ConfigError(f"ingest.scheduler must be a Dask scheduler address such as tcp://host:8786, "
                              f"or null, got {self.scheduler!r}")


@dataclass(frozen=True)
class ValidateConfig:
    table: str = "data/ocr.parquet"
    quarantine: str = "data/ocr_quarantine.parquet"
    out: str = "data/clean.parquet"
    out_quarantine: str = "data/quarantine.parquet"
    reports: str = "reports/validation"
    max_missing_rate: float = 0.10
    min_rows: int = 20
    min_defect_rate: float = 0.05
    max_defect_rate: float = 0.80
    min_median_confidence: float = 0.90


@dataclass(frozen=True)
class SplitConfig:
    table: str = "data/clean.parquet"
    out: str = "data/split.parquet"
    test_size: float = 0.3
    folds: int = 5
    seed: int = 42
    group_by_lot: bool = True
    val_fold: int = 0       # train rows of this fold become `val`: held out of the final fits, for the gate
    stable: bool = True     # test lots in a seeded hash order of their names: the split holds as lots arrive


@dataclass(frozen=True)
class BagConfig:
    table: str = "data/clean.parquet"
    split: str = "data/split.parquet"
    models: tuple[str, ...] = ("lightgbm", "catboost", "gbm", "random_forest")
    seed: int = 42
    mask_prob: float = 0.2      # mask learning: share of fields dropped in each masked copy
    mask_copies: int = 1        # masked copies of the training rows added to every fit (0: off)
    out_dir: str = "models/bag"
    predictions: str = "data/bag_predictions.parquet"
    metrics: str = "reports/bag_metrics.json"


@dataclass(frozen=True)
class FuseConfig:
    table: str = "data/clean.parquet"
    split: str = "data/split.parquet"
    data: str = "data/raw"                 # where the images of the table live
    encoder: str = "resnet18"
    weights: str | None = None             # a local pretrained state_dict; nothing is downloaded
    image_size: int = 224
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"                 # sgd (the paper's) | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0005
    warmup_epochs: int = 1
    schedule: str = "cosine"               # after warm-up: cosine (decay to 0) | constant | onecycle
    class_weighting: bool = True
    image_norm: str = "dataset"            # dataset | per_image (each image standardised by its own mean/std)
    jitter: float = 0.0                    # photometric jitter strength while training (0: off)
    tta: bool = False                      # predict as the mean over the 8 flips of the object image
    fill_occlusion: bool = False           # black (0) pixels of the object are occluded: filled with its mean
    image_label: str = "unit"              # what the image-only CNN learns: unit | object (process-only defects are 0)
    process_defects: tuple[str, ...] = ("param",)   # defect_type values that mark a process-only defect
    staged: bool = False                   # fusion models reuse the trained CNN's image encoder, frozen
    staged_views: int = 3                  # staged: augmented views per training image for the fusion head
    align: bool = True
    align_dim: int = 128
    align_weight: float = 0.5
    refine: bool = True
    refine_dim: int = 64
    refine_steps: int = 2
    tab_hidden: int = 128
    head_hidden: int = 128
    mask_prob: float = 0.2
    gridmask_prob: float = 0.3
    seed: int = 42
    device: str = "auto"                   # auto | cpu | cuda
    compile: bool = False
    num_threads: int = 0                   # CPU threads for torch; 0 = torch's default
    cnn_gridmask_prob: float | None = None  # GridMask while the image-only CNN trains (None: gridmask_prob); with
                                            # `staged` the fusion heads still learn on views masked at gridmask_prob
    out_dir: str = "models/fusion"
    predictions: str = "data/fusion_predictions.parquet"
    metrics: str = "reports/fusion_metrics.json"


@dataclass(frozen=True)
class GateConfig:
    table: str = "data/clean.parquet"
    split: str = "data/split.parquet"
    data: str = "data/raw"
    bag_dir: str = "models/bag"
    fusion_dir: str = "models/fusion"
    out: str = "models/gate.json"
    predictions: str = "data/gate_predictions.parquet"
    metrics: str = "reports/gate_metrics.json"
    ocr_bins: int = 10
    quantile: float = 0.99
    off_factors: tuple[float, ...] = (1.5, 2.0, 3.0, 5.0, 10.0)
    temperatures: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    min_accuracy: float = 0.8
    combine: str = "stack"               # stack: logistic model on the members' scaled logits | mean: weighted mean
    scenarios: tuple[str, ...] = ("clean", "ocr_loss", "gridmask", "both")
    seed: int = 42
    device: str = "auto"
    degraded_min_accuracy: float | None = None   # the floor in regimes where a modality is off (None: min_accuracy)


@dataclass(frozen=True)
class EvalProfile:
    image_size: int = 32
    epochs: int = 4
    batch_size: int = 16
    repeats: int = 2
    encoders: tuple[str, ...] = ("alexnet", "vgg16", "resnet18")
    fuse: dict = field(default_factory=dict)    # the profile's own training recipe: keys of the fuse section

    def fuse_config(self, base: "FuseConfig", encoder: str, seed: int) -> "FuseConfig":
        """The fuse settings one network of this profile trains with."""
        unknown = set(self.fuse) - {f.name for f in dataclasses.fields(FuseConfig)}
        if unknown:
            raise ConfigError(f"evaluate profile fuse: unknown keys {sorted(unknown)}; use keys of the fuse section")
        recipe = from_dict(FuseConfig, {**dataclasses.asdict(base), **self.fuse}, "evaluate profile fuse")
        return dataclasses.replace(recipe, encoder=encoder, image_size=self.image_size, epochs=self.epochs,
                                   batch_size=self.batch_size, seed=seed)


PROFILES = ("quick", "cpu", "cpu_paper_encoders", "paper")


@dataclass(frozen=True)
class EvaluateConfig:
    profile: str = "quick"                  # quick | cpu | cpu_paper_encoders | paper
    quick: EvalProfile = EvalProfile()
    cpu: EvalProfile = EvalProfile(image_size=128, epochs=30, batch_size=32, repeats=5, encoders=("narrow_resnet",))
    cpu_paper_encoders: EvalProfile = EvalProfile(image_size=64, epochs=30, batch_size=32, repeats=3)
    paper: EvalProfile = EvalProfile(image_size=224, epochs=30, batch_size=64, repeats=5)
    table: str = "data/clean.parquet"
    data: str = "data/raw"
    missing_rates: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    grid_ratios: tuple[float, ...] = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8)
    robustness_encoder: str = "vgg16"       # Table 2 and the sweeps (the paper uses VGG16)
    out_dir: str = "reports"
    metrics: str = "reports/evaluation.json"
    device: str = "auto"

    def chosen(self) -> EvalProfile:
        if self.profile not in PROFILES:
            raise ConfigError(f"evaluate.profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        return getattr(self, self.profile)


@dataclass(frozen=True)
class RegisterConfig:
    model_name: str = "oanet"
    experiment: str = "oanet"
    tracking_uri: str | None = None        # None: $MLFLOW_TRACKING_URI, else the project's mlruns/mlflow.db
    artifact_root: str = "mlruns/artifacts"
    bundle_dir: str = "models/bundle"
    min_recall_gain: float = 0.0
    max_accuracy_drop: float = 0.01
    max_robust_recall_drop: float = 0.02
    max_robust_accuracy_drop: float = 0.05


@dataclass(frozen=True)
class NightlyConfig:
    record_dvc: bool = True            # dvc commit the new data version (and the trained stages)
    push: bool = True                  # then dvc push to the default remote, when one is configured


@dataclass(frozen=True)
class ReportConfig:
    out: str = "reports/metrics.json"


@dataclass(frozen=True)
class Params:
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
    report: ReportConfig = ReportConfig()
    nightly: NightlyConfig = NightlyConfig()


def _coerce(tp, value, where: str):
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value or {}, where)
    origin = typing.get_origin(tp)
    if origin is tuple and value is not None:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:          # tuple[str, ...]: any length
            return tuple(value)
        return tuple(float(v) if a is float else v for v, a in zip(value, args, strict=True))
    if origin in (typing.Union, types.UnionType):
        return value
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def from_dict(cls, raw: dict, where: str = ""):
    """Build dataclass `cls` from a mapping, rejecting keys it does not know."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    unknown = set(raw) - set(hints)
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown keys {sorted(unknown)}; known: {sorted(hints)}")
    try:
        return cls(**{k: _coerce(hints[k], v, f"{where}.{k}".strip(".")) for k, v in raw.items()})
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    return from_dict(Params, raw or {}, "params")
