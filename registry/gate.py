"""The champion/challenger gate in front of Production.

The candidate and the current Production version are scored on the same held-out data (given, or the test split
the candidate's training run logged), through the same scoring path as production jobs. The candidate must meet
absolute thresholds and must not be worse than the champion beyond a tolerance; `mlflow.validate_evaluation_results`
applies both.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import EvaluationResult, MetricThreshold
from mlflow.models.evaluation.validation import ModelValidationFailedException
from pyspark.sql import SparkSession

from common.columns import col
from common.datasets import load_table
from common.errors import UserInputError
from common.model_uri import ResolvedModel
from scoring.batch.dataframe import score_resolved
from training.evaluation import GREATER_IS_BETTER, classification_metrics, regression_metrics
from training.held_out import TEST_SPLIT, logged_test_split  # noqa: F401 - TEST_SPLIT: read from here by monitoring
from training.registration import CLASSES_TAG
from training.tasks import CLASSIFICATION, REGRESSION

# "Not worse than the champion beyond a tolerance" in MetricThreshold terms: MLflow only asks for an improvement
# of at least `min_absolute_change` (> 0), so the champion's figure is moved by the tolerance first and the required
# improvement is this tiny amount.
_EPSILON = 1e-9
DEFAULT_THRESHOLDS = {
    CLASSIFICATION: {"accuracy": {"min": 0.5, "tolerance": 0.01}, "roc_auc": {"min": 0.5, "tolerance": 0.01}},
    REGRESSION: {"r2": {"min": 0.0, "tolerance": 0.01}, "rmse": {"relative_tolerance": 0.05}},
}
_KEYS = {"min", "max", "tolerance", "relative_tolerance"}


@dataclass
class GateResult:
    passed: bool
    candidate: dict[str, float]
    champion: dict[str, float] | None
    thresholds: dict[str, dict[str, float]]
    failures: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = [f"{'metric':<10} {'candidate':>10} {'champion':>10}  rule"]
        for metric in sorted(set(self.candidate) | set(self.champion or {})):
            champion = (self.champion or {}).get(metric)
            rule = ", ".join(f"{k} {v}" for k, v in self.thresholds.get(metric, {}).items()) or "-"
            if rule != "-" and not math.isfinite(self.candidate.get(metric, float("nan"))):
                rule += " (not judged: this data cannot give it)"
            rows.append(
                f"{metric:<10} {self.candidate.get(metric, float('nan')):>10.4f} "
                f"{champion if champion is not None else float('nan'):>10.4f}  {rule}"
            )
        return "\n".join(rows)


def parse_thresholds(text: str | None, task: str) -> dict[str, dict[str, float]]:
    """JSON such as {"accuracy": {"min": 0.9, "tolerance": 0.005}}; the task's defaults when not given."""
    if not text:
        return DEFAULT_THRESHOLDS[task]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"thresholds is not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise UserInputError('thresholds must map metrics to rules, e.g. {"accuracy": {"min": 0.9, "tolerance": 0.01}}')
    for metric, rule in value.items():
        if metric not in GREATER_IS_BETTER:
            raise UserInputError(f"unknown metric {metric!r} in thresholds; known: {', '.join(GREATER_IS_BETTER)}")
        unknown = set(rule) - _KEYS
        if unknown:
            raise UserInputError(
                f"unknown rule(s) {', '.join(sorted(unknown))} for {metric}; use {', '.join(sorted(_KEYS))}"
            )
    return value


def evaluation_frame(client, candidate: ModelVersion, data: str | None) -> tuple[pa.Table, str, str]:
    """(rows, label, task): `data` with the candidate's label, or the test split its training run logged.

    The rows stay an Arrow table with the types they were written with: through pandas an integer column with
    gaps would turn into floats and a column of nulls would lose its type, and the signature check would refuse
    the model's own test split."""
    run = client.get_run(candidate.run_id)
    label = run.data.params.get("label")
    task = run.data.params.get("resolved_task") or candidate.tags.get("task")
    if not label or task not in (CLASSIFICATION, REGRESSION):
        raise UserInputError(
            f"version {candidate.version} was not trained by this project's jobs (no label/task on its run "
            f"{candidate.run_id}); promote it with force=true and a reason"
        )
    if data:
        table = pa.Table.from_pandas(load_table(data).frame, preserve_index=False)
    else:
        try:
            table = logged_test_split(candidate.run_id)
        except Exception as exc:
            raise UserInputError(
                f"version {candidate.version}'s run logged no test split; pass data=<evaluation data>"
            ) from exc
    if label not in table.column_names:
        raise UserInputError(f"evaluation data has no label column {label!r}; columns: {', '.join(table.column_names)}")
    table = table.filter(pc.is_valid(table[label]))
    if table.num_rows == 0:
        raise UserInputError("evaluation data has no labelled rows")
    return table, label, task


