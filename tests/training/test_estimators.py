import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from common.errors import UserInputError
from training.sklearn.estimators import ESTIMATORS, build_estimator, build_pipeline
from training.tasks import split_features


def test_estimator_follows_task_and_takes_hyperparameters_and_seed():
    assert isinstance(build_estimator("random_forest", "classification", {}, 1), RandomForestClassifier)
    gbr = build_estimator("gradient_boosting", "regression", {"n_estimators": 7}, 3)
    assert isinstance(gbr, GradientBoostingRegressor) and gbr.n_estimators == 7 and gbr.random_state == 3
    assert isinstance(build_estimator("logistic_regression", "classification", {"C": 0.1}, 0), LogisticRegression)


def test_unknown_estimator_parameter_and_task_are_named():
    with pytest.raises(UserInputError, match="unknown estimator 'svm'; choose one of: " + ", ".join(ESTIMATORS)):
        build_estimator("svm", "classification", {}, 0)
    with pytest.raises(UserInputError, match="RandomForestClassifier does not accept depth; it accepts: .*max_depth"):
        build_estimator("random_forest", "classification", {"depth": 3}, 0)
    with pytest.raises(UserInputError, match="'logistic_regression' does not do regression"):
        build_estimator("logistic_regression", "regression", {}, 0)


def test_pipeline_encodes_strings_imputes_numbers_and_scores_unseen_categories():
    frame = pd.DataFrame(
        {
            "x": [1.0, None, 3.0, 4.0, 5.0, 6.0],
            "city": ["a", "b", "a", "b", "a", None],
            "y": [0, 1, 0, 1, 0, 1],
        }
    )
    data = split_features(frame, "y")
    pipeline = build_pipeline("logistic_regression", data, {}, 0).fit(data.features, data.label)
    unseen = pd.DataFrame({"x": [2.0], "city": ["never seen"]})
    assert pipeline.predict(unseen).shape == (1,)
    assert list(pipeline[:-1].get_feature_names_out()) == ["x", "city_a", "city_b", "city_None"]


def test_ensemble_answers_the_mean_of_its_members_with_the_class_names():
    from palmerpenguins import load_penguins

    data = split_features(load_penguins(), "species")
    pipeline = build_pipeline("boosting_ensemble", data, {}, 0).fit(data.features, data.label)
    members = dict(pipeline["estimator"].named_estimators_)
    assert list(members) == ["hist_gradient_boosting", "xgboost"]
    mean = (
        members["hist_gradient_boosting"].predict_proba(data.features) + members["xgboost"].predict_proba(data.features)
    ) / 2
    assert np.allclose(pipeline.predict_proba(data.features), mean)
    assert set(pipeline.predict(data.features)) == {"Adelie", "Chinstrap", "Gentoo"}
