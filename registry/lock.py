"""One promotion of a model at a time, through the registry itself (so it holds for SQLite, PostgreSQL and a
tracking server alike): a lock token kept as a registered-model tag.

The registry has no compare-and-set, so taking the lock is write, wait, read back: of the callers that saw the
lock free, the one whose token is still there after the settle time has it; the others lose and say so. A lock older
than its time-to-live (a crashed holder) may be taken over.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from common.errors import UserInputError
from common.tracking import is_duplicate_row
from common.tracking_errors import tracking_user

LOCK_TAG = "lifecycle.promotion_lock"


class PromotionConflict(Exception):
    """Another promotion of the same model holds the lock (or took it first)."""


@contextmanager
def promotion_lock(
    client: MlflowClient, name: str, what: str, ttl_s: float = 600.0, settle_s: float = 1.5
) -> Iterator[None]:
    held = client.get_registered_model(name).tags.get(LOCK_TAG)
    if held and not _expired(held, ttl_s):
        raise PromotionConflict(
            f"another promotion of {name} is in progress ({_describe(held)}); try again when it ends"
        )
    token = f"{time.time():.3f}|{uuid.uuid4().hex[:8]}|{_who()}|{what}"
    try:
        client.set_registered_model_tag(name, LOCK_TAG, token)
    except MlflowException as exc:
        if exc.error_code == "PERMISSION_DENIED":  # the first write of a promotion: nothing has changed yet
            raise UserInputError(f"permission denied: {tracking_user()} cannot change model {name}") from exc
        # SQLite refuses a write outright ("database is locked") when another writer upgrades its lock at the same
        # instant; and while the model has no lock tag yet, two first writes both insert it and the store refuses
        # the second (a unique key). Either way the other writer is a concurrent promotion and our token was never
        # written.
        if exc.error_code != "TEMPORARILY_UNAVAILABLE" and not is_duplicate_row(exc):
            raise
        cause = exc.message.strip().splitlines()[0]  # SQLAlchemy's message goes on with the SQL and a link
        raise PromotionConflict(
            f"lost the race to promote {name}: a concurrent promotion wrote to the registry at the same instant "
            f"({cause})"
        ) from exc
    time.sleep(settle_s)  # let every caller that saw the lock free write its token; the last one written wins
    winner = client.get_registered_model(name).tags.get(LOCK_TAG)
    if winner != token:
        raise PromotionConflict(f"lost the race to promote {name}: {_describe(winner)} took the lock first")
    try:
        yield
    finally:
        if client.get_registered_model(name).tags.get(LOCK_TAG) == token:
            client.delete_registered_model_tag(name, LOCK_TAG)


def _expired(token: str, ttl_s: float) -> bool:
    try:
        return time.time() - float(token.split("|", 1)[0]) > ttl_s
    except ValueError:
        return True


def _describe(token: str | None) -> str:
    if not token:
        return "nobody"
    parts = token.split("|")
    return f"{parts[3]} by {parts[2]}" if len(parts) >= 4 else token


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"
