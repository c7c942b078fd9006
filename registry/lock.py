"""One promotion of a model at a time, on every store the project supports (SQLite, PostgreSQL, a tracking server
with or without basic-auth): the lock is a registered model named `<model>.promotion-lock`, and taking it is
creating it. Every store refuses a second registered model of one name atomically, and the holder's token is written
by that same create, so two promotions can never both hold it, however late their requests land.

Releasing renames the lock to a tombstone named for its token (`<model>.promotion-lock.ended.<token>`). A holder
that died leaves its lock until it expires; the next promotion then ends it by the same rename and creates its own.
A rename fails when its target exists, so of the holder and every taker of one expired token exactly one ends it,
and a late request (a client's retry, a slow taker) finds the tombstone there and changes nothing. Tombstones are
kept an hour for that, then removed by a later promotion.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from common.errors import UserInputError
from common.registry_lookup import registry_writer
from common.tracking import is_duplicate_row
from common.tracking_errors import tracking_user
from registry.promoter import host, promoter

_logger = logging.getLogger(__name__)

DEFAULT_TTL_S = 1800.0  # longer than any promotion, gate included; a dead holder blocks promotions this long
TOMBSTONE_KEEP_S = 3600.0  # longer than the client's retries of one request (eight tries of up to 120 s each)
LEGACY_LOCK_TAG = "lifecycle.promotion_lock"  # the model tag earlier versions used as a lock; removed on sight
_TAGS = {"token": "lifecycle.lock.token", "expires_at": "lifecycle.lock.expires_at",
         "who": "lifecycle.lock.holder", "what": "lifecycle.lock.promotion"}  # fmt: skip
# The other side of a race: the name exists or is gone by the time the store looks; SQLite is locked.
_RACE_CODES = ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "TEMPORARILY_UNAVAILABLE")
_ATTEMPTS = 5


class PromotionConflict(Exception):
    """Another promotion of the same model holds the lock."""


def lock_name(model: str) -> str:
    return f"{model}.promotion-lock"


def tombstone_name(model: str, token: str) -> str:
    return f"{model}.promotion-lock.ended.{token}"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, for what, and until when (seconds since the epoch, by the holder's clock)."""

    token: str
    expires_at: float
    who: str
    what: str
    ttl_s: float = field(default=0.0, compare=False)  # known to the holder only

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Holder:
        try:
            expires_at = float(tags.get(_TAGS["expires_at"], ""))
        except ValueError:
            expires_at = 0.0  # not written by this module: nothing waits for it
        token, who, what = (tags.get(_TAGS[key], "unknown") for key in ("token", "who", "what"))
        return cls(token, expires_at, who, what)

    def tags(self) -> dict[str, str]:
        return {_TAGS["token"]: self.token, _TAGS["expires_at"]: f"{self.expires_at:.3f}",
                _TAGS["who"]: self.who, _TAGS["what"]: self.what}  # fmt: skip

    def time_left(self) -> float:
        return self.expires_at - time.time()

    def describe(self) -> str:
        return f"{self.what} by {self.who}, lock expires {_iso(self.expires_at)}"

    def require_time_left(self, model: str, seconds: float) -> None:
        """Before the registry moves: a gate that ran past most of the lock's time must not write after it
        expires, when another promotion may have taken it over."""
        if self.time_left() < seconds:
            raise PromotionConflict(
                f"the promotion lock of {model} expires at {_iso(self.expires_at)}, too soon to move the registry "
                "safely (what ran before the move took most of its time); nothing was changed, try again"
            )


@contextmanager
def promotion_lock(client: MlflowClient, model: str, what: str, ttl_s: float = DEFAULT_TTL_S) -> Iterator[Holder]:
    """Hold the promotion lock of `model` for the `with` body, or raise PromotionConflict naming who holds it."""
    _require_edit(client, model)
    who = f"{promoter()} on {host()} (pid {os.getpid()})"
    mine = Holder(uuid.uuid4().hex[:16], round(time.time() + ttl_s, 3), who, what, ttl_s)  # as its tag says
    _take(client, model, mine)
    try:
        _remove_old_tombstones(client, model)
        yield mine
    finally:
        _release(client, model, mine)


def _require_edit(client: MlflowClient, model: str) -> None:
    """Deleting a tag needs EDIT on the model; this one is absent (or an old lock left behind), so nothing of the
    model changes: a user who may not promote it is told so before anything is created."""
    try:
        # Here and on the lock: registry_writer, without MlflowClient's read of the model before each write (a prompt
        # check, a request more; the lock is no prompt, and the stage transition keeps its check).
        registry_writer(client).delete_registered_model_tag(model, LEGACY_LOCK_TAG)
    except MlflowException as exc:
        if exc.error_code == "PERMISSION_DENIED":
            raise UserInputError(f"permission denied: {tracking_user()} cannot change model {model}") from exc
        raise


