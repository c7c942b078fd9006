"""`python -m lifecycle.team start|stop|status` (`make team`, `make team-stop`): the local team stack."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from lifecycle.team.processes import StackError
from lifecycle.team.stack import StackConfig, TeamStack


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lifecycle.team", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", type=Path, default=Path(".team"), help="where the stack keeps its data (.team)")
    for field in fields(StackConfig):
        kind = int if field.type in ("int", int) else str
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {field.default} (remembered in <dir>/stack.json)")  # fmt: skip
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(StackConfig)}
    stack = TeamStack.at(args.dir, **overrides)
    try:
        if args.action == "start":
            stack.start()
            print(f"Team stack up: MLflow UI {stack.server.url}, Spark master {stack.spark.master_url} "
                  f"(UI http://{stack.config.host}:{stack.config.spark_ui_port}), Spark Connect "
                  f"{stack.connect.url}.")  # fmt: skip
            print(f"Point a shell at it with `source {stack.env_path}`, which holds:\n")
            print(stack.env_path.read_text())
        elif args.action == "stop":
            stopped = stack.stop()
            print(f"Stopped: {', '.join(stopped)}." if stopped else "Nothing of the team stack was running.")
            if stack.directory.exists():
                print(f"Data kept in {stack.directory}; `make team` starts it again.")
        else:
            parts = (("PostgreSQL", stack.postgres), ("mlflow server", stack.server), ("Spark", stack.spark),
                     ("Spark Connect", stack.connect))  # fmt: skip
            for name, part in parts:
                print(f"{name}: {'running' if part.is_running() else 'stopped'}")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
