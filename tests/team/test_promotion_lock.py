"""The promotion lock on the team server (PostgreSQL behind `mlflow server` with basic-auth), promoting as two
accounts an admin made: twenty rounds of eight concurrent promotions; the same race through a proxy that delays
registry writes by up to 3 s and makes stage transitions slow; a lock create whose answer was lost and sent again by
the client; a promotion of one account killed mid-way and its lock taken over by the other once it expired."""

from __future__ import annotations

import io
import re
import time
from contextlib import redirect_stdout
from dataclasses import replace

import mlflow
import pytest

from lifecycle.team import users
from registry import history
from registry.lock import Holder, lock_name, tombstone_name
from tests.registry import race
from tests.registry.conftest import state
from tests.team.conftest import register_versions, team_env
from tests.team.delaying_proxy import DelayingProxy

pytestmark = pytest.mark.e2e
EXPERIMENT, MODEL = "team-lock", "lockrace"
ACCOUNTS = ("carol", "dave")  # versions 1-4 are promoted as carol, 5-8 as dave
DELAYED_ROUNDS = 3  # each a few seconds per winner: its transition alone takes one to two
LOCK_TTL_S = 15  # the killed holder's: long enough to reach its registry move on a loaded machine


@pytest.fixture(scope="module")
def lock_race(team):
    """MODEL with eight versions, and the two accounts (`users create --edit-model`), with their passwords."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in team.env().items():
            if key.startswith("MLFLOW_"):
                patch.setenv(key, value)
        mlflow.set_tracking_uri(team.server.url)
        versions = register_versions(EXPERIMENT, MODEL, 8)
        passwords = {}
        for account in ACCOUNTS:
            printed = io.StringIO()
            with redirect_stdout(printed):
                users.main(["create", account, "--edit-experiment", EXPERIMENT, "--edit-model", MODEL])
            passwords[account] = re.search(r"shown this once: (\S+)", printed.getvalue()).group(1)
    return [str(v) for v in versions], passwords


@pytest.fixture
def team_race():
    """Promotion processes forked from one prepared process (tests/registry/race.py); none outlives the test."""
    with race.Race() as started:
        yield started


def _promotions(team, lock_race, workdir, reason: str, tracking_uri: str | None = None) -> list[race.Promotion]:
    versions, passwords = lock_race
    promotions = []
    for i, version in enumerate(versions):
        account = ACCOUNTS[i * len(ACCOUNTS) // len(versions)]
        env = team_env(team, account, passwords[account], MLFLOW_EXPERIMENT_NAME=EXPERIMENT)
        if tracking_uri:
            env["MLFLOW_TRACKING_URI"] = tracking_uri
        promotions.append(race.Promotion(version, env, workdir, model=MODEL, reason=reason))
    return promotions


def _race(team, admin_client, lock_race, started, workdir, rounds: int, tag: str, tracking_uri: str | None = None):
    winners = []
    for round_ in range(rounds):
        promotions = _promotions(team, lock_race, workdir, f"{tag} {round_}", tracking_uri)
        outcomes = started.run_concurrently(promotions, f"{tag}{round_}")
        winners += race.check_round(admin_client, outcomes, MODEL)
        last = max(winners, key=lambda o: o.held[1])
        promoted_by = admin_client.get_model_version(MODEL, last.version).tags["promoted_by"]
        assert promoted_by == ACCOUNTS[lock_race[0].index(last.version) * len(ACCOUNTS) // len(lock_race[0])]
    return winners


# A minute or two on a quiet 2-core machine; far longer when other jobs load it (the default limit is 600 s).
@pytest.mark.timeout(1800)
def test_twenty_rounds_of_eight_concurrent_promotions_as_two_accounts(
    team, admin_client, lock_race, team_race, tmp_path
):
    winners = _race(team, admin_client, lock_race, team_race, tmp_path, 20, "round")
    events = [e for e in history.timeline(admin_client, MODEL) if e.why.startswith("round ")]
    assert len(events) == len(winners) and {e.who for e in events} <= set(ACCOUNTS)


def test_delayed_registry_writes_and_slow_stage_transitions_never_let_two_promotions_hold_the_lock(
    team, admin_client, lock_race, team_race, tmp_path
):
    delays = {"max_delay_s": 3.0, "lock_share": 0.5, "other_share": 0.1, "transition_s": (1.0, 2.0)}
    with DelayingProxy(team.server.url, seed=23, **delays) as proxy:
        winners = _race(team, admin_client, lock_race, team_race, tmp_path, DELAYED_ROUNDS, "delayed", proxy.url)
    assert proxy.delayed >= len(winners) + 8 * DELAYED_ROUNDS // 2  # each transition, and lock writes by the dozen


def test_a_lock_create_whose_answer_was_lost_is_recognised_as_this_promotions_own(
    team, admin_client, lock_race, team_race, tmp_path
):
    with DelayingProxy(team.server.url, lose_first_lock_answer=True) as proxy:
        promotion = _promotions(team, lock_race, tmp_path, "lost answer", proxy.url)[0]
        (outcome,) = team_race.run_concurrently([promotion], "lost")
    assert outcome.code == 0, outcome.err[-3000:]
    assert proxy.lock_creates[0] == 200 and len(proxy.lock_creates) == 2  # made, answer lost, sent again: exists
    assert state(admin_client, MODEL)[1] == {"production": promotion.version}


def test_a_promotion_killed_holding_the_lock_is_taken_over_by_another_account_once_it_expires(
    team, admin_client, lock_race, team_race, tmp_path
):
    promotions = _promotions(team, lock_race, tmp_path, "after a crash")
    carol, dave = promotions[0], promotions[-1]
    victim = team_race.start(replace(carol, lock_ttl_s=LOCK_TTL_S, stop_before_move=True), "victim")
    victim.wait_until_stopped_before_move()
    victim.kill()
    assert victim.finish().code is None
    before = state(admin_client, MODEL)
    dead = Holder.from_tags(admin_client.get_registered_model(lock_name(MODEL)).tags)
    assert dead.who.startswith("carol on ")

    (early,) = team_race.run_concurrently([dave], "early")
    assert early.last_line == f"error: not promoted: another promotion of {MODEL} is in progress ({dead.describe()})"
    assert state(admin_client, MODEL) == before

    time.sleep(max(dead.time_left(), 0) + 0.1)
    (after,) = team_race.run_concurrently([dave], "after")
    assert after.code == 0, after.err[-3000:]
    assert state(admin_client, MODEL)[1] == {"production": dave.version}
    assert admin_client.get_model_version(MODEL, dave.version).tags["promoted_by"] == "dave"
    # Ended by dave's rename: carol's account, not dave's, keeps the rights on it (and removes it after its hour).
    ended = admin_client.get_registered_model(tombstone_name(MODEL, dead.token))
    assert ended.description.startswith(f"Promotion lock of model {MODEL}, not a model: v{carol.version} -> ")