def _take(client: MlflowClient, model: str, mine: Holder) -> None:
    name = lock_name(model)
    for _ in range(_ATTEMPTS):
        try:
            client.create_registered_model(name, tags=mine.tags(), description=_lock_description(model, mine))
            return
        except MlflowException as exc:
            if exc.error_code == "PERMISSION_DENIED":
                raise UserInputError(
                    f"permission denied: {tracking_user()} cannot create the promotion lock {name} (a registered "
                    "model); an admin can grant it"
                ) from exc
            if exc.error_code not in _RACE_CODES and not is_duplicate_row(exc):
                if _landed(client, name, mine):
                    return  # a timeout or a lost answer, after the create had landed all the same
                _logger.warning("if the promotion lock %s was made all the same, it expires at %s", name,
                                _iso(mine.expires_at))  # fmt: skip
                raise
        current = _holder(client, name)
        if current is None:
            continue  # released between our create and our look
        if current.token == mine.token:
            return  # our create landed; the client sent it again after a lost answer and met our own lock
        if current.time_left() > 0:
            raise PromotionConflict(f"another promotion of {model} is in progress ({current.describe()})")
        _end(client, model, current, f"taken over after it expired by {mine.who}")
    raise PromotionConflict(
        f"another promotion of {model} is in progress (other promotions took the lock each of the {_ATTEMPTS} "
        "times this one tried)"
    )


def _holder(client: MlflowClient, name: str) -> Holder | None:
    try:
        return Holder.from_tags(client.get_registered_model(name).tags)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _landed(client: MlflowClient, name: str, mine: Holder) -> bool:
    try:
        current = _holder(client, name)
    except MlflowException:
        return False  # the store cannot be read either: the create's own error says why
    return current is not None and current.token == mine.token


def _end(client: MlflowClient, model: str, holder: Holder, how: str) -> bool:
    """Rename `holder`'s lock to its tombstone; False when the holder or another taker ended it first."""
    name, tombstone = lock_name(model), tombstone_name(model, holder.token)
    try:
        registry_writer(client).rename_registered_model(name, tombstone)
    except MlflowException as exc:
        if exc.error_code == "PERMISSION_DENIED":
            raise UserInputError(
                f"the promotion lock of {model} ({holder.describe()}) has expired, but {tracking_user()} may not "
                f"take it over: only its account or an admin may, or an admin grants it with `python -m "
                f"lifecycle.team.users grant {tracking_user()} --edit-model {model}`"
            ) from exc
        # Ended by someone else: the tombstone exists, the lock is gone, or (PostgreSQL) another rename of the row
        # committed while this one waited for it ("expected to update 1 row(s); 0 were matched"). Nothing changed.
        if exc.error_code in _RACE_CODES or is_duplicate_row(exc) or "0 were matched" in exc.message:
            _logger.debug("the lock %s was ended by another promotion: %s", name, exc.message.splitlines()[0])
            return False
        raise
    try:  # what the tombstone is, for whoever finds it in the model list; the rename alone is what counts
        description = _tombstone_description(model, holder, how)
        registry_writer(client).update_registered_model(tombstone, description=description)
    except MlflowException as exc:
        _logger.debug("could not describe %s: %s", tombstone, exc.message.splitlines()[0])
    return True


def _release(client: MlflowClient, model: str, mine: Holder) -> None:
    try:
        for _ in range(_ATTEMPTS):
            current = _holder(client, lock_name(model))
            if current is None or current.token != mine.token:  # ended: by a rename of ours whose answer was lost,
                if mine.time_left() <= 0:  # or, once it expired, by a taker
                    _logger.warning("the promotion lock of %s expired at %s while this promotion ran; another "
                                    "promotion may have taken it over", model, _iso(mine.expires_at))  # fmt: skip
                return
            if _end(client, model, mine, "released"):
                return
            time.sleep(0.2)  # the rename did not happen (SQLite was locked): the lock is still ours, again
        raise MlflowException(f"the lock stayed in place after {_ATTEMPTS} renames")
    except MlflowException as exc:
        _logger.warning("could not release the promotion lock of %s (%s); it expires at %s", model,
                        exc.message.splitlines()[0], _iso(mine.expires_at))  # fmt: skip


def _remove_old_tombstones(client: MlflowClient, model: str) -> None:
    """Tombstones past their hour, those this account may delete (basic-auth: its own); the rest wait."""
    prefix = tombstone_name(model, "")
    pattern = prefix.replace("'", "_").replace("%", "_")  # LIKE's one-character wildcard; names checked below
    cutoff_ms = (time.time() - TOMBSTONE_KEEP_S) * 1000
    try:
        found = client.search_registered_models(f"name LIKE '{pattern}%'", max_results=100)
        for entity in found:
            if entity.name.startswith(prefix) and (entity.last_updated_timestamp or 0) < cutoff_ms:
                try:
                    client.delete_registered_model(entity.name)
                except MlflowException as exc:
                    _logger.debug("left %s: %s", entity.name, exc.message.splitlines()[0])
    except MlflowException as exc:
        _logger.debug("did not look for old tombstones of %s: %s", model, exc.message.splitlines()[0])


def _lock_description(model: str, holder: Holder) -> str:
    return (
        f"Promotion lock of model {model}, not a model: {holder.what}, by {holder.who}, since {_iso(time.time())}. "
        f"It ends when that promotion ends; if the promotion died, it expires at {_iso(holder.expires_at)} and the "
        f"next promotion of {model} takes it over."
    )


def _tombstone_description(model: str, holder: Holder, how: str) -> str:
    return (
        f"Ended promotion lock of model {model}, not a model: {holder.what}, by {holder.who}; {how} at "
        f"{_iso(time.time())}. Kept for an hour so that a late request cannot take its name again; a later "
        f"promotion of {model} removes it."
    )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
