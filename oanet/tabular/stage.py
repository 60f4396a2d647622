"""Stage `bag`: tabular intra-bagging on the OCR table, with the split stage's rows and folds.

Every fit adds `mask_copies` copies of its rows with each OCR field dropped with
probability `mask_prob` (mask learning, as in the fusion network; tabular/masking.py).
For each model of `cfg.models`: k-fold cross-validation on the training rows, `val`
included (the split's `fold` column, stratified and grouped by lot) gives an
out-of-fold probability for every training row and per-fold metrics; then the model is
refitted on the `train` rows (not `val`: the gate is calibrated there) and predicts the
val and test rows. The bag average (`prob_bag`) is the
mean of the models' probabilities, out-of-fold on train rows as well.

Writes
- `paths.bag_predictions`: image, split, fold, label, prob_<model>..., prob_bag
- `paths.bag_metrics`: {"cv": {model: {metric: {mean, std}}}, "cv_folds": {model: [per fold]},
  "test": {model: metrics, "bag": metrics}, "importances": {model: {column: value}},
  "seconds": {model: fit seconds}}  (the bag is in "cv" and "cv_folds" as well)
- `paths.bag_models`: <model>.joblib (refitted on the `train` rows), schema.joblib, manifest.json (with the
  files' sha256, checked by `load_bag` before unpickling, and the params the bag was made with)
- `paths.bag_importances` (a PNG): importances per model, as shares of each model's total
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import BagConfig, PathsConfig
from oanet.errors import OanetError
from oanet.features import TabularSchema
from oanet.jsonsafe import strict_json
from oanet.layout import load_layout
from oanet.metrics import binary_metrics, mean_std
from oanet.split import load_rows

BAG = "bag"


class BagInputError(OanetError, ValueError):
    """The table, split or model list cannot be used for the bag stage."""


@dataclass(frozen=True)
class BagResult:
    cv: dict[str, dict[str, dict[str, float]]]     # model (and "bag") -> metric -> {mean, std}
    test: dict[str, dict[str, float]]              # model and "bag" -> metric -> value
    seconds: dict[str, float]                      # model -> seconds for its k + 1 fits
    n_train: int
    n_fit: int
    n_test: int
    predictions: Path
    metrics: Path
    models: dict[str, Path] = field(default_factory=dict)
    schema: Path | None = None
    plot: Path | None = None

    def summary(self) -> str:
        def cell(v: float | None) -> str:
            return "  -  " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

        head = (f"{'model':<14} {'cv acc':>13} {'cv recall':>13} {'cv auc':>13} "
                f"{'test acc':>8} {'recall':>7} {'f1':>7} {'auc':>7} {'fit s':>6}")
        lines = [f"bag: {self.n_train} train rows (cross-validated, mean±std over folds), "
                 f"{self.n_test} test rows (refitted on the {self.n_fit} `train` rows)", head]
        for name in list(self.seconds) + [BAG]:
            cv, t = self.cv.get(name, {}), self.test.get(name, {})
            cvs = [f"{cell(cv[m]['mean'])}±{cell(cv[m]['std'])}" if m in cv else f"{'-':>13}"
                   for m in ("accuracy", "recall", "roc_auc")]
            secs = f"{self.seconds[name]:6.1f}" if name in self.seconds else f"{'':6}"
            lines.append(f"{name:<14} " + " ".join(f"{c:>13}" for c in cvs) + " "
                         + f"{cell(t.get('accuracy')):>8} {cell(t.get('recall')):>7} {cell(t.get('f1')):>7} "
                         + f"{cell(t.get('roc_auc')):>7} {secs}")
        lines.append(f"  predictions: {self.predictions}\n  metrics: {self.metrics}")
        if self.plot:
            lines.append(f"  importances: {self.plot}")
        return "\n".join(lines)


def _check_folds(y: np.ndarray, folds: np.ndarray) -> list[int]:
    ks = sorted(int(k) for k in np.unique(folds))
    if len(ks) < 2 or ks[0] < 0:
        raise BagInputError(f"training rows need folds 0..k-1 with k >= 2, got {ks}")
    for k in ks:
        for side, mask in (("training part", folds != k), ("held-out part", folds == k)):
            if len(np.unique(y[mask])) < 2:
                raise BagInputError(f"fold {k}: the {side} has one class only; use fewer folds or more data")
    return ks


def cross_val_oof(name: str, X: np.ndarray, y: np.ndarray, folds: np.ndarray, *, seed: int, n_jobs: int,
                  params: dict | None = None, masking=None) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Out-of-fold probability of class 1 for every row, and the metrics of each fold."""
    from oanet.tabular.masking import fit_learner

    oof = np.full(len(y), np.nan)
    rows = []
    for k in _check_folds(y, folds):
        held = folds == k
        model = fit_learner(name, X[~held], y[~held], masking, random_state=seed, n_jobs=n_jobs, params=params)
        oof[held] = model.predict_proba(X[held])[:, 1]
        rows.append(binary_metrics(y[held], oof[held]))
    return oof, rows


