"""Every training entry point logs its model's reference profile, and `monitor` takes its baseline from it rather
than from the held-out split: one small in-process training of each kind (scikit-learn, MLlib, per group, both
tuning refits) against the session's Spark."""

import pytest

from common.datasets import load_table
from common.profile import FEATURE, FROM_TRAINING, LABEL, PREDICTION, PROBABILITY, load_reference_profile
from monitoring.baselines import version_baselines
from training.held_out import logged_test_split
from training.mllib.train_mllib import TrainMllibParams
from training.mllib.train_mllib import run as train_mllib
from training.per_group.train_per_group import TrainPerGroupParams
from training.per_group.train_per_group import run as train_per_group
from training.sklearn.train_sklearn import TrainSklearnParams
from training.sklearn.train_sklearn import run as train_sklearn
from training.tuning.tune_hyperopt import TuneHyperoptParams
from training.tuning.tune_hyperopt import run as tune_hyperopt
from training.tuning.tune_joblib import TuneJoblibParams
from training.tuning.tune_joblib import run as tune_joblib

BREAST_CANCER = {"data": "breast_cancer", "estimator": "logistic_regression", "model_name": "m"}
JOBS = {
    "train_sklearn": (
        lambda spark, settings, params: train_sklearn(settings, params),
        TrainSklearnParams(**BREAST_CANCER),
        "target",
    ),
    "tune_joblib": (
        tune_joblib,
        TuneJoblibParams(**BREAST_CANCER, search="random", space={"C": [0.1, 1.0]}, n_iter=2, top_k=1),
        "target",
    ),
    "tune_hyperopt": (
        tune_hyperopt,
        TuneHyperoptParams(**BREAST_CANCER, space={"C": [0.1, 1.0]}, max_evals=2, parallelism=2),
        "target",
    ),
    "train_mllib": (
        train_mllib,
        TrainMllibParams(data="titanic", label="survived", num_trees=5, model_name="m"),
        "survived",
    ),
}


def _only_version(client):
    (version,) = client.search_model_versions("name='m'")
    return version


def _baseline_is_the_logged_profile(spark, client, version) -> dict:
    profile = load_reference_profile(version.run_id, client)
    assert profile is not None and profile["source"] == FROM_TRAINING
    (baseline,) = version_baselines(spark, client, "m", [str(version.version)]).values()
    assert baseline.profile == profile  # not computed again from the held-out split
    return profile


@pytest.mark.parametrize("job", list(JOBS))
def test_a_trained_version_carries_its_reference_profile_and_monitor_uses_it(spark, settings, client, job):
    run, params, label = JOBS[job]
    run(spark, settings, params)
    version = _only_version(client)
    profile = _baseline_is_the_logged_profile(spark, client, version)

    columns = profile["columns"]
    split = logged_test_split(version.run_id)
    features = [c for c in split.column_names if c != label]
    assert profile["label"] == label and profile["task"] == "classification"
    assert {c: columns[c]["role"] for c in features} == dict.fromkeys(features, FEATURE)
    assert columns[label]["role"] == LABEL and columns["prediction"]["role"] == PREDICTION
    recorded = client.get_run(version.run_id).data
    trained_on = float({**recorded.params, **recorded.metrics}["n_rows_train"])  # a parameter, or MLlib's metric
    assert columns[label]["count"] + columns[label]["nulls"] == trained_on  # the training rows, not the split
    assert sum(columns["prediction"]["categories"].values()) == split.num_rows  # the held-out predictions
    assert columns["probability"]["role"] == PROBABILITY and columns["probability"]["count"] == split.num_rows


def test_per_group_training_logs_one_profile_of_the_routing_model(spark, settings, client):
    params = TrainPerGroupParams(estimator="logistic_regression", model_name="m")
    train_per_group(spark, settings, params)
    version = _only_version(client)
    columns = _baseline_is_the_logged_profile(spark, client, version)["columns"]

    split = logged_test_split(version.run_id)
    rows = load_table(params.data).frame
    with_group = int(rows[params.group].notna().sum())
    assert columns[params.group]["role"] == FEATURE  # one profile over every group, the group a feature
    label = columns[params.label]
    assert label["count"] + label["nulls"] == with_group - split.num_rows  # every row with a group, less the split
    assert sum(columns["prediction"]["categories"].values()) == split.num_rows
