import mlflow
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from training.sklearn_model import log_sklearn_model


@pytest.fixture
def three_versions(settings, client):
    """Model 'm' with versions 1..3 (tiny real models; the registry does not care how good they are)."""
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = LogisticRegression().fit(X, [0.0, 1.0, 0.0, 1.0])
    for _ in range(3):
        with mlflow.start_run():
            log_sklearn_model(model, X, registered_model_name="m")
    return client


def state(client, name="m"):
    """{version: stage} and {alias: version}: the registry as a user sees it."""
    versions = {str(v.version): v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    aliases = {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    return versions, aliases
