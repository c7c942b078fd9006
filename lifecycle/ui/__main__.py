"""`python -m lifecycle.ui` (`make ui`): the MLflow UI on the project's store, opened on the training runs.

With a store this machine opens itself (SQLite `mlflow.db` by default, or the MLFLOW_TRACKING_URI database) it
starts `mlflow server` with the project's app plugin and keeps it until Ctrl-C. With a tracking server (team mode,
MLFLOW_TRACKING_URI=http...) the server is running already: the command only says where to look. Either way it
prints the UI's address and the link to the experiment's training runs, and opens the link in a desktop browser
when there is one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import webbrowser
from collections.abc import Sequence

import mlflow

from common.cli import run_cli
from common.settings import Settings
from common.tracking import configure_tracking, training_runs_url
from lifecycle.ui.local_server import LocalServer, absolute_store_uri, stop


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(open_ui, argv)


def open_ui(argv: Sequence[str] | None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lifecycle.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="where a server this command starts listens")
    parser.add_argument("--port", type=int, default=5000, help="its port (5000)")
    parser.add_argument("--no-browser", action="store_true", help="print the links only")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if settings.tracking_uri.startswith(("http://", "https://")):
        configure_tracking(settings)  # the server's credentials are the environment's, as for any job
        _show(settings.tracking_uri.rstrip("/"), settings, args.no_browser)
        return
    server = LocalServer(absolute_store_uri(settings.tracking_uri), host=args.host, port=args.port)
    # Stopped by a signal rather than Ctrl-C (a service manager, `timeout`): still take the server down with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    process = server.start()
    try:
        server.wait_until_ready(process)
        _show(server.url, settings, args.no_browser, store=server.store_uri)
        print("Ctrl-C stops the server.", flush=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(process)


def _show(url: str, settings: Settings, no_browser: bool, store: str | None = None) -> None:
    experiment = mlflow.MlflowClient(url).get_experiment_by_name(settings.experiment_name)
    print(f"MLflow UI      {url}" + (f"  (store {store})" if store else ""))
    if experiment is None:
        print(f"experiment     {settings.experiment_name} does not exist yet: `make quickstart` makes it")
        link = url
    else:
        link = training_runs_url(url, experiment.experiment_id)
        print(f"training runs  {link}")
    sys.stdout.flush()
    if not no_browser and _has_desktop():
        webbrowser.open(link, new=2)


def _has_desktop() -> bool:
    """Only a graphical browser: on a machine without a display, `webbrowser` would start a text browser in the
    terminal the server is writing to."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


if __name__ == "__main__":
    main()
