"""What a tracking server's refusal means to the user, in one line: no account, a wrong password, no permission,
or no server at all. MLflow raises all of these as an MlflowException holding the raw HTTP exchange."""

from __future__ import annotations

import os

from mlflow.exceptions import MlflowException

# MLflow's client wraps a refused connection (after its retries) in an MlflowException with the urllib3 text.
_UNREACHABLE_MARKERS = ("Max retries exceeded", "Connection refused", "Failed to establish a new connection")


def tracking_user() -> str:
    return os.environ.get("MLFLOW_TRACKING_USERNAME") or "an anonymous user"


def describe_tracking_failure(exc: MlflowException, tracking_uri: str) -> str | None:
    """One line for a failure the user fixes outside the code, or None for any other MlflowException."""
    if exc.error_code == "UNAUTHENTICATED":
        if not os.environ.get("MLFLOW_TRACKING_USERNAME"):
            return (
                f"the tracking server at {tracking_uri} requires an account: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (`source .team/env` for the local team stack)"
            )
        return (
            f"the tracking server at {tracking_uri} did not accept the password of {tracking_user()}: check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if exc.error_code == "PERMISSION_DENIED":
        return f"permission denied: {tracking_user()} may not do this on {tracking_uri} (an admin can grant it)"
    message = str(exc)
    if any(marker in message for marker in _UNREACHABLE_MARKERS):
        return f"cannot reach the tracking server at {tracking_uri}: {_reason(message)}"
    return None


def _reason(message: str) -> str:
    """The cause, in a few words, from urllib3's nested message."""
    for marker in ("Connection refused", "timed out", "Name or service not known"):
        if marker in message:
            return marker.lower()
    return message.splitlines()[0][:200]
