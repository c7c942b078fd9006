import mlflow
import pytest


def state(client, name="m"):
    """{version: stage} and {alias: version}: the registry as a user sees it."""
    versions = {str(v.version): v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    aliases = {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    return versions, aliases


@pytest.fixture
def race_versions(settings, client) -> list[str]:
    """Model 'race' with versions 1..8 of one tiny real model, logged once and registered eight times (the registry
    does not care how good they are)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with mlflow.start_run():
        first = log_sklearn_model(LogisticRegression().fit(X, [0.0, 1.0, 0.0, 1.0]), X, registered_model_name="race")
    source = client.get_model_version("race", first.registered_model_version).source
    more = [mlflow.register_model(source, "race").version for _ in range(7)]
    return [str(v) for v in [first.registered_model_version, *more]]


@pytest.fixture
def promotion_race():
    """Promotion processes forked from one prepared process (tests/registry/race.py); none outlives the test."""
    from tests.registry.race import Race

    with Race() as started:
        yield started
