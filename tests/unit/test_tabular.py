"""Tabular learners and the bag: registry, scikit-learn contract, NaN handling, determinism.

Every registered learner (and the bag) goes through scikit-learn's full `check_estimator`
(clone, get/set_params, fit returns self, not-fitted errors, pickling, dtypes, NaN
acceptance via the allow_nan tag, idempotent fits, ...), with small ensembles so it
runs in seconds; default hyperparameters are checked separately on NaN-laden data.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from blocked_imports import run_without
from sklearn.base import clone

from oanet.errors import OanetError
from oanet.tabular import TabularBag, UnknownLearnerError, get_learner, learner_names, register_learner
from oanet.tabular import learners as learners_module

PAPER_LEARNERS = ("lightgbm", "catboost", "gbm", "random_forest")
# Small ensembles keep scikit-learn's ~50 checks fast; the defaults are used everywhere else.
SMALL = {"lightgbm": {"n_estimators": 10}, "catboost": {"iterations": 20},
         "gbm": {"n_estimators": 10}, "random_forest": {"n_estimators": 10}}


def small(name: str) -> dict:
    return SMALL.get(name, {})


@pytest.fixture(scope="module")
def data():
    """120 rows, 5 columns, 20% NaN; class 1 when column 0 is high."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=120) > 0.3).astype(int)
    X[rng.random(X.shape) < 0.2] = np.nan
    return X, y


# -- registry --------------------------------------------------------------------------

def test_the_paper_learners_are_registered():
    assert set(PAPER_LEARNERS) <= set(learner_names())


def test_a_duplicate_name_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_learner("lightgbm")(learners_module.LightGBMLearner)
    assert learner_names().count("lightgbm") == 1


def test_a_new_name_registers(monkeypatch):
    monkeypatch.setattr(learners_module, "_REGISTRY", dict(learners_module._REGISTRY))

    @register_learner("my_rf")
    class MyForest(learners_module.RandomForestLearner):
        pass

    assert "my_rf" in learner_names()
    assert isinstance(get_learner("my_rf", random_state=3), MyForest)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownLearnerError) as err:
        get_learner("xgboost")
    assert isinstance(err.value, OanetError)
    for name in PAPER_LEARNERS:
        assert name in str(err.value)


def test_importing_the_package_imports_neither_lightgbm_nor_catboost():
    code = ("import numpy as np, oanet.tabular as t\n"
            "X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)\n"
            "t.get_learner('gbm').fit(X, y); t.get_learner('catboost')\n"
            "try:\n    t.get_learner('catboost').fit(X, y)\nexcept ImportError:\n    print('ok')\n")
    assert run_without(("catboost", "lightgbm"), code, timeout=60) == "ok"


# -- every learner ---------------------------------------------------------------------

@pytest.mark.parametrize("name", learner_names())
def test_scikit_learn_check_estimator(name):
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(get_learner(name, params=small(name)), on_skip=None)   # skips: array-API only


@pytest.mark.parametrize("name", learner_names())
def test_default_learner_fits_nan_and_predicts_probabilities(name, data):
    X, y = data
    est = get_learner(name, random_state=1)
    assert est.get_params()["params"] is None         # library defaults, as in the paper
    fitted = clone(est).fit(X, y)
    assert not hasattr(est, "model_")                  # clone left the original alone
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert fitted.classes_.tolist() == [0, 1]
    assert set(fitted.predict(X)) <= {0, 1}
    all_missing = np.full((3, X.shape[1]), np.nan, dtype=np.float32)
    assert np.isfinite(fitted.predict_proba(all_missing)).all()
    assert fitted.feature_importances_.shape == (X.shape[1],)
    assert np.argmax(fitted.feature_importances_) == 0     # the column that carries the signal
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), proba)


