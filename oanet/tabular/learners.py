"""Tabular learners of the intra-bag, chosen by name from a small registry.

Every learner is a scikit-learn classifier: `__init__` only stores its arguments
(`random_state`, `n_jobs`, `params` = extra hyperparameters of the wrapped model),
`fit` returns self, the fitted state lives in `*_` attributes and `clone` works.
Hyperparameters are the libraries' defaults, as in the paper; only the seed, the
thread count and the verbosity are set.

Missing values (masked or unread OCR fields) arrive as NaN. LightGBM and CatBoost
handle them natively; scikit-learn's GradientBoosting and RandomForest get a median
imputer with missing-indicator columns in front (a Pipeline inside the learner), so
the imputation is fitted on the training rows only and travels with the model.

lightgbm and catboost are imported inside `fit`, so `import oanet.tabular` works
where they are not installed.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from oanet.errors import OanetError

_REGISTRY: dict[str, Callable[..., TabularLearner]] = {}


class UnknownLearnerError(OanetError, KeyError):
    """A learner name that is not in the registry; the message lists the known ones."""

    def __str__(self) -> str:                # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def register_learner(name: str):
    """Class or factory decorator: make a learner available as `get_learner(name)`."""
    def decorate(factory):
        if name in _REGISTRY:
            raise ValueError(f"a tabular learner named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory
    return decorate


def learner_names() -> tuple[str, ...]:
    """Registered names, in registration order."""
    return tuple(_REGISTRY)


def get_learner(name: str, **kwargs) -> TabularLearner:
    """A new, unfitted learner; kwargs go to its constructor (random_state, n_jobs, params)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownLearnerError(
            f"unknown tabular learner {name!r}; known: {', '.join(learner_names())}") from None
    return factory(**kwargs)


def _seed(random_state) -> int:
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return int(random_state or 0)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class TabularLearner(ClassifierMixin, BaseEstimator):
    """Base class: input checks, label encoding and predict; subclasses build `model_`.

    Parameters
    ----------
    random_state : int, default 0. The only source of randomness of the wrapped model.
    n_jobs : int, default 1. Threads of the wrapped model (where it has them).
    params : dict or None. Extra hyperparameters for the wrapped model; None keeps the
        library defaults (the paper's setting).

    Fitted attributes: `model_` (the wrapped model), `classes_`, `n_features_in_`,
    and the property `feature_importances_` (one value per input column).
    """

    def __init__(self, random_state=0, n_jobs: int = 1, params: dict | None = None):
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.params = params

    # -- to implement ---------------------------------------------------------------
    def _build(self):
        raise NotImplementedError

    def _importances(self) -> np.ndarray:
        return np.asarray(self.model_.feature_importances_, dtype=float)

    # -- scikit-learn contract ------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y):
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"got one class: {self.classes_.tolist()}")
        self.model_ = self._build()
        self.model_.fit(X, encoded)
        return self

    def predict_proba(self, X) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return np.asarray(self.model_.predict_proba(X), dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def feature_importances_(self) -> np.ndarray:
        """The model's native importances, one per input column."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self._importances()


@register_learner("lightgbm")
class LightGBMLearner(TabularLearner):
    """LightGBM's LGBMClassifier; NaN handled natively.

    Importances: total gain (`importance_type` only changes the report, not the model);
    split counts rank a noisy continuous column as high as the informative one.
    """

    def _build(self):
        from lightgbm import LGBMClassifier

        return LGBMClassifier(**{"random_state": _seed(self.random_state), "n_jobs": self.n_jobs,
                                 "verbose": -1, "importance_type": "gain", **(self.params or {})})


@register_learner("catboost")
class CatBoostLearner(TabularLearner):
    """CatBoostClassifier; NaN handled natively. Importances: PredictionValuesChange."""

    def _build(self):
        from catboost import CatBoostClassifier

        return CatBoostClassifier(**{"random_seed": _seed(self.random_state), "thread_count": self.n_jobs,
                                     "verbose": 0, "allow_writing_files": False, **(self.params or {})})

    def _importances(self) -> np.ndarray:
        return np.asarray(self.model_.get_feature_importance(), dtype=float)


class ImputedLearner(TabularLearner):
    """A scikit-learn model behind a median imputer with missing-indicator columns.

    Importances are the model's own, folded back onto the input columns: the weight of
    a column's missing indicator is added to the column's value.
    """

    def _estimator(self):
        raise NotImplementedError

    def _build(self):
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline

        return Pipeline([
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("model", self._estimator()),
        ])

    def _importances(self) -> np.ndarray:
        raw = np.asarray(self.model_[-1].feature_importances_, dtype=float)
        n = self.n_features_in_
        out = raw[:n].copy()
        indicator = self.model_[0].indicator_
        if indicator is not None:
            np.add.at(out, indicator.features_, raw[n:])
        return out


@register_learner("gbm")
class GradientBoostingLearner(ImputedLearner):
    """scikit-learn GradientBoostingClassifier (median impute + missing indicators)."""

    def _estimator(self):
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(**{"random_state": _seed(self.random_state), **(self.params or {})})


@register_learner("random_forest")
class RandomForestLearner(ImputedLearner):
    """scikit-learn RandomForestClassifier (median impute + missing indicators)."""

    def _estimator(self):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**{"random_state": _seed(self.random_state), "n_jobs": self.n_jobs,
                                         **(self.params or {})})
