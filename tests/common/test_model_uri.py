import pytest

from common.errors import UserInputError
from common.model_uri import resolve_model_uri
from registry.stages import promote


def test_stage_alias_version_and_latest_resolve_to_one_concrete_version(three_versions):
    client = three_versions
    promote(client, "m", "2", "Production")
    for uri in ("models:/m/production", "models:/m/Production", "models:/m@production", "models:/m/2"):
        resolved = resolve_model_uri(client, uri)
        assert (resolved.model_name, resolved.model_version, resolved.load_uri) == ("m", "2", "models:/m/2")
        assert resolved.run_id == client.get_model_version("m", "2").run_id
    assert resolve_model_uri(client, "models:/m/latest").model_version == "3"


def test_a_stage_uri_falls_back_to_the_alias_when_the_stage_is_not_set(three_versions):
    client = three_versions
    client.set_registered_model_alias("m", "production", "1")  # e.g. a registry where stages are gone
    assert resolve_model_uri(client, "models:/m/Production").model_version == "1"


def test_run_uris_are_used_as_they_are(three_versions):
    run_id = three_versions.get_model_version("m", "1").run_id
    resolved = resolve_model_uri(three_versions, f"runs:/{run_id}/model")
    assert resolved.load_uri == f"runs:/{run_id}/model" and resolved.model_name is None


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "models:/m/Staging",
            r"no version in stage Staging and no alias 'staging'; versions: 1 \(None\), 2 \(None\), 3 \(None\)",
        ),
        ("models:/m@champion", "model 'm' has no alias 'champion'; aliases: none"),
        ("models:/m/9", "model 'm' has no version '9'"),
        ("models:/other/1", "registered model 'other' does not exist; registered models: m"),
        ("models:/m/best", "'best' in models:/m/best is not a version number, 'latest' or a stage"),
        ("models:/", "cannot parse model URI"),
    ],
)
def test_unknown_references_list_what_exists(three_versions, uri, message):
    with pytest.raises(UserInputError, match=message):
        resolve_model_uri(three_versions, uri)
