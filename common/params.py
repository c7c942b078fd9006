"""Job parameters, declared once: one frozen dataclass per entry point holds every parameter with its default.

The command line is built from it (`parse_params`), the job's `run` takes it, the run logs it (`logged_params`),
and a test holds the MLproject file to it (`mlproject_parameters`). Adding a parameter touches the dataclass and
the MLproject entry, nowhere else.

    @dataclass(frozen=True)
    class ScoreParams:
        model_uri: str = param(help="models:/<name>/<stage>")       # no default: required
        overwrite: bool = param(False, help="replace an existing output")
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

from common.cli import boolean, comma_list, optional_str, whole_number
from common.errors import UserInputError

_REQUIRED = dataclasses.MISSING


def param(default: Any = _REQUIRED, *, help: str = "", choices: Sequence[str] | None = None) -> Any:
    """A parameter's default (none: required), its help text and, for a closed set, its choices."""
    metadata = {"help": help, "choices": tuple(choices) if choices else None}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def entry_point_name(cls: type) -> str:
    """The MLproject entry point whose parameters `cls` declares: its module is named for the entry point."""
    module = sys.modules[cls.__module__]
    # Run as `python -m training.sklearn.train_sklearn` the module is __main__; its spec still knows its real name.
    name = getattr(module.__spec__, "name", None) or cls.__module__
    return name.rsplit(".", 1)[-1]


def parse_params(cls: type, argv: Sequence[str] | None):
    """The dataclass from the command line: `--some-name value` for each field `some_name`. The program is the
    entry point's module, described by the first line of its docstring."""
    module = sys.modules[cls.__module__]
    parser = argparse.ArgumentParser(
        prog=entry_point_name(cls), description=(module.__doc__ or "").strip().splitlines()[0]
    )
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        options: dict[str, Any] = {"type": _converter(field.name, kind), "help": field.metadata.get("help") or None}
        if field.metadata.get("choices"):
            options["choices"] = field.metadata["choices"]
        if _has_default(field):
            options["default"] = _default(field)
        else:
            options["required"] = True
        parser.add_argument("--" + field.name.replace("_", "-"), **options)
    return cls(**vars(parser.parse_args(argv)))


def logged_params(params) -> dict[str, str | int | float | bool]:
    """Every parameter as the run records it: lists comma-separated, objects as JSON, 'not given' as ''."""
    return {name: _logged(value) for name, value in dataclasses.asdict(params).items()}


def mlproject_parameters(cls: type) -> dict[str, dict[str, Any]]:
    """What the MLproject entry must declare for `cls`: {name: {"type": ..., "default": ...}} (no default key
    when the parameter is required). MLproject knows `string` and `float`; whole numbers travel as floats."""
    hints = typing.get_type_hints(cls)
    declared = {}
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        entry: dict[str, Any] = {"type": "float" if kind in (int, float) else "string"}
        if _has_default(field):
            default = _default(field)
            if kind is bool:
                entry["default"] = "true" if default else "false"
            else:
                entry["default"] = default if kind in (int, float) else _logged(default)
        declared[field.name] = entry
    return declared


def _converter(name: str, kind):
    if kind is bool:
        return boolean
    if kind is int:
        return whole_number
    if kind is float:
        return float
    if _is_optional_str(kind):
        return optional_str
    if kind == tuple[str, ...]:
        return lambda text: tuple(comma_list(text))
    if kind == tuple[int, ...]:
        return lambda text: whole_numbers(name, text)
    if kind is dict:
        return lambda text: json_object(name, text)
    return str


def json_object(name: str, text: str) -> dict:
    """A JSON object parameter such as '{"max_depth": 5}'; an empty value is {}. A mistake is the user's: one
    line naming the parameter, not argparse's usage text."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{name} is not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(value, dict):
        raise UserInputError(f'{name} must be a JSON object such as {{"max_depth": 5}}, got {text!r}')
    return value


def whole_numbers(name: str, text: str) -> tuple[int, ...]:
    """'10, 50,100' -> (10, 50, 100); a value that is not a whole number names the parameter."""
    try:
        return tuple(whole_number(value) for value in comma_list(text))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise UserInputError(f"{name} must be comma-separated whole numbers, got {text!r}") from exc


def _is_optional_str(kind) -> bool:
    return isinstance(kind, types.UnionType) and set(typing.get_args(kind)) == {str, type(None)}


def _has_default(field: dataclasses.Field) -> bool:
    return field.default is not _REQUIRED or field.default_factory is not _REQUIRED


def _default(field: dataclasses.Field):
    return field.default_factory() if field.default_factory is not _REQUIRED else field.default


def _logged(value):
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value