def fold_metrics(y: np.ndarray, prob: np.ndarray, folds: np.ndarray) -> list[dict[str, float]]:
    return [binary_metrics(y[folds == k], prob[folds == k]) for k in sorted(np.unique(folds))]


def plot_importances(importances: dict[str, dict[str, float]], path: Path) -> Path:
    """Horizontal grouped bars: each model's importances as shares of its total."""
    from matplotlib.figure import Figure

    models = list(importances)
    columns = list(next(iter(importances.values())))
    height = 0.8 / max(1, len(models))
    fig = Figure(figsize=(7, 0.35 * len(columns) + 1.2), dpi=100)
    ax = fig.add_subplot()
    ys = np.arange(len(columns))
    for i, name in enumerate(models):
        values = np.array([importances[name][c] for c in columns], dtype=float)
        total = values.sum()
        ax.barh(ys + i * height, values / total if total > 0 else values, height=height, label=name)
    ax.set_yticks(ys + height * (len(models) - 1) / 2, labels=columns, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of the model's total importance")
    ax.set_title("Tabular bag: feature importances")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


@dataclass(frozen=True)
class _Rows:
    """The bag's rows as arrays, and which of them each step uses."""
    X: np.ndarray           # (n, fields) feature matrix, NaN where a read is missing
    y: np.ndarray           # (n,) 0/1 labels
    folds: np.ndarray       # (n,) CV fold of each train and val row
    cv: np.ndarray          # cross-validated rows: train and val
    fit: np.ndarray         # the final fit: train only (the gate is calibrated on val)
    test: np.ndarray


def _checked_models(models: tuple[str, ...]) -> tuple[str, ...]:
    from oanet.tabular.learners import learner_names

    unknown = [m for m in models if m not in learner_names()]
    if unknown or not models or len(set(models)) != len(models):
        raise BagInputError(f"bag.models must name distinct registered learners, got {list(models)}; "
                            f"known: {', '.join(learner_names())}")
    return models


def _bag_rows(schema: TabularSchema, paths: PathsConfig, layout_path: str | Path) -> tuple[pd.DataFrame, _Rows]:
    """The clean table joined with the split, checked against the layout's fields."""
    df = load_rows(paths.clean, paths.split, columns=("image", "label", "split", "fold"))
    lacking = [c for c in schema.fields if c not in df.columns]
    if lacking:
        raise BagInputError(f"{paths.clean} lacks the feature columns {lacking} of the layout {layout_path}")
    if not schema.columns:
        raise BagInputError(f"the layout {layout_path} has no feature fields")
    rows = _Rows(X=schema.matrix(df), y=df["label"].to_numpy().astype(int), folds=df["fold"].to_numpy().astype(int),
                 cv=(df["split"] != "test").to_numpy(), fit=(df["split"] == "train").to_numpy(),
                 test=(df["split"] == "test").to_numpy())
    if not rows.fit.any():
        raise BagInputError(f"{paths.split} has no training rows")
    _check_folds(rows.y[rows.cv], rows.folds[rows.cv])
    return df, rows


def _fit_one(name: str, rows: _Rows, masking, cfg: BagConfig, n_jobs: int, params: dict | None):
    """One learner: out-of-fold probabilities on the cv rows, per-fold metrics, the refit on the train rows
    and its probabilities on the test rows. Returns (probabilities (n,), fold metrics, refitted model)."""
    from oanet.tabular.masking import fit_learner

    prob = np.full(len(rows.y), np.nan)
    prob[rows.cv], folds = cross_val_oof(name, rows.X[rows.cv], rows.y[rows.cv], rows.folds[rows.cv],
                                         seed=cfg.seed, n_jobs=n_jobs, params=params, masking=masking)
    model = fit_learner(name, rows.X[rows.fit], rows.y[rows.fit], masking, random_state=cfg.seed, n_jobs=n_jobs,
                        params=params)
    if rows.test.any():
        prob[rows.test] = model.predict_proba(rows.X[rows.test])[:, 1]
    return prob, folds, model


def _progress_line(name: str, folds: list[dict[str, float]], test: dict[str, float], seconds: float) -> str:
    cv = mean_std(folds)
    return (f"bag: {name:<14} cv auc {cv['roc_auc']['mean']:.3f}±{cv['roc_auc']['std']:.3f} "
            f"acc {cv['accuracy']['mean']:.3f}  test auc {test.get('roc_auc', float('nan')):.3f} "
            f"acc {test.get('accuracy', float('nan')):.3f} recall {test.get('recall', float('nan')):.3f}  "
            f"({seconds:.1f} s)")


def run(cfg: BagConfig, paths: PathsConfig, layout_path: str | Path, *, n_jobs: int = 1, progress: bool = True,
        learner_params: dict[str, dict] | None = None, plot: bool = True) -> BagResult:
    """Cross-validate, refit and evaluate every model of `cfg.models`; write the outputs.

    `n_jobs`: threads per model; `learner_params`: optional {model: hyperparameters}
    overrides (None: library defaults, the paper's setting).
    """
    import joblib

    from oanet.tabular.bag import bag_mean
    from oanet.tabular.masking import FieldMasking

    models = _checked_models(tuple(cfg.models))
    schema = TabularSchema.from_layout(load_layout(layout_path))
    df, rows = _bag_rows(schema, paths, layout_path)
    masking = FieldMasking.from_schema(schema, cfg.mask_prob, cfg.mask_copies, cfg.seed)
    out_dir = Path(paths.bag_models)
    out_dir.mkdir(parents=True, exist_ok=True)
    probs: dict[str, np.ndarray] = {}
    cv_folds: dict[str, list[dict[str, float]]] = {}
    test_metrics: dict[str, dict[str, float]] = {}
    importances: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    model_files: dict[str, Path] = {}
    for name in models:
        t0 = time.perf_counter()
        probs[name], cv_folds[name], model = _fit_one(name, rows, masking, cfg, n_jobs,
                                                      (learner_params or {}).get(name))
        if rows.test.any():
            test_metrics[name] = binary_metrics(rows.y[rows.test], probs[name][rows.test])
        seconds[name] = time.perf_counter() - t0
        importances[name] = dict(zip(schema.columns, map(float, model.feature_importances_), strict=True))
        model_files[name] = out_dir / f"{name}.joblib"
        joblib.dump(model, model_files[name])
        if progress:
            print(_progress_line(name, cv_folds[name], test_metrics.get(name, {}), seconds[name]), flush=True)

    bag = bag_mean(probs[m] for m in models)
    cv_folds[BAG] = fold_metrics(rows.y[rows.cv], bag[rows.cv], rows.folds[rows.cv])
    if rows.test.any():
        test_metrics[BAG] = binary_metrics(rows.y[rows.test], bag[rows.test])
    cv = {name: mean_std(folds) for name, folds in cv_folds.items()}

    predictions = pd.DataFrame({"image": df["image"], "split": df["split"], "fold": rows.folds, "label": rows.y,
                                **{f"prob_{m}": probs[m] for m in models}, f"prob_{BAG}": bag})
    Path(paths.bag_predictions).parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(paths.bag_predictions, index=False)

    schema_path = out_dir / "schema.joblib"
    joblib.dump(schema, schema_path)
    write_manifest(out_dir, cfg, list(models), list(schema.columns), {m: p.name for m, p in model_files.items()},
                   schema_path.name)

    counts = {"cv": int(rows.cv.sum()), "fit": int(rows.fit.sum()), "test": int(rows.test.sum())}
    metrics = {"cv": cv, "cv_folds": cv_folds, "test": test_metrics, "importances": importances,
               "seconds": seconds, "rows": counts}
    Path(paths.bag_metrics).parent.mkdir(parents=True, exist_ok=True)
    Path(paths.bag_metrics).write_text(json.dumps(strict_json(metrics), indent=2))
    png = plot_importances(importances, Path(paths.bag_importances)) if plot else None
    return BagResult(cv=cv, test=test_metrics, seconds=seconds, n_train=counts["cv"], n_fit=counts["fit"],
                     n_test=counts["test"], predictions=Path(paths.bag_predictions), metrics=Path(paths.bag_metrics),
                     models=model_files, schema=schema_path, plot=png)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out_dir: Path, cfg: BagConfig, models: list[str], columns: list[str], files: dict[str, str],
                   schema: str) -> Path:
    """manifest.json: what the bag holds, the sha256 of every pickle (checked before unpickling),
    and the params it was made with (register checks them against params.yaml)."""
    hashes = {name: _sha256(out_dir / name) for name in [*files.values(), schema]}
    params = dataclasses.asdict(cfg)
    path = out_dir / "manifest.json"
    path.write_text(json.dumps({"models": models, "columns": columns, "seed": cfg.seed, "files": files,
                                "schema": schema, "sha256": hashes, "params": params,
                                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2))
    return path


def _contained(out_dir: Path, name: str, hashes: dict | None) -> Path:
    """`out_dir / name` if it is a plain file inside `out_dir` whose sha256 is the recorded one.

    joblib.load runs code from the file: a manifest must not point it anywhere else
    (absolute paths, `..`, symlinks), nor at a file that changed since the stage wrote it."""
    path = out_dir / name
    inside = not Path(name).is_absolute() and ".." not in Path(name).parts \
        and path.resolve().parent == out_dir.resolve()
    if not inside or path.is_symlink() or not path.is_file():
        raise BagInputError(f"{out_dir}/manifest.json names {name!r}: not a plain file inside {out_dir}; refused")
    if hashes is not None and hashes.get(name) != _sha256(path):
        raise BagInputError(f"{path}: sha256 differs from the one manifest.json recorded when the bag was saved "
                            "(changed or damaged since); refused to unpickle it: re-run the bag stage")
    return path


def load_bag(out_dir: str | Path):
    """(schema, fitted TabularBag) from a `bag` stage's out_dir; every pickle checked first."""
    import joblib

    from oanet.tabular.bag import TabularBag

    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    if not manifest_path.exists():
        raise BagInputError(f"{out_dir} holds no bag (manifest.json missing); run the bag stage")
    manifest = json.loads(manifest_path.read_text())
    hashes = manifest.get("sha256")
    if hashes is None:      # saved before hashes were recorded: still contained, but unverified
        warnings.warn(f"{manifest_path} records no sha256 (an older bag): its files are not verified; "
                      "re-run the bag stage", stacklevel=2)
    schema = joblib.load(_contained(out_dir, manifest["schema"], hashes))
    members = {m: joblib.load(_contained(out_dir, manifest["files"][m], hashes)) for m in manifest["models"]}
    return schema, TabularBag.from_fitted(members, random_state=manifest["seed"])
