"""Each model version's baseline: the reference profile its training run logged, or, for a version trained before
training jobs logged one, a profile computed once from the held-out split its run logged (`data/test.parquet`),
scored through the production scoring path. That profile says it is the smaller sample, and is logged into the
training run so the next `monitor` finds it. A version with neither is refused.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from pyspark.sql import SparkSession

from common.errors import UserInputError
from common.model_uri import resolve_model_uri
from common.profile import FROM_HELD_OUT_SPLIT, PROFILE_ARTIFACT, load_reference_profile, reference_profile
from common.registry_lookup import describe_versions, list_versions, require_model
from scoring.batch.dataframe import score_resolved
from training.evaluation import GREATER_IS_BETTER
from training.held_out import TEST_SPLIT, logged_test_split
from training.registration import CLASSES_TAG

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Baseline:
    version: str
    run_id: str
    profile: dict
    metrics: dict[str, float]  # the held-out metrics the training run logged, by the names it logged them under

    @property
    def label(self) -> str | None:
        return self.profile.get("label")

    @property
    def task(self) -> str:
        return self.profile["task"]


def version_baselines(
    spark: SparkSession, client: mlflow.MlflowClient, model_name: str, versions: list[str]
) -> dict[str, Baseline]:
    """The baseline of every version the inference table names; an unknown version is refused with those that
    exist."""
    registered = {str(v.version): v for v in list_versions(client, model_name)}
    unknown = sorted(set(versions) - set(registered), key=_version_order)
    if unknown:
        model = require_model(client, model_name)
        raise UserInputError(
            f"the inference table names version(s) {', '.join(unknown)} of model {model_name!r}, which the registry "
            f"does not have; versions: {describe_versions(list(registered.values()), model.aliases)}"
        )
    return {v: _baseline(spark, client, model_name, registered[v]) for v in sorted(versions, key=_version_order)}


def _baseline(spark: SparkSession, client: mlflow.MlflowClient, model_name: str, version) -> Baseline:
    run = client.get_run(version.run_id)
    metrics = {k: v for k, v in run.data.metrics.items() if k in GREATER_IS_BETTER}
    profile = load_reference_profile(version.run_id, client)
    if profile is None:
        profile = _profile_from_split(spark, client, model_name, version, run)
    return Baseline(str(version.version), version.run_id, profile, metrics)


def _profile_from_split(spark, client, model_name: str, version, run) -> dict:
    label = run.data.params.get("label")
    task = run.data.params.get("resolved_task") or version.tags.get("task")
    try:
        split = logged_test_split(version.run_id)
    except (MlflowException, OSError) as exc:
        raise UserInputError(
            f"{model_name} version {version.version} has no reference profile ({PROFILE_ARTIFACT}) and its run "
            f"{version.run_id} logged no held-out split ({TEST_SPLIT}): there is no baseline to compare it with"
        ) from exc
    if not label or label not in split.column_names or not task:
        raise UserInputError(
            f"{model_name} version {version.version} has no reference profile and its run {version.run_id} does not "
            "say which column is the label and what task it learned: there is no baseline to compare it with"
        )
    _logger.info(
        "%s version %s: baseline computed from its held-out split (%d rows)",
        model_name,
        version.version,
        split.num_rows,
    )
    resolved = resolve_model_uri(client, f"models:/{model_name}/{version.version}")
    scored = score_resolved(spark, spark.createDataFrame(split), resolved).frame.toPandas()
    frame = split.to_pandas()
    classes = json.loads(version.tags[CLASSES_TAG]) if CLASSES_TAG in version.tags else None
    profile = reference_profile(
        frame.drop(columns=[label]),
        frame[label],
        scored["prediction"],
        scored["probability"].tolist() if "probability" in scored.columns else None,
        task=task,
        classes=classes,
        source=FROM_HELD_OUT_SPLIT,
    )
    try:  # once computed, kept with the training run, where a trainer would have logged it
        client.log_dict(version.run_id, profile, PROFILE_ARTIFACT)
    except MlflowException as exc:
        _logger.warning("could not keep the computed baseline with run %s: %s", version.run_id, exc)
    return profile


def _version_order(version: str):
    return (0, int(version)) if version.isdigit() else (1, version)
