import pytest

from common.errors import UserInputError
from registry.promote import PromoteParams
from registry.promote import run as promote_job
from registry.stages import promote
from tests.registry.conftest import state


def test_promotion_moves_stage_and_alias_and_archives_the_previous_holder(three_versions):
    client = three_versions
    promote(client, "m", "1", "production")
    assert state(client) == ({"1": "Production", "2": "None", "3": "None"}, {"production": "1"})

    result = promote(client, "m", "2", "Production", reason="better")
    assert result.archived_versions == ("1",) and result.previous_stage == "None"
    assert state(client) == ({"1": "Archived", "2": "Production", "3": "None"}, {"production": "2"})
    tags = client.get_model_version("m", "2").tags
    assert tags["promoted_to"] == "Production" and tags["promotion_reason"] == "better" and tags["promoted_by"]
    assert client.get_model_version("m", "1").tags["archived_by"] == "promotion of version 2 to Production"


def test_staging_then_production_moves_the_alias_along(three_versions):
    client = three_versions
    promote(client, "m", "3", "Staging")
    assert state(client) == ({"1": "None", "2": "None", "3": "Staging"}, {"staging": "3"})
    promote(client, "m", "3", "Production")
    assert state(client) == ({"1": "None", "2": "None", "3": "Production"}, {"production": "3"})


def test_archiving_the_production_version_drops_its_alias(three_versions):
    client = three_versions
    promote(client, "m", "2", "Production")
    promote(client, "m", "2", "Archived")
    assert state(client) == ({"1": "None", "2": "Archived", "3": "None"}, {})


def test_latest_version_is_the_default(three_versions):
    assert promote(three_versions, "m", None, "Staging").version == "3"


@pytest.mark.parametrize(
    ("name", "version", "stage", "message"),
    [
        ("nope", "1", "Production", "registered model 'nope' does not exist; registered models: m"),
        (
            "m",
            "7",
            "Production",
            r"model 'm' has no version '7'; versions: 1 \(Production, @production\), 2 \(None\), 3 \(None\)",
        ),
        ("m", "2", "Prod", "unknown stage 'Prod'; choose one of: Staging, Production, Archived"),
    ],
)
def test_bad_input_names_what_exists_and_changes_nothing(three_versions, settings, name, version, stage, message):
    client = three_versions
    promote(client, "m", "1", "Production")
    before = state(client)
    runs_before = client.search_runs([e.experiment_id for e in client.search_experiments()])
    with pytest.raises(UserInputError, match=message):
        promote_job(None, settings, PromoteParams(model_name=name, stage=stage, version=version))
    assert state(client) == before
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == len(runs_before)


def test_the_promote_job_records_a_run(three_versions, settings):
    result = promote_job(
        None, settings, PromoteParams(model_name="m", stage="staging", version="2", reason="smoke test")
    )
    assert (result.version, result.stage) == ("2", "Staging")
    (run,) = three_versions.search_runs([three_versions.get_experiment_by_name(settings.experiment_name).experiment_id])
    assert run.data.params == {
        "model_name": "m",
        "version": "2",
        "stage": "staging",
        "promoted_version": "2",
        "target_stage": "Staging",
        "force": "False",
    }
