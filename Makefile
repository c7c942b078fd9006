# The README's two commands: `make quickstart` and `make test`. Both set up .venv first when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Entry points run `python` and `mlflow` from the virtual environment.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: quickstart test setup check-java lint bench clean team team-stop ui

setup: check-java $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; found " + sys.version.split()[0] + " (set PYTHON=/path/to/python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# Before the install: common.java needs only the standard library.
check-java:
	@$(PYTHON) -m common.java

# The whole lifecycle on scikit-learn's bundled breast-cancer data, through MLflow Projects, with the embedded
# defaults: SQLite tracking in ./mlflow.db, artifacts in ./mlruns, local Spark.
quickstart: setup
	$(BIN)/mlflow run . -e main --env-manager local --experiment-name model-lifecycle

# Two workers: much of the suite waits on job processes, servers and JVM starts rather than computing; each test file
# (and each folder of tests sharing a costly session fixture) runs whole on one worker (tests/conftest.py).
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The MLflow UI on the same store, landing on the training runs with their held-out metrics: starts a server on
# 127.0.0.1:5000 for ./mlflow.db (or MLFLOW_TRACKING_URI's database) until Ctrl-C; in team mode (`source
# .team/env`) prints the team server's links. Options through UI_ARGS, e.g. `make ui UI_ARGS="--port 5001"`.
ui: setup
	$(BIN)/python -m lifecycle.ui $(UI_ARGS)

# Team mode: PostgreSQL, `mlflow server` (basic-auth, proxied artifacts) and a Spark master + worker, all on
# 127.0.0.1, data in .team/. Options go through TEAM_ARGS, e.g. `make team TEAM_ARGS="--mlflow-port 5050"`.
team: setup
	$(BIN)/python -m lifecycle.team start $(TEAM_ARGS)

team-stop:
	$(BIN)/python -m lifecycle.team stop $(TEAM_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python -m bench.score_batch_vs_spark_udf
	$(BIN)/python -m bench.scoring_strategies
	$(BIN)/python -m bench.small_job
	$(BIN)/python -m bench.mllib_logging
	$(BIN)/python -m bench.mllib_scoring
	$(BIN)/python -m bench.stream_scoring
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.per_group_training
	$(BIN)/python -m bench.tuning_parallelism
	$(BIN)/python -m bench.team_server
	$(BIN)/python -m bench.model_quality
	$(BIN)/pip install --quiet -c requirements.lock -e '.[bench]'  # Evidently, beside monitor
	$(BIN)/python -m bench.monitoring

clean:
	rm -rf $(VENV) mlflow.db mlruns output spark-warehouse
