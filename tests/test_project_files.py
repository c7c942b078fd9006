"""The project's own contract: environments in step, entry points as documented, the README's two commands."""

import dataclasses
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


def _entry_points() -> dict:
    return yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]


def _module(entry_point: str) -> str:
    return _entry_points()[entry_point]["command"].split()[2]  # python -m <module> ...


def _params_class(entry_point: str):
    """The parameter dataclass of an entry point: `train_sklearn` declares `TrainSklearnParams` in its module."""
    name = "".join(word.capitalize() for word in entry_point.split("_")) + "Params"
    return getattr(importlib.import_module(_module(entry_point)), name)


@pytest.mark.parametrize("entry_point", sorted(_entry_points()))
def test_mlproject_declares_exactly_the_dataclass_parameters_types_and_defaults(entry_point):
    from common.params import entry_point_name, mlproject_parameters, parse_params

    entry = _entry_points()[entry_point]
    module = _module(entry_point)
    assert entry["command"].split()[:2] == ["python", "-m"]
    assert module.rsplit(".", 1)[-1] == entry_point  # an entry point's module is named for it
    cls = _params_class(entry_point)
    assert entry_point_name(cls) == entry_point
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
    for name in declared:
        assert f"--{name.replace('_', '-')} {{{name}}}" in " ".join(entry["command"].split()), name
    required = {name: "x" for name, spec in declared.items() if "default" not in spec}
    argv = [f"--{name.replace('_', '-')}={spec.get('default', required.get(name))}" for name, spec in declared.items()]
    defaults = parse_params(cls, argv)
    assert defaults == cls(**{k: v for k, v in required.items()})


def test_the_training_entry_points_are_mlproject_entry_points_that_take_data():
    """One list (common.provenance) names the training entry points: record_training refuses any other, and
    `reproduce` replays exactly these."""
    from common.provenance import TRAINING_ENTRY_POINTS
    from lifecycle import training_record

    assert set(TRAINING_ENTRY_POINTS) <= set(_entry_points())
    for entry_point in TRAINING_ENTRY_POINTS:
        assert "data" in _entry_points()[entry_point]["parameters"], entry_point
        assert "data" in {f.name for f in dataclasses.fields(_params_class(entry_point))}, entry_point
    assert training_record.TRAINING_ENTRY_POINTS is TRAINING_ENTRY_POINTS


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


def test_record_training_refuses_what_is_not_a_training_entry_point():
    from common.provenance import record_training

    @dataclasses.dataclass(frozen=True)
    class NotTrainingParams:
        data: str = "breast_cancer"

    with pytest.raises(ValueError, match="test_project_files is not one of TRAINING_ENTRY_POINTS"):
        record_training(NotTrainingParams())


def _markdown_anchors(text: str) -> set[str]:
    """The anchors GitHub gives headings: lower case, punctuation dropped, spaces as hyphens, repeats -1, -2."""
    import re

    anchors: set[str] = set()
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"#{1,6} (.+)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            candidate, n = slug, 0
            while candidate in anchors:
                n += 1
                candidate = f"{slug}-{n}"
            anchors.add(candidate)
    return anchors


def test_every_relative_link_in_the_readme_and_docs_names_a_file_and_heading_that_exist():
    import re

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _markdown_anchors(linked.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []
