import mlflow

from common.tracking import EXPERIMENT_KIND_TAG, git_commit, tracked_run


def test_direct_runs_start_a_run_in_the_configured_experiment_with_the_git_commit(settings):
    with tracked_run(settings, run_name="direct") as run:
        run_id = run.info.run_id
    finished = mlflow.get_run(run_id)
    assert mlflow.get_experiment(finished.info.experiment_id).name == settings.experiment_name
    assert finished.info.run_name == "direct" and finished.info.status == "FINISHED"
    assert finished.data.tags["mlflow.source.git.commit"] == git_commit()
    assert len(git_commit()) == 40
    # Recorded as a training experiment, so MLflow's UI treats it as one (not as a GenAI project).
    assert mlflow.get_experiment(finished.info.experiment_id).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_a_run_started_by_mlflow_run_is_adopted_not_duplicated(settings, client, monkeypatch):
    experiment_id = client.create_experiment("outer")
    outer = client.create_run(experiment_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", outer.info.run_id)
    with tracked_run(settings, run_name="ignored") as run:
        assert run.info.run_id == outer.info.run_id
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [outer.info.run_id]
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_an_experiment_that_already_says_what_it_is_keeps_its_kind(settings, client):
    experiment_id = client.create_experiment(settings.experiment_name, tags={EXPERIMENT_KIND_TAG: "genai_development"})
    with tracked_run(settings, run_name="direct"):
        pass
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_inside_another_run_a_nested_child_run_is_started(settings):
    with tracked_run(settings, run_name="parent") as parent, tracked_run(settings, run_name="child") as child:
        assert child.info.run_id != parent.info.run_id
        child_id, parent_id = child.info.run_id, parent.info.run_id
    assert mlflow.get_run(child_id).data.tags["mlflow.parentRunId"] == parent_id


def test_a_failing_job_marks_its_run_failed(settings):
    try:
        with tracked_run(settings, run_name="boom") as run:
            run_id = run.info.run_id
            raise ValueError("boom")
    except ValueError:
        pass
    assert mlflow.get_run(run_id).info.status == "FAILED"
