"""The project's own contract: environments in step, entry points as documented, the README's two commands."""

import importlib
import tomllib

import pytest
import yaml

from tests.helpers import REPO

VOCABULARY = {"data", "label", "model_name", "model_uri", "input", "output", "stage", "version", "seed"}


def _pyproject_dependencies():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def test_conda_and_python_env_files_list_the_pyproject_dependencies():
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())
    (pip_section,) = [d["pip"] for d in conda["dependencies"] if isinstance(d, dict)]
    assert pip_section == _pyproject_dependencies()
    assert "python=3.11" in conda["dependencies"]
    python_env = yaml.safe_load((REPO / "python_env.yaml").read_text())
    assert python_env["dependencies"] == _pyproject_dependencies() and python_env["python"] == "3.11"


def test_lock_pins_every_dependency_in_its_range():
    from packaging.requirements import Requirement

    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    for spec in _pyproject_dependencies():
        requirement = Requirement(spec)
        assert requirement.specifier.contains(pins[requirement.name.lower()]), spec


# Every MLproject entry point and the parameter dataclass its module declares.
PARAMETERS = {
    "main": "lifecycle.main:MainParams",
    "train_sklearn": "training.sklearn.train_sklearn:TrainSklearnParams",
    "train_mllib": "training.mllib.train_mllib:TrainMllibParams",
    "train_per_group": "training.per_group.train_per_group:TrainPerGroupParams",
    "tune_hyperopt": "training.tuning.tune_hyperopt:TuneHyperoptParams",
    "tune_joblib": "training.tuning.tune_joblib:TuneJoblibParams",
    "export_onnx": "training.mllib_onnx.export_onnx:ExportOnnxParams",
    "reproduce": "lifecycle.reproduce:ReproduceParams",
    "promote": "registry.promote:PromoteParams",
    "rollback": "registry.rollback:RollbackParams",
    "history": "registry.history:HistoryParams",
    "score_batch": "scoring.batch.score_batch:ScoreBatchParams",
    "score_stream": "scoring.stream.score_stream:ScoreStreamParams",
    "serve": "scoring.serving.serve:ServeParams",
}


def _entry_points() -> dict:
    return yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]


def _params_class(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def test_every_entry_point_has_a_parameter_dataclass():
    assert set(_entry_points()) == set(PARAMETERS)


@pytest.mark.parametrize("entry_point", sorted(PARAMETERS))
def test_mlproject_declares_exactly_the_dataclass_parameters_types_and_defaults(entry_point):
    from common.params import mlproject_parameters, parse_params

    entry = _entry_points()[entry_point]
    cls = _params_class(PARAMETERS[entry_point])
    declared = {name: spec if isinstance(spec, dict) else {"type": spec} for name, spec in entry["parameters"].items()}
    for spec in declared.values():
        if spec["type"] == "float" and "default" in spec:
            spec["default"] = float(spec["default"])
    expected = mlproject_parameters(cls)
    for spec in expected.values():
        if spec["type"] == "float" and "default" in spec:
            spec["default"] = float(spec["default"])
    assert declared == expected
    # The command passes every parameter to the module, which parses each into the dataclass's own default.
    module = PARAMETERS[entry_point].split(":")[0]
    assert entry["command"].split()[:3] == ["python", "-m", module]
    assert module.rsplit(".", 1)[-1] == entry_point  # an entry point's module is named for it
    for name in declared:
        assert f"--{name.replace('_', '-')} {{{name}}}" in " ".join(entry["command"].split()), name
    required = {name: "x" for name, spec in declared.items() if "default" not in spec}
    argv = [f"--{name.replace('_', '-')}={spec.get('default', required.get(name))}" for name, spec in declared.items()]
    defaults = parse_params(cls, argv)
    assert defaults == cls(**{k: v for k, v in required.items()})


def test_entry_points_run_modules_with_declared_parameters():
    project = yaml.safe_load((REPO / "MLproject").read_text())
    entry_points = project["entry_points"]
    assert {
        "main",
        "train_sklearn",
        "train_mllib",
        "promote",
        "rollback",
        "history",
        "score_batch",
        "score_stream",
    } <= set(entry_points)
    for name, entry in entry_points.items():
        command = entry["command"]
        assert command.startswith("python -m "), name
        for parameter in entry["parameters"]:
            assert "{" + parameter + "}" in command, (name, parameter)
    shared = set().union(*(e["parameters"] for e in entry_points.values())) & VOCABULARY
    assert shared == VOCABULARY


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make quickstart",
        "make test",
    ]
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("make test")


def test_an_entry_point_run_as_a_module_names_itself_in_its_usage():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "registry.history"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stderr.startswith("usage: history ")
