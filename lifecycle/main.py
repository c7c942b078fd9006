"""Entry point `main`: the whole lifecycle on a small real data set, as the quickstart runs it.

train (tracked run, registered version) -> Staging -> Production -> batch scoring from models:/<name>/production.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import mlflow

from lifecycle.cli import run_cli, whole_number
from lifecycle.datasets import DEFAULT_LABEL, load_table
from lifecycle.settings import Settings
from lifecycle.spark import build_spark
from lifecycle.tracking import tracked_run
from registry import promote
from scoring import score_batch
from training import train_sklearn
from training.train_sklearn import TrainSklearnParams

_logger = logging.getLogger(__name__)
ID_COLUMN = "row_id"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breast_cancer")
    parser.add_argument("--label", default=DEFAULT_LABEL)
    parser.add_argument("--estimator", default="random_forest")
    parser.add_argument("--model-name", default="breast_cancer_classifier")
    parser.add_argument("--output", default="output/quickstart/predictions.parquet")
    parser.add_argument("--seed", type=whole_number, default=42)
    return parser.parse_args(argv)


def write_scoring_input(data: str, label: str, path: Path) -> Path:
    """The data set as a scoring job would see it: an id column, the features, and the true label kept as a
    pass-through column so predictions can be compared with it."""
    frame = load_table(data).frame
    frame.insert(0, ID_COLUMN, range(len(frame)))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    settings = Settings.from_env()
    spark = build_spark(settings, app_name="lifecycle-main")
    with tracked_run(settings, run_name="lifecycle") as parent:
        trained = train_sklearn.run(
            settings,
            TrainSklearnParams(
                data=args.data, label=args.label, estimator=args.estimator, seed=args.seed, model_name=args.model_name
            ),
        )
        reason = f"quickstart: trained in run {trained.run_id}"
        promote.run(settings, args.model_name, "Staging", trained.model_version, reason)
        # Through the champion/challenger gate, on the test split the training run logged.
        promoted = promote.run(settings, args.model_name, "Production", trained.model_version, reason, spark=spark)
        output = Path(args.output)
        scoring_input = write_scoring_input(args.data, args.label, output.parent / "input.parquet")
        scored = score_batch.run(
            spark,
            settings,
            model_uri=f"models:/{args.model_name}/production",
            input=str(scoring_input),
            output=str(output),
            overwrite=True,
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


def ui_command(tracking_uri: str) -> str:
    """The command that opens the MLflow UI on the same store (a relative SQLite path made absolute)."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and not tracking_uri[len(prefix) :].startswith("/"):
        tracking_uri = prefix + str(Path(tracking_uri[len(prefix) :]).resolve())
    return f"mlflow ui --backend-store-uri {tracking_uri} --port 5000"


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
