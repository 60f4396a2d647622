"""A model whose validation scores show it learned nothing is named, with what to look at."""
from __future__ import annotations

import numpy as np
import pandas as pd

from oanet.fusion.stage import training_warning
from oanet.metrics import learned_nothing

Y = np.array([0, 1] * 20)


def test_a_constant_score_or_a_chance_auc_is_learning_nothing_and_a_real_signal_is_not():
    rng = np.random.default_rng(0)
    assert learned_nothing(Y, np.full(40, 0.52)) == "it gives every val unit the same score (0.52)"
    assert "val ROC AUC is 0.00" in learned_nothing(Y, 1.0 - Y * 0.5)                 # worse than chance: too
    assert "no better than chance" in learned_nothing(Y, rng.random(40) * 0.1 + 0.45 + 0.001 * Y)
    assert learned_nothing(Y, 0.3 + 0.4 * Y + rng.normal(0, 0.1, 40)) is None
    assert learned_nothing(np.zeros(10), np.full(10, 0.5)) is None                    # one class: no verdict


def test_the_warning_says_why_and_for_the_image_model_how_small_the_object_became():
    pred = pd.DataFrame({"split": ["val"] * 40 + ["test"] * 2, "label": [*Y, 0, 1],
                         "prob_cnn": [0.5] * 40 + [0.1, 0.9], "prob_fusion": [*(0.2 + 0.6 * Y), 0.5, 0.5]})
    history = [{"ce": 0.693}, {"ce": 0.6925}]
    line = training_warning("cnn", pred, history, (0, 0, 470, 600), 64, image_only=True)
    assert line.startswith("cnn learned nothing: it gives every val unit the same score (0.50); "
                           "training loss 0.69 -> 0.69")
    assert "470x600 px object box (or the object cut tight inside it) at 64x64 px, up to 9x smaller" in line
    assert "fuse.training.image_size" in line
    assert training_warning("fusion", pred, history, (0, 0, 470, 600), 64, image_only=False) is None
