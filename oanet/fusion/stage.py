"""Stage `fuse`: train the image-only CNN and the OANet fusion model, predict the test split.

Reads the OCR table, the split and the images (paths.clean, paths.split, paths.raw); trains
`cnn` (the image encoder alone) and `fusion` (image + OCR, alignment, refinement, mask
learning) on the `train` rows (not `val`: the gate is calibrated there). With `staged`,
`fusion` takes over the trained CNN's image encoder, frozen, and learns on its embeddings
(train_one); with `image_label: object` the CNN learns object defects only (process-only
defects are the OCR's to find). Writes
- paths.fusion_predictions: image, split, label, prob_cnn, prob_fusion for the val and test rows;
- paths.fusion_metrics: {"cnn": binary_metrics, "fusion": ..., "settings": ..., "seconds": ...,
  "history": {model: [per-epoch metrics]}};
- paths.fusion_models/{cnn,fusion}.pt: state_dict + architecture + config + tabular schema +
  object box + image size (everything `load_bundle` needs to predict on raw images);
- paths.fusion_curves: the training curves (a PNG).
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oanet.config import FuseConfig, PathsConfig, updated
from oanet.errors import OanetError
from oanet.features import TabularSchema
from oanet.layout import load_layout
from oanet.metrics import binary_metrics, learned_nothing
from oanet.split import load_parts

MODELS = ("cnn", "fusion")
FORMAT = "oanet-fusion/2"     # /2: the arch holds the fuse.network section (/1, flat, still loads)
READABLE = (FORMAT, "oanet-fusion/1")


@dataclass(frozen=True)
class FuseResult:
    metrics: dict                   # as written to paths.fusion_metrics
    written: tuple[Path, ...]       # every file the stage wrote

    def summary(self) -> str:
        s = self.metrics["settings"]
        lines = [f"fuse: {s['network']['encoder']} at {s['training']['image_size']} px, "
                 f"{s['optimiser']['epochs']} epochs on {s['device']}, {s['n_train']} train / {s['n_test']} test rows"]
        for name in MODELS:
            m = self.metrics[name]
            lines.append(f"  {name:6s} accuracy {m['accuracy']:.3f} recall {m['recall']:.3f} "
                         f"precision {m['precision']:.3f} f1 {m['f1']:.3f} auc {m['roc_auc']:.3f} "
                         f"(train {self.metrics['seconds'][name]:.1f} s)")
        lines += [f"  warning: {w}" for w in self.metrics.get("warnings", [])]
        lines.append("  written: " + ", ".join(map(str, self.written)))
        return "\n".join(lines)


@dataclass
class FusionBundle:
    """A trained model with everything it needs to score raw AOI images and OCR tables."""
    name: str
    model: object                   # OANet
    schema: TabularSchema
    object_roi: tuple[int, int, int, int]
    image_size: int
    config: dict

    def predict_proba(self, table: pd.DataFrame, data_dir: str | Path, device: str = "cpu",
                      batch_size: int = 256) -> np.ndarray:
        """(N,) defect probability of each row of `table` (column `image` relative to `data_dir`)."""
        from oanet.fusion.data import load_rois

        images = load_rois(data_dir, table["image"].tolist(), self.object_roi, self.image_size)
        return self.predict_images(images, table, device, batch_size)

    def predict_images(self, images, table: pd.DataFrame | None, device: str = "cpu",
                       batch_size: int = 256) -> np.ndarray:
        """(N,) defect probability from decoded object regions (N,1,S,S) uint8 (or their embeddings
        (N, Di) by this model's own encoder) and their OCR rows."""
        from oanet.fusion.data import tabular_input
        from oanet.fusion.train import TrainData, predict_proba

        if images.ndim == 4 and images.shape[-1] != self.image_size:
            raise OanetError(f"{self.name} expects {self.image_size} px object images, got {images.shape[-1]}")
        tab = tabular_input(self.schema, table) if self.model.arch.tabular else None
        self.model.to(device)
        return predict_proba(self.model, TrainData.build(images, tab, None, device=device), batch_size)


def _schema_dict(schema: TabularSchema) -> dict:
    return {"numeric": list(schema.numeric), "categories": [[n, list(c)] for n, c in schema.categories]}


def _schema_from(raw: dict) -> TabularSchema:
    return TabularSchema(numeric=tuple(raw["numeric"]),
                         categories=tuple((n, tuple(c)) for n, c in raw["categories"]))


def save_bundle(path: Path, name: str, model, cfg: FuseConfig, schema: TabularSchema,
                object_roi, image_size: int) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "name": name, "arch": dataclasses.asdict(model.arch),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "config": dataclasses.asdict(cfg), "schema": _schema_dict(schema),
                "object_roi": list(object_roi), "image_size": int(image_size)}, path)
    return path


