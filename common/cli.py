"""CLI plumbing shared by the entry points: parameter types and the user-error exit."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

import mlflow
from mlflow.exceptions import MlflowException

from common.errors import UserInputError
from common.tracking_errors import describe_tracking_failure

EXIT_USER_ERROR = 2


def optional_str(value: str) -> str | None:
    """MLproject parameters cannot be absent; an empty string (or 'none') means 'not given'."""
    return None if value.strip().lower() in ("", "none", "null") else value


def comma_list(value: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: how list parameters travel through MLproject."""
    return [item.strip() for item in value.split(",") if item.strip()]


def whole_number(value: str) -> int:
    """MLproject has no integer type: a `float` parameter may arrive as '42' or '42.0'."""
    number = float(value)
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(number)


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def configure_logging() -> None:
    """A job's log lines: INFO and up with time and logger, the chattiest libraries at WARNING, no progress bars.
    Also called by processes a job starts itself (the scoring server's workers)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # job logs, not a terminal UI
    # force: importing pyspark may already have put a handler on the root logger, which would make this a no-op.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("py4j", "alembic", "mlflow.store.db.utils", "hyperopt.tpe"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_cli(job: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Run an entry point's main: a user error prints one clear line and exits 2 instead of a traceback; so does a
    tracking server that refuses the user's credentials or cannot be reached."""
    configure_logging()
    try:
        job(argv)
    except UserInputError as exc:
        _exit_with(str(exc))
    except MlflowException as exc:
        message = describe_tracking_failure(exc, mlflow.get_tracking_uri())
        if message is None:
            raise
        _exit_with(message)


def _exit_with(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)
