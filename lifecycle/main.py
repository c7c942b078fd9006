"""Entry point `main`: the whole lifecycle on a small real data set, as the quickstart runs it.

train (tracked run, registered version) -> Staging -> Production -> batch scoring from models:/<name>/production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow

from common.cli import run_cli
from common.datasets import DEFAULT_LABEL, load_table
from common.params import param, parse_params
from common.spark import build_spark
from common.tracking import job_settings, tracked_run
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


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_params(MainParams, argv)
    settings = job_settings()
    spark = build_spark(settings, app_name="lifecycle-main")
    with tracked_run(settings, run_name="lifecycle") as parent:
        trained = train_sklearn.run(
            settings,
            TrainSklearnParams(
                data=args.data, label=args.label, estimator=args.estimator, seed=args.seed, model_name=args.model_name
            ),
        )
        reason = f"quickstart: trained in run {trained.run_id}"
        promote.run(
            settings,
            PromoteParams(model_name=args.model_name, stage="Staging", version=trained.model_version, reason=reason),
        )
        # Through the champion/challenger gate, on the test split the training run logged.
        promoted = promote.run(
            settings,
            PromoteParams(model_name=args.model_name, stage="Production", version=trained.model_version, reason=reason),
            spark=spark,
        )
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
        summary = {
            "experiment": mlflow.get_experiment(parent.info.experiment_id).name,
            "run_id": parent.info.run_id,
            "training_run_id": trained.run_id,
            "metrics": trained.metrics,
            "model_name": args.model_name,
            "model_version": promoted.version,
            "stage": promoted.stage,
            "scoring_run_id": scored.run_id,
            "input": str(scoring_input),
            "output": scored.output,
            "rows_in": scored.rows_in,
            "rows_out": scored.rows_out,
            "ui_command": ui_command(settings.tracking_uri),
        }
    _print_summary(summary)
    return summary


def _print_summary(s: dict) -> None:
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(s["metrics"].items()))
    print(
        "\n".join(
            [
                "",
                "Lifecycle complete",
                f"  experiment     {s['experiment']}",
                f"  run            {s['run_id']}",
                f"                 training run {s['training_run_id']}, scoring run {s['scoring_run_id']}",
                f"  held-out       {metrics}",
                f"  model          {s['model_name']} version {s['model_version']}, stage {s['stage']}"
                f" (models:/{s['model_name']}/production = models:/{s['model_name']}@production)",
                f"  scored         {s['input']} -> {s['output']}",
                f"  rows           {s['rows_in']} in, {s['rows_out']} out",
                f"  open the UI    {s['ui_command']}",
            ]
        )
    )


if __name__ == "__main__":
    run_cli(main)