def load_bundle(path: str | Path) -> FusionBundle:
    """Rebuild a model saved by the stage (no weights file needed: the state_dict holds them)."""
    import torch

    from oanet.fusion.model import ArchConfig, OANet

    raw = torch.load(path, map_location="cpu", weights_only=True)
    if raw.get("format") not in READABLE:
        raise OanetError(f"{path} is not a saved fusion model ({' or '.join(READABLE)})")
    model = OANet(ArchConfig.from_saved(raw["arch"]))
    model.load_state_dict(raw["state_dict"])
    model.eval()
    return FusionBundle(raw["name"], model, _schema_from(raw["schema"]), tuple(raw["object_roi"]),
                        raw["image_size"], raw["config"])


def variants(cfg: FuseConfig) -> dict[str, tuple[FuseConfig, bool]]:
    """The models this stage trains: name -> (settings, uses the OCR features)."""
    return {"cnn": (cfg, False), "fusion": (cfg, True)}


@dataclass
class Trained:
    model: object                   # OANet, trained, in eval mode
    history: list[dict]
    seconds: float
    extra: dict


def train_one(name: str, cfg: FuseConfig, tabular: bool, n_columns: int, data_train, device,
              callbacks: Iterable = (), echo=None, *, image_labels=None, encoder_from=None) -> Trained:
    """Seed, build, fit and (for fusion) refit the PCA on clean training embeddings.

    image_labels (N,) long: what an image-only model learns when `cfg.training.image_label` is
    `object`. encoder_from: a trained model whose image encoder this one takes over,
    frozen (staged training); `data_train.images` may then hold its embeddings (N, Di).
    """
    from oanet.fusion.model import ArchConfig
    from oanet.fusion.train import PrintProgress, build_model, fit, refit_refinement, seed_everything

    if not tabular and cfg.training.cnn_gridmask_prob is not None:
        cfg = updated(cfg, {"training": {"gridmask_prob": cfg.training.cnn_gridmask_prob}})
    seed_everything(cfg.seed)
    arch = ArchConfig.of(cfg.network, n_columns=n_columns, tabular=tabular)
    model = build_model(arch, cfg.network.weights, device)
    if not tabular and cfg.training.image_label == "object" and image_labels is not None:
        data_train = dataclasses.replace(data_train, labels=image_labels.to(data_train.labels.device))
    if encoder_from is not None:
        model.image_encoder.load_state_dict(encoder_from.image_encoder.state_dict())
        model.norm.img_mean.copy_(encoder_from.norm.img_mean)
        model.norm.img_std.copy_(encoder_from.norm.img_std)
        model.freeze_image_encoder()
    cbs = list(callbacks) + ([PrintProgress(name, echo)] if echo else [])
    t0 = time.perf_counter()
    fitted = fit(model, data_train, cfg, cbs)
    extra = refit_refinement(model, data_train, cfg.optimiser.batch_size) if arch.network.refine else {}
    return Trained(model, fitted.history, time.perf_counter() - t0, extra)


def model_inputs(cfg: FuseConfig, data_dir: str | Path, schema: TabularSchema, object_roi,
                 parts: dict[str, pd.DataFrame], device) -> dict:
    """{part: TrainData}: every image decoded once, (N,1,S,S) uint8, with its OCR features."""
    from oanet.fusion.data import load_rois, tabular_input
    from oanet.fusion.train import TrainData

    names = pd.concat([df["image"] for df in parts.values()]).tolist()
    images = load_rois(data_dir, names, object_roi, cfg.training.image_size)
    out, start = {}, 0
    for part, df in parts.items():
        out[part] = TrainData.build(images[start:start + len(df)], tabular_input(schema, df), df["label"],
                                    schema.field_of_column(), device)
        start += len(df)
    return out


def training_warning(name: str, pred: pd.DataFrame, history: list[dict], object_roi, size: int,
                     image_only: bool) -> str | None:
    """A line for a model whose val scores show it learned nothing, with what to look at: a model that
    calls every unit defective still reports a recall, and nothing else would say it never learned."""
    val = pred[pred["split"] == "val"]
    why = learned_nothing(val["label"], val[f"prob_{name}"])
    if why is None:
        return None
    loss = f"; training loss {history[0]['ce']:.2f} -> {history[-1]['ce']:.2f}" if history else ""
    if not image_only:
        return f"{name} learned nothing: {why}{loss}. Check the labels against the OCR table and the images"
    x0, y0, x1, y1 = object_roi
    shrink = max(x1 - x0, y1 - y0) / size
    return (f"{name} learned nothing: {why}{loss}. It sees the {x1 - x0}x{y1 - y0} px object box (or the object cut "
            f"tight inside it) at {size}x{size} px, up to {shrink:.0f}x smaller: a defect a few pixels wide vanishes "
            "there. Try a larger fuse.training.image_size, or check that the labels follow what the image shows")


