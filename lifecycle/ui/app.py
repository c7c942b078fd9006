"""The project's MLflow app plugin: MLflow's own tracking server and UI, whose page gives a browser the project's
defaults (`browser_defaults`); `APP_WITH_BASIC_AUTH` composes it with MLflow's basic-auth for the team server.

`mlflow server --app-name lifecycle-ui` runs it. MLflow finds apps by their `mlflow.app` entry point, which
pyproject.toml declares for the installed project.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "lifecycle-ui"
APP_WITH_BASIC_AUTH = "lifecycle-ui-basic-auth"
_INSTALLED = "spark-model-lifecycle.browser-defaults"


def create_app():
    """`--app-name lifecycle-ui`: MLflow's server, its page with the project's defaults."""
    from mlflow.server import app as flask_app

    add_browser_defaults(flask_app)
    return _as_served(flask_app)


def create_app_with_basic_auth():
    """`--app-name lifecycle-ui-basic-auth`: the same behind MLflow's basic-auth, which checks credentials before
    the page is served (its request hook is registered first, so it runs first)."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as with_basic_auth

    served = with_basic_auth(flask_app)
    add_browser_defaults(flask_app)
    return served


def add_browser_defaults(flask_app) -> None:
    """Answer a request for the UI's page with MLflow's page plus the defaults script. Served in full every time
    (no cache validators), so that a browser holding MLflow's page unchanged in its cache gets this one."""
    if _INSTALLED in flask_app.extensions:
        return
    flask_app.extensions[_INSTALLED] = True
    from flask import Response, request
    from mlflow.server.handlers import STATIC_PREFIX_ENV_VAR

    from lifecycle.ui.browser_defaults import with_defaults

    page_path = os.environ.get(STATIC_PREFIX_ENV_VAR, "").rstrip("/") + "/"
    index = Path(flask_app.static_folder) / "index.html"

    @flask_app.before_request
    def _page_with_defaults():
        if request.method != "GET" or request.path != page_path or not index.is_file():
            return None  # MLflow's own handler (its message when the UI was not built)
        return Response(with_defaults(index.read_text()), mimetype="text/html", headers={"Cache-Control": "no-cache"})


def _as_served(flask_app):
    """As MLflow's basic-auth app does: the ASGI app under uvicorn (`mlflow server`'s default), Flask under the
    servers that take a WSGI app."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(flask_app)
    return flask_app