@pytest.mark.parametrize("name", learner_names())
def test_same_seed_same_probabilities(name, data):
    X, y = data
    a = get_learner(name, random_state=5, params=small(name)).fit(X, y).predict_proba(X)
    b = get_learner(name, random_state=5, params=small(name)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", learner_names())
def test_string_labels_come_back(name, data):
    X, y = data
    labels = np.where(y == 1, "defect", "ok")
    est = get_learner(name, params=small(name)).fit(X, labels)
    assert est.classes_.tolist() == ["defect", "ok"]
    assert set(est.predict(X)) <= {"defect", "ok"}


@pytest.mark.parametrize("name", ["gbm", "random_forest"])
def test_imputed_learners_see_missingness_through_indicators(name):
    """A value that is missing exactly on defects: only the indicator column can tell."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    X = rng.normal(size=(200, 3))
    X[y == 1, 1] = np.nan
    est = get_learner(name, params=small(name)).fit(X, y)
    assert (est.predict(X) == y).mean() > 0.95
    assert np.argmax(est.feature_importances_) == 1


# -- the bag ---------------------------------------------------------------------------

BAG_PARAMS = {name: small(name) for name in PAPER_LEARNERS}


def test_bag_passes_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(TabularBag(learner_params=BAG_PARAMS), on_skip=None)


def test_bag_average_is_the_mean_of_its_members(data):
    X, y = data
    bag = TabularBag(random_state=2, learner_params=BAG_PARAMS).fit(X, y)
    assert list(bag.estimators_) == list(PAPER_LEARNERS)
    members = bag.member_proba(X)
    np.testing.assert_allclose(bag.predict_proba(X), np.mean([members[m] for m in PAPER_LEARNERS], axis=0))
    for name in PAPER_LEARNERS:        # each member is the learner the registry builds with the bag's seed
        alone = get_learner(name, random_state=2, params=small(name)).fit(X, y)
        np.testing.assert_allclose(members[name], alone.predict_proba(X))


def test_bag_from_fitted_members_predicts_the_same(data):
    X, y = data
    bag = TabularBag(models=("lightgbm", "gbm"), learner_params={"lightgbm": small("lightgbm")}).fit(X, y)
    again = TabularBag.from_fitted(bag.estimators_)
    np.testing.assert_array_equal(again.predict_proba(X), bag.predict_proba(X))
    assert again.get_params()["models"] == ("lightgbm", "gbm")


@pytest.mark.parametrize("kwargs, match", [
    ({"models": ()}, "at least one"),
    ({"models": ("gbm", "gbm")}, "twice"),
    ({"models": ("gbm",), "learner_params": {"catboost": {}}}, "not in the bag"),
])
def test_bag_rejects_bad_model_lists(kwargs, match, data):
    with pytest.raises(ValueError, match=match):
        TabularBag(**kwargs).fit(*data)


def test_bag_unknown_member_lists_the_known_ones(data):
    with pytest.raises(UnknownLearnerError, match="random_forest"):
        TabularBag(models=("gbm", "svm")).fit(*data)


def test_field_masking_drops_whole_fields_in_the_matrix_encoding():
    from oanet.tabular.masking import FieldMasking

    # columns: two numeric fields, then one category field with 3 one-hot columns
    m = FieldMasking(field_of_column=(0, 1, 2, 2, 2), n_numeric=2, prob=0.5, copies=2, seed=0)
    X = np.tile(np.array([[1.0, 2.0, 0.0, 1.0, 0.0]], np.float32), (400, 1))
    y = np.arange(400) % 2
    Xa, ya = m.augment(X, y)
    assert Xa.shape == (1200, 5) and (ya == np.tile(y, 3)).all()
    np.testing.assert_array_equal(Xa[:400], X)                         # the original rows come first, untouched
    copies = Xa[400:]
    cat_dropped = copies[:, 2:].sum(axis=1) == 0
    assert set(np.unique(copies[:, 3])) == {0.0, 1.0}                   # a category is dropped as all zeros ...
    assert np.isnan(copies[:, :2]).mean() == pytest.approx(0.5, abs=0.05)
    assert cat_dropped.mean() == pytest.approx(0.5, abs=0.06)
    assert not np.isnan(copies[:, 2:]).any()                           # ... never as NaN
    off = FieldMasking((0, 1, 2, 2, 2), 2, prob=0.0, copies=2, seed=0)
    assert off.augment(X, y)[0] is X
