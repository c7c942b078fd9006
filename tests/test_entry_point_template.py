"""Contract: every MLproject entry point has the one shape common.job describes. Its module declares
`ENTRY_POINT = EntryPoint(<Name>Params, run, spark=...)`, `main = ENTRY_POINT.main`, runs `run_cli(main)` as a script,
and its `run` takes what the runner starts (spark, then settings, then the parameters) and returns a result with
`.summary()`. The runner itself is tested here too, in-process, with a job declared in this file."""

import dataclasses
import importlib
import inspect
import typing

import pytest
import yaml

from common.job import EAGER_SPARK, LAZY_SPARK, NO_SPARK, EntryPoint
from common.params import param
from common.spark import SparkStarter
from tests.helpers import REPO

_ENTRY_POINTS = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
_RUN_ARGUMENTS = {NO_SPARK: ["settings", "params"], EAGER_SPARK: ["spark", "settings", "params"]}
_RUN_ARGUMENTS[LAZY_SPARK] = _RUN_ARGUMENTS[EAGER_SPARK]


def _module_name(entry_point: str) -> str:
    return _ENTRY_POINTS[entry_point]["command"].split()[2]  # python -m <module> ...


@pytest.mark.parametrize("entry_point", sorted(_ENTRY_POINTS))
def test_every_entry_point_module_follows_the_template(entry_point):
    module = importlib.import_module(_module_name(entry_point))
    declared = getattr(module, "ENTRY_POINT", None)
    assert isinstance(declared, EntryPoint), f"{module.__name__} declares no ENTRY_POINT = EntryPoint(...)"
    params_class = "".join(word.capitalize() for word in entry_point.split("_")) + "Params"
    assert declared.params is getattr(module, params_class) and dataclasses.is_dataclass(declared.params)
    assert declared.name == entry_point
    assert declared.run is module.run, "ENTRY_POINT runs the module's own `run`"
    assert module.main == declared.main, "main = ENTRY_POINT.main: the runner parses, starts Spark and prints"

    arguments = list(inspect.signature(module.run).parameters)
    assert arguments[: len(_RUN_ARGUMENTS[declared.spark])] == _RUN_ARGUMENTS[declared.spark], (entry_point, arguments)
    result_type = typing.get_type_hints(module.run)["return"]
    assert callable(getattr(result_type, "summary", None)), f"{entry_point}'s run returns {result_type}: no summary()"

    source = inspect.getsource(module)
    assert source.rstrip().endswith('if __name__ == "__main__":\n    run_cli(main)'), entry_point
    for other in ("build_spark(", "SparkStarter(", "job_settings(", "parse_params(", "run_spark_job("):
        assert other not in source, f"{entry_point}: {other} is the runner's (common.job), not the entry point's"


@dataclasses.dataclass(frozen=True)
class GreetParams:
    name: str = param("world")
    fail: bool = param(False)


@dataclasses.dataclass(frozen=True)
class Greeting:
    text: str
    spark_started: bool | None = None
    exit_code: int = 0

    def summary(self) -> str:
        return self.text


def _greet(settings, params: GreetParams) -> Greeting:
    return Greeting(f"hello {params.name} ({settings.tracking_uri})", exit_code=3 if params.fail else 0)


def _greet_lazily(spark: SparkStarter, settings, params: GreetParams) -> Greeting:
    return Greeting(f"hello {params.name}", spark_started=spark.started)


def test_the_runner_parses_prints_the_summary_and_exits_with_the_results_code(settings, capsys):
    greeting = EntryPoint(GreetParams, _greet).main(["--name", "you"])
    assert greeting.text == f"hello you ({settings.tracking_uri})"
    assert capsys.readouterr().out == f"{greeting.text}\n"

    with pytest.raises(SystemExit) as exited:
        EntryPoint(GreetParams, _greet).main(["--fail", "true"])
    assert exited.value.code == 3 and capsys.readouterr().out.startswith("hello world")


def test_a_lazy_entry_point_gets_a_starter_that_has_not_started_spark(settings, capsys):
    greeting = EntryPoint(GreetParams, _greet_lazily, spark=LAZY_SPARK).main([])
    assert greeting == Greeting("hello world", spark_started=False)


def test_a_check_refuses_before_the_settings_are_read_or_spark_starts(capsys):
    def refuse(params):
        raise ValueError(f"no {params.name}")

    def never_called(spark, settings, params):
        raise AssertionError("run called after a refusal")

    with pytest.raises(ValueError, match="no world"):
        EntryPoint(GreetParams, never_called, spark=EAGER_SPARK, check=refuse).main([])