def plot_curves(histories: dict[str, list[dict]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for i, (name, hist) in enumerate(histories.items()):
        ep, style = [h["epoch"] for h in hist], dict(marker="o", color=f"C{i}")
        axes[0].plot(ep, [h["ce"] for h in hist], label=name, **style)
        axes[1].plot(ep, [h["train_accuracy"] for h in hist], label=name, **style)
        if name != "cnn":
            axes[2].plot(ep, [h["align"] for h in hist], label=f"{name} (1 - cosine)", **style)
    for ax, title in zip(axes, ("training loss (class-weighted CE)", "training accuracy (augmented)",
                                "alignment loss"), strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run(cfg: FuseConfig, paths: PathsConfig, layout_path: str | Path, callbacks: Iterable = (),
        echo=None) -> FuseResult:
    """Train `cnn` and `fusion` on the train rows, score val and test, write every output."""
    import torch

    from oanet.device import resolve_device
    from oanet.fusion.data import image_labels
    from oanet.fusion.encoders import WeightsError, encoder_dim
    from oanet.fusion.train import predict_proba, staged_training_data

    net, size = cfg.network, cfg.training.image_size
    encoder_dim(net.encoder)                            # fail before any work on an unknown name
    if net.weights and not Path(net.weights).is_file():
        raise WeightsError(f"weights file not found: {net.weights} (fuse.network.weights; nothing is downloaded)")
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    layout = load_layout(layout_path)
    schema = TabularSchema.from_layout(layout)
    parts = load_parts(paths.clean, paths.split)
    t0 = time.perf_counter()
    data = model_inputs(cfg, paths.raw, schema, layout.object_roi, parts, device)
    seconds: dict[str, float] = {"decode": time.perf_counter() - t0}

    scored = pd.concat([parts["val"], parts["test"]], ignore_index=True)
    pred = pd.DataFrame({"image": scored["image"], "split": scored["split"],
                         "label": scored["label"].to_numpy().astype(int)})
    histories, bundles, extra, warnings = {}, {}, {}, []
    y_image = torch.from_numpy(image_labels(parts["train"], cfg.training.process_defects))
    train, encoder_from = data["train"], None
    for name, (vcfg, tabular) in variants(cfg).items():
        trained = train_one(name, vcfg, tabular, len(schema.columns), train, device, callbacks, echo,
                            image_labels=y_image, encoder_from=encoder_from)
        if name == "cnn" and cfg.training.staged:     # fusion learns on the trained CNN's frozen embeddings
            encoder_from = trained.model
            train = staged_training_data(trained.model, data["train"], cfg, cfg.training.staged_views)
        seconds[name], histories[name] = trained.seconds, trained.history
        extra.update(trained.extra)
        pred[f"prob_{name}"] = np.concatenate([predict_proba(trained.model, data[p], cfg.optimiser.batch_size)
                                               for p in ("val", "test")])
        bundles[name] = save_bundle(Path(paths.fusion_models) / f"{name}.pt", name, trained.model, vcfg, schema,
                                    layout.object_roi, size)
        warning = training_warning(name, pred, trained.history, layout.object_roi, size, image_only=not tabular)
        warnings += [warning] if warning else []

    test = pred[pred["split"] == "test"]
    y = test["label"].to_numpy()
    metrics = {name: binary_metrics(y, test[f"prob_{name}"].to_numpy()) for name in MODELS}
    metrics["settings"] = {**dataclasses.asdict(cfg),
                           "device": str(device), "n_train": len(parts["train"]), "n_val": len(parts["val"]),
                           "n_test": len(parts["test"]), "torch": torch.__version__, **extra}
    metrics["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    metrics["history"] = histories                      # per-epoch training metrics, for tracking
    metrics["warnings"] = warnings
    predictions, metrics_file = Path(paths.fusion_predictions), Path(paths.fusion_metrics)
    for path in (predictions, metrics_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    pred.to_parquet(predictions, index=False)
    metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
    curves = plot_curves(histories, Path(paths.fusion_curves))
    return FuseResult(metrics, (predictions, metrics_file, curves, *bundles.values()))
