"""Entry point `main`: the whole lifecycle on a small real data set, as the quickstart runs it.

train (tracked run, registered version) -> Staging -> Production -> batch scoring from models:/<name>/production.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
from pyspark.sql import SparkSession

from common.cli import run_cli
from common.datasets import DEFAULT_LABEL, load_table
from common.job import EAGER_SPARK, EntryPoint
from common.params import param
from common.settings import Settings
from common.tracking import tracked_run
from lifecycle.ui.local_server import ui_command
from registry import promote
from registry.promote import PromoteParams
from scoring.batch import score_batch
from scoring.batch.score_batch import ScoreBatchParams
from training.sklearn import train_sklearn
from training.sklearn.estimators import DEFAULT_ESTIMATOR, ESTIMATORS
from training.sklearn.train_sklearn import TrainSklearnParams

ID_COLUMN = "row_id"


@dataclass(frozen=True)
class MainParams:
    data: str = param("breast_cancer", help="Parquet/CSV path or a bundled data set name")
    label: str = param(DEFAULT_LABEL)
    estimator: str = param(DEFAULT_ESTIMATOR, choices=sorted(ESTIMATORS))
    model_name: str = param("breast_cancer_classifier")
    output: str = param("output/quickstart/predictions.parquet")
    seed: int = param(42)


def write_scoring_input(data: str, path: Path) -> Path:
    """The data set as a scoring job would see it: an id column, the features, and the true label kept as a
    pass-through column so predictions can be compared with it."""
    frame = load_table(data).frame
    frame.insert(0, ID_COLUMN, range(len(frame)))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


@dataclass(frozen=True)
class LifecycleResult:
    experiment: str
    run_id: str
    training_run_id: str
    metrics: dict[str, float]
    model_name: str
    model_version: str
    stage: str
    scoring_run_id: str
    input: str
    output: str
    rows_in: int
    rows_out: int
    ui_command: str

    def summary(self) -> str:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(self.metrics.items()))
        name = self.model_name
        return "\n".join(
            [
                "",
                "Lifecycle complete",
                f"  experiment     {self.experiment}",
                f"  run            {self.run_id}",
                f"                 training run {self.training_run_id}, scoring run {self.scoring_run_id}",
                f"  held-out       {metrics}",
                f"  model          {name} version {self.model_version}, stage {self.stage}"
                f" (models:/{name}/production = models:/{name}@production)",
                f"  scored         {self.input} -> {self.output}",
                f"  rows           {self.rows_in} in, {self.rows_out} out",
                f"  open the UI    {self.ui_command}",
            ]
        )


def run(spark: SparkSession, settings: Settings, params: MainParams) -> LifecycleResult:
    """Train, promote to Staging then (through the gate) to Production, and score, as child runs of one run."""
    args = params
    with tracked_run(settings, run_name="lifecycle") as parent:
        trained = train_sklearn.run(
            settings,
            TrainSklearnParams(
                data=args.data, label=args.label, estimator=args.estimator, seed=args.seed, model_name=args.model_name
            ),
        )
        reason = f"quickstart: trained in run {trained.run_id}"
        staging = PromoteParams(
            model_name=args.model_name, stage="Staging", version=trained.model_version, reason=reason
        )
        promote.run(spark, settings, staging)
        # Through the champion/challenger gate, on the test split the training run logged.
        production = replace(staging, stage="Production")
        promoted = promote.run(spark, settings, production)
        output = Path(args.output)
        scoring_input = write_scoring_input(args.data, output.parent / "input.parquet")
        scored = score_batch.run(
            spark,
            settings,
            ScoreBatchParams(
                model_uri=f"models:/{args.model_name}/production",
                input=str(scoring_input),
                output=str(output),
                overwrite=True,
            ),
        )
        return LifecycleResult(
            experiment=mlflow.get_experiment(parent.info.experiment_id).name,
            run_id=parent.info.run_id,
            training_run_id=trained.run_id,
            metrics=trained.metrics,
            model_name=args.model_name,
            model_version=promoted.version,
            stage=promoted.stage,
            scoring_run_id=scored.run_id,
            input=str(scoring_input),
            output=scored.output,
            rows_in=scored.rows_in,
            rows_out=scored.rows_out,
            ui_command=ui_command(settings.tracking_uri),
        )


ENTRY_POINT = EntryPoint(MainParams, run, spark=EAGER_SPARK, app_name="lifecycle-main")
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
