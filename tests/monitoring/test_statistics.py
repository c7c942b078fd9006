"""The drift statistics and the reference profile on their own (no Spark): each statistic computed from two profiles
against an independent implementation on the raw values, the thresholds, the windows and the retraining policy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from common.errors import UserInputError
from common.profile import QUANTILE_LEVELS, category_text, column_profile, reference_profile
from monitoring import drift
from monitoring.comparison import compare_column
from monitoring.judgement import retraining_decision
from monitoring.thresholds import parse_thresholds
from monitoring.windows import parse_window

SAMPLES = {
    "normal": lambda rng, n, shift: rng.normal(shift, 1.0, n),
    "skewed": lambda rng, n, shift: rng.lognormal(shift, 0.8, n),
    "discrete": lambda rng, n, shift: rng.poisson(3 + 2 * shift, n).astype(float),
    "heavier tails": lambda rng, n, shift: rng.standard_t(5, n) + shift,
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_numeric_statistics_from_two_profiles_match_scipy_on_the_raw_values(kind, shift):
    """PSI and JS over the baseline's bins: exact. KS statistic from the quantile grids: within 0.01 (the grid's
    step) of ks_2samp's, which lies between the smallest statistic the grids allow and that plus two steps.
    Wasserstein from the quantile grids and means: within 0.05 baseline standard deviations."""
    rng = np.random.default_rng(11)
    a, b = SAMPLES[kind](rng, 4_000, 0.0), SAMPLES[kind](rng, 1_500, shift)
    reference, window = column_profile(pd.Series(a), "feature"), column_profile(pd.Series(b), "feature")
    window["bin_counts"] = np.bincount(
        np.searchsorted(reference["bin_edges"], b, side="right"), minlength=len(reference["bin_edges"]) + 1
    ).tolist()  # the window counted in the baseline's bins, as monitor's Spark side does
    e, q = np.array(reference["bin_counts"]), np.array(window["bin_counts"])
    pe, pq = np.maximum(e / e.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
    assert drift.psi(e, q) == pytest.approx(np.sum((pq - pe) * np.log(pq / pe)), abs=1e-12)
    assert drift.js_distance(e, q) == pytest.approx(jensenshannon(e, q, base=2), abs=1e-12)
    ks = drift.ks_statistic(reference["quantiles"], window["quantiles"], QUANTILE_LEVELS)
    assert abs(ks - stats.ks_2samp(a, b).statistic) <= 0.01
    distance = drift.wasserstein(
        reference["quantiles"], window["quantiles"], QUANTILE_LEVELS, reference["mean"], window["mean"]
    )
    assert abs(distance / reference["std"] - stats.wasserstein_distance(a, b) / a.std(ddof=1)) <= 0.05
    smallest = drift.ks_lower_bound(reference["quantiles"], window["quantiles"], QUANTILE_LEVELS)
    assert smallest <= stats.ks_2samp(a, b).statistic <= smallest + 0.02


@pytest.mark.parametrize("rows", [1_000, 50_000])
def test_the_ks_pvalue_is_never_below_the_exact_tests_so_large_windows_raise_no_false_alarm(rows):
    """The midpoint statistic errs by up to the grid step: at 50,000 rows a side that alone would make a test of two
    samples of one distribution significant. The p-value comes from the smallest statistic the grids allow."""
    significant = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(size=rows), rng.normal(size=rows)
        quantiles = [np.quantile(x, QUANTILE_LEVELS, method="inverted_cdf") for x in (a, b)]
        pvalue = drift.ks_pvalue(drift.ks_lower_bound(*quantiles, QUANTILE_LEVELS), rows, rows)
        assert pvalue >= stats.ks_2samp(a, b, method="asymp").pvalue
        significant += pvalue < 0.05
    assert significant <= 1


def test_ks_pvalue_is_scipys_asymptotic_two_sample_pvalue_for_the_same_statistic():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 900), rng.normal(0.1, 1, 700)
    exact = stats.ks_2samp(a, b, method="asymp")
    assert drift.ks_pvalue(exact.statistic, len(a), len(b)) == pytest.approx(exact.pvalue, rel=1e-9)


def test_an_empty_bin_is_floored_so_psi_stays_finite():
    assert drift.psi([100, 0, 100], [100, 50, 100]) == pytest.approx(
        (0.2 - 1e-4) * np.log(0.2 / 1e-4) + 2 * (0.4 - 0.5) * np.log(0.4 / 0.5)
    )


def test_categorical_statistics_match_scipy_and_new_categories_are_named():
    counts_a = pd.Series({"red": 500, "green": 300, "blue": 200})
    counts_b = pd.Series({"red": 420, "green": 300, "blue": 230, "purple": 50})
    reference = column_profile(pd.Series(np.repeat(counts_a.index, counts_a.to_numpy())), "feature")
    window = column_profile(pd.Series(np.repeat(counts_b.index, counts_b.to_numpy())), "feature")
    labels, ra, wb = drift.aligned_categories(reference, window)
    assert labels == ["blue", "green", "purple", "red"] and ra == [200, 300, 0, 500] and wb == [230, 300, 50, 420]
    table = np.array([ra, wb])
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert drift.chi_square_pvalue(ra, wb) == pytest.approx(expected, rel=1e-9)
    assert drift.js_distance(ra, wb) == pytest.approx(jensenshannon(ra, wb, base=2))
    shares = table / table.sum(axis=1, keepdims=True)
    assert drift.total_variation(ra, wb) == pytest.approx(np.abs(shares[0] - shares[1]).sum() / 2)
    assert drift.linf(ra, wb) == pytest.approx(np.abs(shares[0] - shares[1]).max())
    result = compare_column(reference, window, parse_thresholds(None), min_rows=100)
    assert result.new_categories == ["purple"] and result.status == "new categories: purple" and result.drifted


def test_a_category_the_baseline_only_counted_among_the_rest_is_compared_in_the_rest():
    reference = {"kind": "categorical", "count": 100, "categories": {"a": 60}, "other": 40}
    window = {"kind": "categorical", "count": 100, "categories": {"a": 50, "b": 30, "c": 20}, "other": 0}
    assert drift.aligned_categories(reference, window) == (["a", drift.OTHER], [60, 40], [50, 50])
    assert drift.new_categories(reference, window) is None  # b and c may have been among the baseline's rest


def test_too_few_values_give_no_statistic():
    column = column_profile(pd.Series(np.arange(50.0)), "feature")
    result = compare_column(column, column, parse_thresholds(None), min_rows=100)
    assert set(result.values.values()) == {None} and result.status.startswith("insufficient: 50 values")


def test_thresholds_default_and_override_and_refuse_what_is_not_a_number():
    chosen = parse_thresholds('{"psi": 0.25, "js": 0.2, "ks": 0.01}')
    assert (chosen["psi"], chosen["js_distance"], chosen["ks_pvalue"], chosen["chi2_pvalue"]) == (0.25, 0.2, 0.01, 0.05)
    for text, expected in [
        ('{"psi": "0.2"}', "threshold 'psi' must be a number of 0 or more, got \"0.2\""),
        ('{"psi": true}', "threshold 'psi' must be a number of 0 or more, got true"),
        ('{"psi": -1}', "threshold 'psi' must be a number of 0 or more, got -1"),
        ("[0.2]", "thresholds must be a JSON object"),
        ("{psi: 0.2}", "thresholds is not valid JSON"),
    ]:
        with pytest.raises(UserInputError, match="^" + expected.replace("(", r"\(")):
            parse_thresholds(text)


def test_windows_are_epoch_aligned_lengths_or_micro_batches():
    assert parse_window("1d").seconds == 86_400 and parse_window("15m").seconds == 900
    assert parse_window(" 6H ").seconds == 21_600 and parse_window("batch").by_batch
    assert (
        parse_window("1d").label(1_704_153_600) == "2024-01-02" and parse_window("15m").label(900) == "1970-01-01 00:15"
    )
    for bad in ("0d", "day", "1.5h", ""):
        with pytest.raises(UserInputError):
            parse_window(bad)


def test_retraining_is_due_when_enough_of_the_last_judged_windows_violated():
    ok, bad, few = "ok", "drift: x0", "insufficient: 12 rows"
    assert retraining_decision([bad, ok, ok, bad, few]).due  # 2 of the last 4 judged
    assert not retraining_decision([bad, ok, ok, ok, ok, ok, bad]).due  # the first fell out of the last 5
    assert retraining_decision(["degraded: accuracy", few, few, "degraded: f1; drift: x1"], 2, 3).due
    decision = retraining_decision([ok, bad, ok], violations=2, windows=5)
    assert (decision.due, decision.violated, decision.judged) == (False, 1, 3)


def test_the_reference_profile_is_json_and_reads_categories_as_monitoring_does():
    features = pd.DataFrame({"flag": [True, False, True, None], "n": [1, 2, 3, 4], "s": ["a", "b", None, "a"]})
    profile = reference_profile(
        features,
        pd.Series([0.0, 1.0, 1.0, 0.0], name="y"),
        [1, 0, 1, 1],
        [0.7, 0.2, 0.9, 0.6],
        task="classification",
        classes=np.array([0, 1]),
    )
    columns = profile["columns"]
    assert (columns["flag"]["kind"], columns["flag"]["count"], columns["flag"]["nulls"]) == ("categorical", 3, 1)
    assert columns["y"]["categories"] == {"0": 2, "1": 2}  # 1.0 and 1 are one class
    assert (
        columns["n"]["quantiles"][0] == 1
        and columns["n"]["quantiles"][-1] == 4
        and len(columns["n"]["quantiles"]) == 101
    )
    assert columns["probability"]["kind"] == "numeric" and profile["classes"] == [0, 1]
    assert [category_text(v) for v in (True, 2.0, 2.5, np.int64(3), "x")] == ["true", "2", "2.5", "3", "x"]
    json.dumps(profile, allow_nan=False)  # JSON as logged


def test_the_rows_of_pending_windows_are_found_by_the_time_column_itself(spark, tmp_path):
    """The predicate Parquet can push down keeps exactly the rows whose window key is pending: a window's first
    second in, its end out, consecutive windows as one range, others apart; micro-batches by their id."""
    from pyspark.sql import functions as F

    from monitoring.inputs import read_inference
    from monitoring.windows import WINDOW_KEY, rows_of_windows

    hours = spark.range(0, 24 * 10).select(
        F.timestamp_seconds(F.col("id") * 3600 - F.when(F.col("id") % 24 == 0, 0).otherwise(1)).alias("scored_at"),
        F.lit("m").alias("model_name"),
        F.lit("1").alias("model_version"),
        (F.col("id") % 3).alias("batch_id"),
    )
    hours.write.parquet(str(tmp_path / "scored"))
    for text, keys in (("1d", [86_400 * 2, 86_400 * 3, 86_400 * 7]), ("6h", [0, 21_600 * 5]), ("batch", [0, 2])):
        spec = parse_window(text)
        df = read_inference(spark, str(tmp_path / "scored"), "m", spec, "scored_at", None)
        expected = sorted(r[0] for r in df.where(F.col(WINDOW_KEY).isin(keys)).select("scored_at").collect())
        narrowed = df.where(rows_of_windows(df, spec, "scored_at", keys))
        assert sorted(r[0] for r in narrowed.select("scored_at").collect()) == expected and expected
    as_text = read_inference(spark, str(tmp_path / "scored"), "m", parse_window("1d"), "scored_at", None).withColumn(
        "scored_at", F.col("scored_at").cast("string")
    )
    assert rows_of_windows(as_text, parse_window("1d"), "scored_at", [0]) is None  # ISO text: the key decides alone
