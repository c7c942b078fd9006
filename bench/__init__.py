"""Benchmarks: scripts that print tables of figures measured side by side in one run. Not tests."""

import os

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
