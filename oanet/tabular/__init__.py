"""Tabular modality: the intra-bag of LightGBM, CatBoost, GradientBoosting and RandomForest.

`get_learner(name)` builds a learner from the registry; `TabularBag` averages several.
The stage (`oanet.tabular.stage.run`) is imported on its own, where it is used.
"""
from oanet.tabular.bag import DEFAULT_MODELS, TabularBag
from oanet.tabular.learners import (
    TabularLearner,
    UnknownLearnerError,
    get_learner,
    learner_names,
    register_learner,
)

__all__ = ["DEFAULT_MODELS", "TabularBag", "TabularLearner", "UnknownLearnerError", "get_learner",
           "learner_names", "register_learner"]
