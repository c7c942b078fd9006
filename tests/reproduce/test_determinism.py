"""The same MLlib training, parameters and data give the same model twice, in-process on the session's Spark and
through train_mllib's own steps (its tracking is tests/test_entry_points.py's): a forest on rows that come in
one file or shuffled into three (the split, folds and bagging must not depend on the layout), and a
gradient-boosted pipeline. The tuning jobs' repeats are in tests/training/test_tune_hyperopt.py and
test_tune_joblib.py; reproductions through `mlflow run` in test_reproduce.py."""

from __future__ import annotations

import pandas as pd

from common.datasets import load_table
from training.mllib.pipeline import MllibSpec
from training.mllib.steps import prepare_mllib


def _fitted(spark, data: str, spec: MllibSpec):
    """train_mllib's own steps without the logging: the prepared job's test split and the fitted model on it."""
    job = prepare_mllib(spark, data, spec, test_fraction=0.2)
    scored = job.pipeline.fit(job.train).transform(job.test).select("probability", "prediction").toPandas()
    return job.test.toPandas(), scored.assign(probability=scored["probability"].map(list))


def test_an_mllib_split_folds_and_forest_do_not_depend_on_how_the_rows_are_laid_out_in_files(spark, tmp_path):
    """The same passengers as one Parquet file, and shuffled into three: the same split and trees."""
    frame = load_table("titanic").frame
    one, many = tmp_path / "one.parquet", tmp_path / "many"
    frame.to_parquet(one, index=False)
    many.mkdir()
    shuffled = frame.sample(frac=1.0, random_state=7, ignore_index=True)
    for part, start in enumerate(range(0, len(shuffled), 500)):
        shuffled.iloc[start : start + 500].to_parquet(many / f"part-{part}.parquet", index=False)
    spec = MllibSpec("survived", "classification", num_trees=5, title_from="name")
    (test_a, scored_a), (test_b, scored_b) = (_fitted(spark, str(d), spec) for d in (one, many))

    assert len(test_a) > 200
    # The same rows in the same order, in partitions of the same rows: a forest bags by partition index, so equal
    # trees mean equal partitions (and with them equal CV folds, drawn by position within a partition).
    pd.testing.assert_frame_equal(test_a, test_b)
    pd.testing.assert_frame_equal(scored_a, scored_b)


def test_a_gradient_boosted_mllib_pipeline_trains_to_the_same_trees_twice(spark):
    spec = MllibSpec("survived", "classification", estimator="gbt", num_trees=5, title_from="name")
    (test_a, scored_a), (test_b, scored_b) = (_fitted(spark, "titanic", spec) for _ in range(2))

    pd.testing.assert_frame_equal(test_a, test_b)
    pd.testing.assert_frame_equal(scored_a, scored_b)
