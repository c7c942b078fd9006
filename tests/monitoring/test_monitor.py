"""`monitor` on real predictions of a registered model: three runs over one inference table (labels for day 0,
then for days 0-2, arriving two windows late, then nothing new), and what they leave in the tables, the run and
the registry. The statistics in the drift table are checked against scipy / NumPy on the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn import metrics as skm

from common.profile import MONITORING_STATUS_TAG, MONITORING_WINDOW_TAG, load_reference_profile
from monitoring.monitor import MonitorParams, MonitorResult, run
from tests.monitoring.conftest import DAY, MODEL, SEEDS, SHIFTED_DAY, SMALL_DAY, write_labels

KEYS = [int((DAY + pd.Timedelta(days=d)).timestamp()) for d in range(SMALL_DAY + 1)]
NUMERIC = ["x0", "x1", "x2", "x3"]


@dataclass(frozen=True)
class Runs:
    first: MonitorResult
    late_labels: MonitorResult
    again: MonitorResult
    drift: pd.DataFrame
    profile: pd.DataFrame
    state: pd.DataFrame


@pytest.fixture(scope="module")
def runs(monitored, spark) -> Runs:
    output = str(monitored.root / "monitoring")

    def monitor(labels: str) -> MonitorResult:
        params = MonitorParams(
            model_name=MODEL,
            input=str(monitored.root / "scored"),
            output=output,
            labels=labels,
            ids=("row_id",),
            slice="seed",
        )
        return run(spark, monitored.settings(), params)

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(monitored.root)
        patch.setenv("MLFLOW_TRACKING_URI", monitored.tracking_uri)
        mlflow.set_tracking_uri(monitored.tracking_uri)
        first = monitor(write_labels(monitored, "labels_early", [0]))
        late = write_labels(monitored, "labels_late", [0, 1, 2])
        late_labels, again = monitor(late), monitor(late)
    tables = {name: spark.read.parquet(f"{output}/{name}").toPandas() for name in ("drift_metrics", "profile_metrics")}
    state = spark.read.parquet(f"{output}/monitor_state").drop("profile").toPandas()
    return Runs(first, late_labels, again, tables["drift_metrics"], tables["profile_metrics"], state)


def _verdicts(runs: Runs, day: int) -> pd.DataFrame:
    rows = runs.drift
    return rows[(rows.window_key == KEYS[day]) & (rows.statistic == "drift") & (rows.comparison == "baseline")]


def test_windows_are_computed_once_and_again_only_when_their_labels_change(runs):
    assert runs.first.computed_windows == KEYS
    assert runs.late_labels.computed_windows == [KEYS[1], KEYS[2]]
    assert runs.again.computed_windows == [] and runs.again.unchanged_windows == KEYS
    by_window = runs.state[runs.state.slice_value.isna()].set_index("window_key").run_id
    assert [by_window[k] for k in KEYS] == [runs.first.run_id] + [runs.late_labels.run_id] * 2 + [runs.first.run_id]
    # A recomputed window's rows replace its earlier ones: one computation per window in each table.
    assert (runs.drift.groupby("window_key").run_id.nunique() == 1).all()
    assert len(runs.state) == SHIFTED_DAY * (SEEDS + 1) + (SEEDS + 1) + (SEEDS + 1)  # day 3's 50 rows hold every seed


def test_a_half_std_shift_of_one_feature_is_flagged_on_that_feature_alone(runs):
    shifted = _verdicts(runs, SHIFTED_DAY)
    features = shifted[shifted.role == "feature"]
    flagged = features[features.drifted]
    assert set(flagged.column_name) == {"x0"}
    assert flagged.slice_value.isna().sum() == 1 and flagged.slice_value.nunique() == SEEDS  # whole table + 20 seeds


def test_without_a_shift_at_most_one_of_twenty_seeded_runs_raises_an_alarm(runs):
    for day in (0, 1):
        seeded = _verdicts(runs, day)
        seeded = seeded[seeded.slice_value.notna() & (seeded.role == "feature")]
        assert seeded.slice_value.nunique() == SEEDS
        assert seeded[seeded.drifted].slice_value.nunique() <= 1, day


def test_a_window_with_too_few_rows_is_marked_insufficient_not_computed(runs):
    small = runs.drift[runs.drift.window_key == KEYS[SMALL_DAY]]
    judged = small[small.status.str.startswith("insufficient")]
    assert not small.drifted.any() and judged.value.isna().all()
    assert set(judged.column_name) >= {"x0", "color", "prediction"}
    status = runs.state[(runs.state.window_key == KEYS[SMALL_DAY]) & runs.state.slice_value.isna()].verdict
    assert status.tolist() == ["insufficient: 50 rows"]


def test_columns_missing_from_the_table_or_the_baseline_are_reported(runs):
    assert runs.first.column_problems == {"x4": "missing from the table", "extra": "not in the baseline"}
    day0 = runs.drift[(runs.drift.window_key == KEYS[0]) & runs.drift.slice_value.isna()]
    reported = day0[day0.column_name.isin(["x4", "extra"])].set_index("column_name").status
    assert reported.to_dict() == {"x4": "missing from the table", "extra": "not in the baseline"}


def test_drift_statistics_match_scipy_on_the_same_rows(monitored, runs):
    """PSI, JS, chi-square, total variation and L-infinity from exact counts: to float precision. KS statistic from
    the quantile grids: within 0.01 (the grid step) + 0.005; its p-value is kstwo at the effective size for a
    statistic no larger than the exact one (plus the sketch's rank error);
    Wasserstein from the quantile grids: within 0.05 baseline standard deviations."""
    baseline = load_reference_profile(monitored.run_id)["columns"]
    scored = monitored.scored
    for day, seed in ((SHIFTED_DAY, None), (1, 3)):
        rows = scored[(scored.scored_at - DAY).dt.days == day]
        rows = rows if seed is None else rows[rows.seed == seed]
        found = runs.drift[(runs.drift.window_key == KEYS[day]) & (runs.drift.comparison == "baseline")]
        found = found[found.slice_value.isna() if seed is None else found.slice_value == str(seed)]
        value = found.set_index(["column_name", "statistic"]).value
        for column in NUMERIC:
            reference, window = monitored.train[column].to_numpy(), rows[column].to_numpy()
            edges = baseline[column]["bin_edges"]
            e, a = (
                np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
                for x in (reference, window)
            )
            p, q = np.maximum(e / e.sum(), 1e-4), np.maximum(a / a.sum(), 1e-4)
            assert value[column, "psi"] == pytest.approx(np.sum((q - p) * np.log(q / p)), abs=1e-9)
            assert value[column, "js_distance"] == pytest.approx(jensenshannon(e, a, base=2), abs=1e-9)
            exact = stats.ks_2samp(reference, window)
            assert abs(value[column, "ks_statistic"] - exact.statistic) <= 0.015, column
            n_eff = round(len(reference) * len(window) / (len(reference) + len(window)))
            if value[column, "ks_pvalue"] > 1e-12:  # the statistic it was computed from: at most the exact one
                assert stats.kstwo.isf(value[column, "ks_pvalue"], n_eff) <= exact.statistic + 0.001, column
            distance = stats.wasserstein_distance(reference, window) / reference.std(ddof=1)
            assert abs(value[column, "wasserstein"] - distance) <= 0.05, column
        categories = sorted(set(monitored.train.color) | set(rows.color))
        e = monitored.train.color.value_counts().reindex(categories, fill_value=0).to_numpy()
        a = rows.color.value_counts().reindex(categories, fill_value=0).to_numpy()
        chi2 = stats.chi2_contingency(np.vstack([e, a]), correction=False)
        assert value["color", "chi2_pvalue"] == pytest.approx(chi2.pvalue, rel=1e-9)
        assert value["color", "js_distance"] == pytest.approx(jensenshannon(e, a, base=2), abs=1e-9)
        assert value["color", "total_variation"] == pytest.approx(np.abs(e / e.sum() - a / a.sum()).sum() / 2)
        assert value["color", "linf"] == pytest.approx(np.abs(e / e.sum() - a / a.sum()).max())


def test_label_metrics_per_window_are_the_training_runs_metrics_on_the_labelled_rows(monitored, runs):
    """Exact sums except ROC AUC, which ranks probabilities rounded to 1e-4 (within 1e-3 here)."""
    scored = monitored.scored
    day1 = scored[(scored.scored_at - DAY).dt.days == 1]
    expected = {
        "accuracy": skm.accuracy_score(day1.y, day1.prediction),
        "f1": skm.f1_score(day1.y, day1.prediction),
        "log_loss": skm.log_loss(day1.y, np.column_stack([1 - day1.probability, day1.probability])),
        "roc_auc": skm.roc_auc_score(day1.y, day1.probability),
    }
    rows = runs.profile[(runs.profile.window_key == KEYS[1]) & runs.profile.slice_value.isna()]
    rows = rows[rows.column_name == ":table"].set_index("statistic").value
    for name, value in expected.items():
        assert rows[name] == pytest.approx(value, abs=1e-3 if name == "roc_auc" else 1e-9), name
    assert rows["labelled_share"] == 1.0
    judged = runs.drift[(runs.drift.window_key == KEYS[1]) & runs.drift.slice_value.isna()]
    accuracy = judged[judged.statistic == "accuracy"].iloc[0]
    assert accuracy.threshold == pytest.approx(monitored.held_out_metrics["accuracy"] - 0.05)
    assert set(runs.first.versions) == {"1"}


def test_the_version_is_tagged_with_its_last_judged_window_and_history_shows_it(
    monitored, runs, monitoring_settings, capsys
):
    from registry.history import main as history

    tags = mlflow.MlflowClient().get_model_version(MODEL, "1").tags
    assert tags[MONITORING_WINDOW_TAG] == "2024-01-03"  # day 3 has too few rows to be judged
    assert tags[MONITORING_STATUS_TAG].startswith("drift: ") and "x0" in tags[MONITORING_STATUS_TAG]
    assert not runs.again.versions["1"].retraining.due  # one violated window of three judged; the policy is 2 of 5
    history(["--model-name", MODEL])
    assert f"v1 monitoring: {tags[MONITORING_STATUS_TAG]} (window 2024-01-03)" in capsys.readouterr().out


def test_the_run_holds_window_metrics_plots_and_a_self_contained_report(runs, monitoring_settings, tmp_path):
    client = mlflow.MlflowClient()
    recorded = client.get_run(runs.first.run_id)
    assert recorded.data.tags["lifecycle.monitoring.versions"] == "1"
    assert f"#/models/{MODEL}/versions/1" in recorded.data.tags["mlflow.note.content"]
    rows = client.get_metric_history(runs.first.run_id, "v1.rows")
    assert sorted((m.step, m.value) for m in rows) == [
        (k // 86_400, 20_000 if d < SMALL_DAY else 50) for d, k in enumerate(KEYS)
    ]
    files = {f.path for f in client.list_artifacts(runs.first.run_id, "monitoring")}
    assert {"monitoring/report.html", "monitoring/drift_v1.png", "monitoring/metrics_v1.png"} <= files
    report = client.download_artifacts(runs.first.run_id, "monitoring/report.html", str(tmp_path))
    text = Path(report).read_text()
    assert text.count("data:image/png;base64,") == 2 and "http" not in text.replace("http-equiv", "")
