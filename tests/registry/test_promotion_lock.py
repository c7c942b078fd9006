"""The promotion lock on a real SQLite store: concurrent `promote` processes, a holder killed mid-promotion, and the
lock's own rules (a second taker refused, an expired lock taken over once, a late holder or taker changing nothing).
The same races against the team server, through a proxy that delays writes, are in tests/team."""

from __future__ import annotations

import getpass
import logging
import socket
import time

import pytest
from mlflow.exceptions import MlflowException

from registry import history
from registry.lock import Holder, PromotionConflict, _end, lock_name, promotion_lock, tombstone_name
from tests.helpers import job_env
from tests.registry import race
from tests.registry.conftest import state

ROUNDS = 20


# A minute or two on a quiet 2-core machine; far longer when other jobs load it (the default limit is 600 s).
@pytest.mark.timeout(1800)
def test_twenty_rounds_of_eight_concurrent_promotions_never_overlap_and_leave_one_production_version(
    settings, client, race_versions, promotion_race, tmp_path
):
    env = job_env(settings.tracking_uri)
    winners = []
    for round_ in range(ROUNDS):
        promotions = [race.Promotion(v, env, tmp_path, reason=f"round {round_}") for v in race_versions]
        winners += race.check_round(client, promotion_race.run_concurrently(promotions, f"round{round_}"))
    # Only the winners opened a promotion run; each records who promoted, from where.
    events = history.timeline(client, "race")
    assert len(events) == len(winners) >= ROUNDS
    assert {(e.who, e.host, e.gate) for e in events} == {(getpass.getuser(), socket.gethostname(), "skipped (force)")}


def test_a_promotion_killed_holding_the_lock_blocks_the_next_until_the_lock_expires(
    settings, client, race_versions, promotion_race, tmp_path
):
    env = job_env(settings.tracking_uri)
    victim = promotion_race.start(race.Promotion("1", env, tmp_path, lock_ttl_s=15, stop_before_move=True), "victim")
    victim.wait_until_stopped_before_move()  # the lock held, its run open, the registry not moved yet
    victim.kill()
    assert victim.finish().code is None
    before = state(client, "race")
    dead = Holder.from_tags(client.get_registered_model(lock_name("race")).tags)
    assert (dead.what, dead.who) == ("v1 -> Production", f"{getpass.getuser()} on {socket.gethostname()} (pid "
                                                           f"{victim.process.pid})")  # fmt: skip

    (early,) = promotion_race.run_concurrently([race.Promotion("2", env, tmp_path)], "early")
    assert early.code == 2 and early.last_line == (
        f"error: not promoted: another promotion of race is in progress ({dead.describe()})"
    )
    assert state(client, "race") == before

    time.sleep(max(dead.time_left(), 0) + 0.1)
    (after,) = promotion_race.run_concurrently([race.Promotion("2", env, tmp_path)], "after")
    assert after.code == 0, after.err[-3000:]
    versions, aliases = state(client, "race")
    assert ([v for v, stage in versions.items() if stage == "Production"], aliases) == (["2"], {"production": "2"})
    ended = client.get_registered_model(tombstone_name("race", dead.token))
    assert ended.description.startswith("Ended promotion lock of model race, not a model: v1 -> Production")
    assert "taken over after it expired by" in ended.description


def test_a_second_taker_is_refused_while_the_first_holds_and_release_leaves_a_tombstone(three_versions):
    client = three_versions
    with promotion_lock(client, "m", "v1 -> Production") as first:
        lock = client.get_registered_model(lock_name("m"))
        assert Holder.from_tags(lock.tags) == first
        assert lock.description.startswith("Promotion lock of model m, not a model: v1 -> Production, by ")
        refused = r"another promotion of m is in progress \(v1 -> Production by "
        with pytest.raises(PromotionConflict, match=refused), promotion_lock(client, "m", "v2 -> Staging"):
            pass
    assert _missing(client, lock_name("m"))
    ended = client.get_registered_model(tombstone_name("m", first.token))
    assert "; released at " in ended.description and ended.latest_versions == []


def test_an_expired_lock_is_taken_over_once_and_neither_its_late_holder_nor_a_late_taker_ends_the_new_one(
    three_versions, caplog
):
    client = three_versions
    stale_lock = promotion_lock(client, "m", "v1 -> Production", ttl_s=0.0)  # expired as soon as it is taken
    stale = stale_lock.__enter__()
    fresh_lock = promotion_lock(client, "m", "v2 -> Production")
    fresh = fresh_lock.__enter__()
    assert Holder.from_tags(client.get_registered_model(lock_name("m")).tags) == fresh
    assert client.get_registered_model(tombstone_name("m", stale.token))  # ended by the taker

    # A taker that read the stale token before the takeover and renames only now: the tombstone is in its way.
    assert _end(client, "m", stale, "a late taker") is False
    # The stale holder finishes late: its release finds another token and leaves it alone.
    with caplog.at_level(logging.WARNING, logger="registry.lock"):
        stale_lock.__exit__(None, None, None)
    assert "expired at" in caplog.text and "another promotion may have taken it over" in caplog.text
    assert Holder.from_tags(client.get_registered_model(lock_name("m")).tags) == fresh
    fresh_lock.__exit__(None, None, None)
    assert _missing(client, lock_name("m"))


def test_tombstones_are_kept_for_their_hour_then_removed_by_a_later_promotion(three_versions, monkeypatch):
    client = three_versions
    tokens = []
    for _ in range(2):
        with promotion_lock(client, "m", "v1 -> Staging") as held:
            tokens.append(held.token)
    assert not _missing(client, tombstone_name("m", tokens[0]))  # within its hour
    monkeypatch.setattr("registry.lock.TOMBSTONE_KEEP_S", 0.0)  # as if the hour had passed
    with promotion_lock(client, "m", "v1 -> Staging") as third:
        pass
    assert sorted(m.name for m in client.search_registered_models()) == ["m", tombstone_name("m", third.token)]


def _missing(client, name: str) -> bool:
    try:
        client.get_registered_model(name)
        return False
    except MlflowException as exc:
        assert exc.error_code == "RESOURCE_DOES_NOT_EXIST"
        return True
