"""Hyperopt's TPE search with every trial logged as a child run of the tuning run, as the driver sees it finish:
what `tune_hyperopt` runs for scikit-learn estimators (SparkTrials or Trials) and MLlib pipelines (Trials)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

import mlflow
import numpy as np
import pandas as pd

from common.errors import UserInputError
from common.tracking import log_new_params
from training.tuning.search_space import Space, cast_point, to_hyperopt
from training.tuning.steps import TrialRuns, TuningMetric, finished_status

SPARK_TRIALS = "SparkTrials"
SEQUENTIAL_TRIALS = "Trials"


def why_not_exact(parallelism: int, timeout: float) -> str | None:
    """Why a rerun of a seeded search cannot propose the same trials (None: it can). Hyperopt's TPE and Optuna's
    sampler propose each trial from the trials finished so far."""
    if parallelism > 1:
        return f"{parallelism} trials ran at once, and which finished first (so what was proposed next) is timing"
    if timeout:
        return f"timeout={timeout:g}s: how many trials ran depends on the machine's speed"
    return None


def check_budget(max_evals: int, parallelism: int, timeout: float) -> None:
    if max_evals < 1:
        raise UserInputError(f"max_evals must be at least 1, got {max_evals}")
    if parallelism < 1:
        raise UserInputError(f"parallelism must be at least 1, got {parallelism}")
    if timeout < 0:
        raise UserInputError(f"timeout must be 0 (no limit) or a number of seconds, got {timeout}")


def minimize(
    objective, search: Space, metric: TuningMetric, trials, max_evals: int, seed: int, timeout: float = 0.0
) -> dict:
    """fmin with TPE over `search`; each finished trial becomes a child run as soon as the driver sees it (SparkTrials
    and sequential Trials keep trials alike). No new trial starts after `timeout` seconds (0: no limit). Returns the
    best point; its loss and the trial table go to the run."""
    from hyperopt import fmin, space_eval, tpe
    from hyperopt.exceptions import AllTrialsFailed

    logger = HyperoptTrialLogger(trials, search, TrialRuns(metric))
    hyperopt_space = to_hyperopt(search)
    try:
        best_indexes = fmin(
            objective,
            hyperopt_space,
            algo=tpe.suggest,
            max_evals=max_evals,
            trials=trials,
            rstate=np.random.default_rng(seed),
            timeout=timeout or None,
            show_progressbar=logger.progress,
        )
    except Exception as exc:
        logger.log_finished()
        # Hyperopt says "every trial failed" as AllTrialsFailed or, from fmin's last step, a bare Exception.
        if isinstance(exc, AllTrialsFailed) or "no evaluation tasks" in str(exc):
            raise UserInputError(f"every trial failed; the first error: {logger.first_error()}") from exc
        raise
    logger.log_finished()
    best = cast_point(search, space_eval(hyperopt_space, best_indexes))
    logger.log_summary(best)
    return best


class HyperoptTrialLogger:
    """Shows Hyperopt's progress bar (trials done, best loss) and logs each trial once it has finished."""

    def __init__(self, trials, search: Space, runs: TrialRuns):
        self._trials = trials
        self._search = search
        self._hyperopt_space = to_hyperopt(search)  # to turn each trial's recorded indexes back into values
        self._runs = runs

    @contextmanager
    def progress(self, initial: int, total: int):
        from hyperopt.progress import tqdm_progress_callback

        with tqdm_progress_callback(initial, total) as bar:
            yield _LoggingBar(bar, self)

    def log_finished(self) -> None:
        from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_ERROR

        for trial in self._all_trials():
            number = trial["tid"]
            if number in self._runs.logged or trial["state"] not in (JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL):
                continue
            result = trial.get("result") or {}
            ok = trial["state"] == JOB_STATE_DONE and result.get("status") == "ok"
            error = None if ok else _error_text(trial)
            self._runs.log(
                number,
                self._point(trial),
                self._runs.metrics_of(result) if ok else {},
                finished_status(ok),
                _ms(trial.get("book_time")),
                _ms(trial.get("refresh_time")),
                error,
            )

    def first_error(self) -> str:
        errors = [_error_text(t) for t in self._all_trials() if t["misc"].get("error")]
        return errors[0] if errors else "unknown"

    def log_summary(self, best: dict) -> None:
        losses = [t["result"]["loss"] for t in self._trials.trials if (t.get("result") or {}).get("status") == "ok"]
        ok = len(losses)
        log_new_params({f"best.{k}": v for k, v in best.items()})
        mlflow.log_metrics(
            {"best_loss": min(losses), "n_trials": len(self._trials.trials), "n_trials_ok": ok,
             "n_trials_failed": len(self._trials.trials) - ok}
        )  # fmt: skip
        rows = [
            {"trial": t["tid"], "state": t["state"], **self._point(t), **(t.get("result") or {})}
            for t in self._trials.trials
        ]
        mlflow.log_table(pd.DataFrame(rows), artifact_file="tuning/trials.json")

    def _all_trials(self) -> list:
        # `trials.trials` leaves out trials that raised; a failed trial is still a trial the user must see.
        return list(self._trials._dynamic_trials)

    def _point(self, trial) -> dict:
        from hyperopt import space_eval

        vals = {k: v[0] for k, v in trial["misc"]["vals"].items() if v}
        return cast_point(self._search, space_eval(self._hyperopt_space, vals))


class _LoggingBar:
    """Hyperopt's progress-bar protocol (`update`, `postfix`), logging finished trials on every update."""

    def __init__(self, bar, logger: HyperoptTrialLogger):
        self._bar = bar
        self._logger = logger

    def update(self, n: int) -> None:
        self._bar.update(n)
        self._logger.log_finished()

    @property
    def postfix(self):
        return self._bar.postfix

    @postfix.setter
    def postfix(self, value) -> None:
        self._bar.set_postfix_str(value)


def _error_text(trial) -> str:
    """A failed trial's error as one line: SparkTrials keeps (exception type, traceback or message)."""
    from hyperopt.base import JOB_STATE_CANCEL

    error = trial["misc"].get("error")
    if not error:
        return "cancelled (timeout)" if trial["state"] == JOB_STATE_CANCEL else "failed"
    kind, detail = error if isinstance(error, tuple | list) and len(error) == 2 else ("", error)
    lines = [line.strip() for line in str(detail).splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    kind = str(kind).removeprefix("<class '").removesuffix("'>")
    return f"{kind}: {message}" if kind and kind not in message else message


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None
