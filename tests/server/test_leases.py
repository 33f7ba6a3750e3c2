"""The leader/follower hand-off, decided tick by tick without threads or clocks.

:meth:`LeaderFollowers.tick` is the monitor's whole decision; these tests drive
it with a stand-in engine and forced interleavings of what leaders and demoted
threads do between two ticks, so a lost promotion or a runaway spawn shows up
deterministically instead of once in a while under load.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from fastserve._engine import Lease
from fastserve._workers import LeaderFollowers


class FakeEngine:
    """What LeaderFollowers reads and calls on the engine."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lease: Lease | None = Lease()
        self.stopping = False
        self.max_serving = 1
        self.demoted: list[Lease | None] = []

    def demote(self) -> None:
        self.demoted.append(self.lease)
        self.lease = None


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Any:
    engine = FakeEngine()
    p = LeaderFollowers(engine, max_threads=4, promote_after=0.01)  # type: ignore[arg-type]
    p.spawned = 0

    def spawn() -> None:  # a new thread would take engine.lease = Lease() when it runs
        p.threads += 1
        p.spawned += 1

    monkeypatch.setattr(p, "_spawn", spawn)
    p.threads = 1
    return p


def start_dispatch(lease: Lease) -> None:
    lease.dispatches += 1
    lease.busy = True


def end_dispatch(lease: Lease) -> None:
    lease.busy = False


def new_leader(pool: Any) -> Lease:
    lease = Lease()
    pool.engine.lease = lease
    return lease


def test_sets_the_engines_serving_bound(pool: Any) -> None:
    assert pool.engine.max_serving == 4


def test_idle_leader_is_never_replaced(pool: Any) -> None:
    for _ in range(100):
        pool.tick()
    assert pool.spawned == 0 and pool.engine.demoted == []


def test_quick_requests_are_never_handed_off(pool: Any) -> None:
    lease = pool.engine.lease
    for _ in range(100):
        start_dispatch(lease)  # a new request between every two ticks...
        pool.tick()  # ...and the tick may land inside it
    assert pool.spawned == 0


def test_a_leader_stuck_for_a_whole_tick_is_replaced_once(pool: Any) -> None:
    lease = pool.engine.lease
    start_dispatch(lease)
    pool.tick()  # first sight of this dispatch
    assert pool.spawned == 0
    pool.tick()  # same dispatch a tick later: promote
    assert pool.spawned == 1 and pool.engine.demoted == [lease]
    assert pool.engine.lease is None


def test_one_long_request_costs_one_extra_thread(pool: Any) -> None:
    old = pool.engine.lease
    start_dispatch(old)
    pool.tick()
    pool.tick()
    leader = new_leader(pool)  # the promoted thread leads and waits in the poller
    for _ in range(2000):  # 20 s of ticks while the old request keeps running
        pool.tick()
    assert pool.spawned == 1
    assert old.busy and not leader.busy


def test_a_demoted_thread_finishing_cannot_hide_a_stuck_leader(pool: Any) -> None:
    """The lost promotion: the old leader finishes *after* the new leader got
    stuck; with engine-wide fields its "not busy" erased the new leader's."""
    old = pool.engine.lease
    start_dispatch(old)
    pool.tick()
    pool.tick()
    assert pool.spawned == 1
    leader = new_leader(pool)
    pool.tick()
    start_dispatch(leader)  # the new leader enters a slow request
    pool.tick()
    end_dispatch(old)  # the demoted thread finishes its request now
    pool.tick()
    assert pool.spawned == 2 and pool.engine.demoted[-1] is leader


def test_a_leader_that_moves_on_during_the_decision_is_left_alone(pool: Any) -> None:
    lease = pool.engine.lease
    start_dispatch(lease)
    seen = lease.dispatches
    end_dispatch(lease)
    start_dispatch(lease)  # between the monitor's read and its lock
    pool._promote(lease, seen)
    assert pool.spawned == 0 and pool.engine.demoted == []


def test_an_idle_follower_is_woken_before_a_thread_is_spawned(pool: Any) -> None:
    pool.idle = 1
    lease = pool.engine.lease
    start_dispatch(lease)
    pool.tick()
    pool.tick()
    assert pool.spawned == 0 and pool.idle == 0
    assert pool._sem.acquire(blocking=False)  # the follower's wake-up is there


def test_at_the_cap_one_more_thread_may_lead_then_none(pool: Any) -> None:
    pool.threads = 4  # max_threads serve
    lease = pool.engine.lease
    start_dispatch(lease)
    pool.tick()
    pool.tick()
    assert pool.spawned == 1  # the poller-only leader
    leader = new_leader(pool)
    start_dispatch(leader)  # (it never serves at the cap; forced here)
    pool.tick()
    pool.tick()
    assert pool.spawned == 1 and pool.engine.lease is leader


def test_no_promotion_while_stopping(pool: Any) -> None:
    lease = pool.engine.lease
    start_dispatch(lease)
    pool.tick()
    pool.engine.stopping = True
    pool.tick()
    assert pool.spawned == 0
