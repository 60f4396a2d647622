"""The fusion network (paper section 3.3): image encoder + OCR encoder, aligned and refined.

- `oanet.fusion.encoders`: `get_encoder(name)` from a registry (alexnet, vgg16 = vgg16_bn,
  resnet18; torchvision, weights=None or a local file), 1-channel input, (n, d) embedding.
- `oanet.fusion.model`: pure nn.Modules (`OANet`, `TabularEncoder`, `Alignment`,
  `PCARefinement`, `Head`, `InputNorm`) returning NamedTuples; `ArchConfig` rebuilds them.
- `oanet.fusion.data`: ROI decoding, the OCR matrix, on-device augmentation and mask learning.
- `oanet.fusion.train`: the training loop with callbacks (`fit`, `TrainStep`, `predict_proba`).
- `oanet.fusion.stage`: the `fuse` stage, `run(cfg, layout_path)`, and `load_bundle`.

Importing this package imports nothing (torch is loaded by the submodules, where used);
the fusion code needs only torch, torchvision, numpy, pandas, scikit-learn and Pillow.
"""
