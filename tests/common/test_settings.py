import pytest

from common.settings import DEFAULT_SPARK_MASTER, DEFAULT_TRACKING_URI, Settings


def test_defaults_are_mlflows_own_store_and_local_spark():
    settings = Settings.from_env({})
    assert settings.tracking_uri == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    assert settings.spark_master == DEFAULT_SPARK_MASTER == "local[*]"
    assert settings.spark_is_local


def test_environment_overrides_every_setting():
    settings = Settings.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
            "MLFLOW_REGISTRY_URI": "sqlite:///registry.db",
            "SPARK_MASTER": "spark://127.0.0.1:7077",
            "MLFLOW_EXPERIMENT_NAME": "churn",
            "SPARK_SHUFFLE_PARTITIONS": "4",
            "SPARK_DRIVER_MEMORY": "3g",
        }
    )
    assert settings == Settings(
        "http://127.0.0.1:5000", "sqlite:///registry.db", "spark://127.0.0.1:7077", "churn", 4, "3g"
    )
    assert not settings.spark_is_local


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().spark_master = "local[1]"