def score_metrics(spark: SparkSession, model: ResolvedModel, rows: pa.Table, label: str, task: str) -> dict[str, float]:
    """The model's metrics on `rows`, scored the way production jobs score (columns bound by signature name)."""
    scored = score_resolved(spark, spark.createDataFrame(rows), model).frame
    out = scored.select(
        col(label), "prediction", *(["probability"] if "probability" in scored.columns else [])
    ).toPandas()
    if task == REGRESSION:
        return regression_metrics(out[label], out["prediction"])
    # The model's own classes when it recorded them: a small test split may lack one, and the probabilities still
    # hold a column for it.
    classes = _model_classes(model) or sorted(set(out[label]) | set(out["prediction"]))
    if "probability" not in out.columns:  # a model without probabilities: only the label-based metrics apply
        return {"accuracy": float((out[label] == out["prediction"]).mean())}
    first = out["probability"].iloc[0]
    if np.ndim(first) == 0:  # binary: P(classes[1])
        p = out["probability"].to_numpy(dtype=float)
        proba = np.column_stack([1 - p, p])
        classes = classes if len(classes) == 2 else sorted(set(out[label]))
    else:
        proba = np.vstack(out["probability"].to_numpy())
    return classification_metrics(out[label], out["prediction"], proba, classes)


def _model_classes(model: ResolvedModel) -> list | None:
    if not model.model_version:
        return None
    tag = mlflow.MlflowClient().get_model_version(model.model_name, model.model_version).tags.get(CLASSES_TAG)
    return json.loads(tag) if tag else None


def judge(candidate: dict[str, float], champion: dict[str, float] | None, thresholds: dict) -> GateResult:
    """A metric the data cannot give (ROC AUC of a split holding one class: NaN) is not judged, on either side."""
    shown_candidate, shown_champion = candidate, champion
    candidate = {k: v for k, v in candidate.items() if math.isfinite(v)}
    champion = {k: v for k, v in champion.items() if math.isfinite(v)} if champion is not None else None
    validation = {}
    baseline = dict(champion or {})
    for metric, rule in thresholds.items():
        if metric not in candidate:
            continue
        greater = GREATER_IS_BETTER[metric]
        bound = rule.get("min") if greater else rule.get("max")
        kwargs = {"threshold": bound} if bound is not None else {}
        if champion is not None and metric in champion and ("tolerance" in rule or "relative_tolerance" in rule):
            allowed = rule.get("tolerance", 0.0) + abs(champion[metric]) * rule.get("relative_tolerance", 0.0)
            baseline[metric] = champion[metric] - allowed if greater else champion[metric] + allowed
            kwargs["min_absolute_change"] = _EPSILON
        if kwargs:
            validation[metric] = MetricThreshold(greater_is_better=greater, **kwargs)
    result = GateResult(True, shown_candidate, shown_champion, thresholds)
    try:
        mlflow.validate_evaluation_results(
            validation,
            EvaluationResult(metrics=candidate, artifacts={}),
            EvaluationResult(metrics=baseline, artifacts={}) if champion is not None else None,
        )
    except ModelValidationFailedException:
        result.passed = False
        result.failures = [
            line
            for metric, rule in thresholds.items()
            if metric in candidate
            for line in _explain(metric, rule, candidate, champion)
        ]
    return result


def _explain(metric: str, rule: dict, candidate: dict[str, float], champion: dict[str, float] | None) -> list[str]:
    """The failed rules in the user's terms (MLflow's message shows the tolerance-shifted champion figure)."""
    greater, value = GREATER_IS_BETTER[metric], candidate[metric]
    lines = []
    bound = rule.get("min") if greater else rule.get("max")
    if bound is not None and (value < bound if greater else value > bound):
        lines.append(f"{metric} {value:.4f} is {'below the minimum' if greater else 'above the maximum'} {bound}")
    if champion is not None and metric in champion and ("tolerance" in rule or "relative_tolerance" in rule):
        allowed = rule.get("tolerance", 0.0) + abs(champion[metric]) * rule.get("relative_tolerance", 0.0)
        worse_by = (champion[metric] - value) if greater else (value - champion[metric])
        if worse_by >= allowed:
            lines.append(
                f"{metric} {value:.4f} is worse than the champion's {champion[metric]:.4f} by {worse_by:.4f}, "
                f"more than the tolerance {allowed:.4f}"
            )
    return lines


def check_compatible_signatures(candidate_info, champion_info, name: str, candidate: str, champion: str) -> None:
    """Scoring jobs bind the champion's input columns; a candidate that needs others would break them."""

    def columns(info):
        return {c.name: c.type.name for c in info.signature.inputs.inputs} if info.signature else {}

    new, old = columns(candidate_info), columns(champion_info)
    if new == old:
        return
    missing = sorted(set(new) - set(old))
    dropped = sorted(set(old) - set(new))
    retyped = sorted(c for c in set(new) & set(old) if new[c] != old[c])
    details = "; ".join(
        part
        for part in (
            f"needs column(s) the champion does not: {', '.join(missing)}" if missing else "",
            f"drops column(s): {', '.join(dropped)}" if dropped else "",
            "changes type of: " + ", ".join(f"{c} {old[c]} -> {new[c]}" for c in retyped) if retyped else "",
        )
        if part
    )
    raise UserInputError(
        f"{name} version {candidate}'s inputs differ from Production version {champion}'s ({details}); "
        "scoring jobs built for the champion would break"
    )
