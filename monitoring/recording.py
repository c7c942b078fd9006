"""What a `monitor` run records in MLflow: its parameters, summary metrics per window (step = the window's index:
its start over the window length, or the batch id), the PNGs and HTML report, the baselines it compared with, tags
linking it to the model's versions, and on each version the status of its last judged window."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from pyspark.sql import SparkSession

from common.params import logged_params
from common.profile import MONITORING_RUN_TAG, MONITORING_STATUS_TAG, MONITORING_WINDOW_TAG
from common.tracking import log_new_params
from monitoring.computation import Computed, Setup
from monitoring.judgement import INSUFFICIENT, RetrainingDecision, retraining_decision
from monitoring.report import drift_png, history, html_report, metrics_png
from monitoring.windows import WindowSpec

ARTIFACTS = "monitoring"


@dataclass(frozen=True)
class VersionStatus:
    status: str  # "ok", "drift: <columns>", "degraded: <metrics>" (both joined by '; '), or not judged
    window: str | None  # the last window judged
    retraining: RetrainingDecision

    def describe(self) -> str:
        where = f" (window {self.window})" if self.window else ""
        return f"{self.status}{where}; {self.retraining.describe()}"


def version_statuses(
    state: list[dict], computed: Computed, spec: WindowSpec, violations: int, windows: int
) -> dict[str, VersionStatus]:
    """Each version's verdicts on the whole table, oldest window first: earlier runs' (state) and this run's."""
    verdicts: dict[str, dict[int, str]] = {}
    for row in state:
        if row["slice_value"] is None:
            verdicts.setdefault(row["model_version"], {})[row["window_key"]] = row["verdict"]
    for key, verdict in computed.verdicts.items():
        if key.slice_value is None:
            verdicts.setdefault(key.version, {})[key.window] = verdict.text()
    statuses = {}
    for version in sorted(verdicts, key=lambda v: (len(v), v)):
        ordered = [verdicts[version][w] for w in sorted(verdicts[version])]
        judged = [w for w in sorted(verdicts[version]) if not verdicts[version][w].startswith(INSUFFICIENT)]
        decision = retraining_decision(ordered, violations, windows)
        if judged:
            statuses[version] = VersionStatus(verdicts[version][judged[-1]], spec.label(judged[-1]), decision)
        else:
            statuses[version] = VersionStatus("not judged: every window has too few rows", None, decision)
    return statuses


def record_run(
    spark: SparkSession,
    client: mlflow.MlflowClient,
    params,
    setup: Setup,
    computed: Computed,
    statuses: dict[str, VersionStatus],
) -> None:
    log_new_params(logged_params(params))
    versions = ", ".join(statuses)
    links = ", ".join(f"[v{v}](#/models/{setup.model_name}/versions/{v})" for v in statuses)
    mlflow.set_tags(
        {
            "lifecycle.monitoring.model": setup.model_name,
            "lifecycle.monitoring.versions": versions,
            "mlflow.note.content": f"Monitoring of {setup.model_name} {links} over {params.input}, windows of "
            f"{setup.spec.text}; tables in {params.output}.",
        }
    )
    _log_window_metrics(setup, computed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        drift = history(spark, params.output, setup.model_name)
        pngs = []
        for version in statuses:
            slug = re.sub(r"[^0-9A-Za-z]+", "_", version)
            pngs += [
                drift_png(drift, version, setup.thresholds["js_distance"], folder / f"drift_v{slug}.png")
                if not drift.empty
                else None,
                metrics_png(drift, version, folder / f"metrics_v{slug}.png") if not drift.empty else None,
            ]
        pngs = [p for p in pngs if p is not None]
        problems = {name: why for name, why in setup.columns_seen.items() if why}
        (folder / "report.html").write_text(html_report(setup.model_name, statuses, problems, drift, pngs))
        mlflow.log_artifacts(tmp, ARTIFACTS)
    for version, baseline in setup.baselines.items():
        mlflow.log_dict(baseline.profile, f"{ARTIFACTS}/baselines/v{version}.json")
    for version, status in statuses.items():
        tags = {
            MONITORING_STATUS_TAG: status.status,
            MONITORING_WINDOW_TAG: status.window or "",
            MONITORING_RUN_TAG: setup.run_id,
        }
        for key, value in tags.items():
            client.set_model_version_tag(setup.model_name, version, key, value)


def _log_window_metrics(setup: Setup, computed: Computed) -> None:
    for key, verdict in sorted(computed.verdicts.items(), key=lambda item: (item[0].window, item[0].version)):
        if key.slice_value is not None:
            continue
        profile = computed.profiles[key]
        step = key.window // setup.spec.seconds if setup.spec.seconds else key.window
        prefix = f"v{_metric_name(key.version)}"
        metrics = {f"{prefix}.rows": profile.rows, f"{prefix}.drifted_columns": len(verdict.drifted)}
        if profile.rows:
            metrics[f"{prefix}.labelled_share"] = profile.labelled / profile.rows
        if profile.labelled >= setup.min_rows:
            metrics |= {f"{prefix}.{name}": value for name, value in profile.metrics.items()}
        mlflow.log_metrics(metrics, step=int(step))


def _metric_name(text: str) -> str:
    """MLflow accepts letters, digits, '_', '-', '.', ' ' and '/' in a metric name."""
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", text)
