"""The project's own contract: environments in step, entry points as documented, the README's two commands."""

import tomllib

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
