"""The intra-bag: several tabular learners fitted on the same rows, probabilities averaged."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from oanet.tabular.learners import get_learner

DEFAULT_MODELS = ("lightgbm", "catboost", "gbm", "random_forest")


def bag_mean(probs: Iterable[np.ndarray]) -> np.ndarray:
    """The bag average: the element-wise mean of the members' probabilities.

    The one definition of the bag's prediction: `TabularBag.predict_proba`, the bag stage's
    `prob_bag` and the evaluation's `bag` baseline all call it.
    """
    return np.mean(np.stack(list(probs)), axis=0)


class TabularBag(ClassifierMixin, BaseEstimator):
    """Fits each named learner on the same data; `predict_proba` is their mean.

    Parameters
    ----------
    models : names from the learner registry (`oanet.tabular.learner_names()`).
    random_state, n_jobs : passed to every member.
    learner_params : optional {name: {hyperparameter: value}} for single members
        (None: library defaults for all, as in the paper).

    Fitted attributes: `estimators_` ({name: fitted learner}, in `models` order),
    `classes_`, `n_features_in_`.
    """

    def __init__(self, models: Sequence[str] = DEFAULT_MODELS, random_state=0, n_jobs: int = 1,
                 learner_params: Mapping[str, dict] | None = None):
        self.models = models
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.learner_params = learner_params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _member(self, name: str):
        params = (self.learner_params or {}).get(name)
        return get_learner(name, random_state=self.random_state, n_jobs=self.n_jobs, params=params)

    def fit(self, X, y):
        from sklearn.utils.validation import validate_data

        names = list(self.models)
        if not names:
            raise ValueError("TabularBag needs at least one model")
        if len(set(names)) != len(names):
            raise ValueError(f"TabularBag got a model twice: {names}")
        unknown = set(self.learner_params or {}) - set(names)
        if unknown:
            raise ValueError(f"learner_params names models not in the bag: {sorted(unknown)}")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        self.estimators_ = {name: self._member(name).fit(X, y) for name in names}
        self.classes_ = next(iter(self.estimators_.values())).classes_
        return self

    @classmethod
    def from_fitted(cls, estimators: Mapping[str, BaseEstimator], **kwargs) -> TabularBag:
        """A fitted bag assembled from members fitted elsewhere (e.g. loaded from disk)."""
        bag = cls(models=tuple(estimators), **kwargs)
        bag.estimators_ = dict(estimators)
        first = next(iter(bag.estimators_.values()))
        bag.classes_ = first.classes_
        bag.n_features_in_ = first.n_features_in_
        for name, est in bag.estimators_.items():
            if not np.array_equal(est.classes_, bag.classes_) or est.n_features_in_ != bag.n_features_in_:
                raise ValueError(f"member {name!r} was fitted on other classes or columns")
        return bag

    def member_proba(self, X) -> dict[str, np.ndarray]:
        """{name: (n, n_classes) probabilities} of each member."""
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return {name: est.predict_proba(X) for name, est in self.estimators_.items()}

    def predict_proba(self, X) -> np.ndarray:
        """The bag average: the mean of the members' probabilities."""
        return bag_mean(self.member_proba(X).values())

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
