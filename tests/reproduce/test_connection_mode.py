"""`reproduce` replays a run in the connection mode it trained in: through Spark Connect for a Connect run (refused
in one line when SPARK_REMOTE names no server, or names one running another Spark), in classic mode for a classic
run even where SPARK_REMOTE is set. Real runs in a real store; no Spark needed to decide any of it."""

from __future__ import annotations

import os

import mlflow
import pytest

from common.errors import UserInputError
from common.provenance import CONNECTION_TAGS
from lifecycle.replay import _environment, left_out_of_replay
from lifecycle.training_record import TrainingRecord, check_connection, check_server_version

SPARK_SETTINGS = {"spark_settings": {"master": "local[2]", "shuffle_partitions": 2}}


def _record(client, tags: dict[str, str], environment: dict) -> TrainingRecord:
    with mlflow.start_run() as run:
        mlflow.set_tags(tags)
    return TrainingRecord(client.get_run(run.info.run_id), "train_mllib", "0" * 40, "titanic", None, environment, True)


class _Server:
    version = "4.2.0"


def test_a_connect_run_needs_spark_remote_and_the_recorded_server_version(settings, client):
    tags = {CONNECTION_TAGS["mode"]: "connect", CONNECTION_TAGS["spark_version"]: "4.3.0"}
    record = _record(client, tags, SPARK_SETTINGS)
    assert record.connection == "connect" and record.server_version == "4.3.0"

    with pytest.raises(UserInputError) as refused:
        check_connection(record, None)
    assert str(refused.value) == (
        f"run {record.run_id} trained through Spark Connect (server Spark 4.3.0): set SPARK_REMOTE=sc://host:port "
        "to a Spark Connect server to replay it there"
    )
    check_connection(record, "sc://127.0.0.1:15002")
    with pytest.raises(UserInputError, match=r"running Spark 4\.3\.0; the server at SPARK_REMOTE runs Spark 4\.2\.0"):
        check_server_version(record, _Server())


def test_a_classic_run_replays_without_spark_remote_and_a_run_without_spark_as_it_is(settings, client, monkeypatch):
    classic = _record(client, {CONNECTION_TAGS["mode"]: "classic"}, SPARK_SETTINGS)
    untagged = _record(client, {}, SPARK_SETTINGS)  # a Spark run from before runs recorded the mode
    no_spark = _record(client, {CONNECTION_TAGS["mode"]: "connect"}, {})  # train_sklearn with SPARK_REMOTE set
    assert (classic.connection, untagged.connection, no_spark.connection) == ("classic", "classic", None)
    for record in (classic, untagged, no_spark):
        check_connection(record, None)

    assert [left_out_of_replay(r) for r in (classic, untagged, no_spark)] == [(), (), ()]

    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15002")
    assert [left_out_of_replay(r) for r in (classic, untagged, no_spark)] == [("SPARK_REMOTE",)] * 2 + [()]
    connect = _record(client, {CONNECTION_TAGS["mode"]: "connect"}, SPARK_SETTINGS)
    assert left_out_of_replay(connect) == ()
    with _environment({"SPARK_MASTER": "local[2]"}, removed=left_out_of_replay(classic)):
        assert "SPARK_REMOTE" not in os.environ and os.environ["SPARK_MASTER"] == "local[2]"
    assert os.environ["SPARK_REMOTE"] == "sc://127.0.0.1:15002"
