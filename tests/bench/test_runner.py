"""The runner's bookkeeping with servers that cannot start: failures, retries, rotation."""

from __future__ import annotations

import sys

import pytest

from fastserve._bench.apps import HELLO_SPEC
from fastserve._bench.drivers import BundledDriver
from fastserve._bench.runner import Plan, Progress, run
from fastserve._bench.scenarios import parse_scenarios
from fastserve._bench.servers import Server

pytestmark = pytest.mark.live


def broken(name: str, starts: list[str]) -> Server:
    """A server whose process exits at once, after noting that it was started."""

    def command(port: int) -> list[str]:
        starts.append(name)
        return [sys.executable, "-c", f"import sys; sys.exit('{name} cannot start')"]

    return Server(name, "fastserve", command)


def test_a_server_that_does_not_start_is_tried_twice_then_recorded_once() -> None:
    starts: list[str] = []
    events: list[Progress] = []
    plan = Plan(
        [broken("a", starts), broken("b", starts)], parse_scenarios("ka2,close2"), 2, 0.1, 0,
        HELLO_SPEC,
    )  # fmt: skip
    results = run(plan, BundledDriver(1), events.append)
    # two tries in the first round, none in the second
    assert starts == ["a", "a", "b", "b"]
    assert set(results.failures) == {("a", "ka2"), ("a", "close2"), ("b", "ka2"), ("b", "close2")}
    assert "a cannot start" in results.failures[("a", "ka2")]
    assert results.cells == {"a": {}, "b": {}}
    # every cell is reported, in rounds whose server order rotates
    assert [e.done for e in events] == list(range(1, 9))
    assert all(e.total == 8 and e.measurement is None and e.error for e in events)
    assert [e.server for e in events] == ["a", "a", "b", "b", "b", "b", "a", "a"]
    assert [e.round for e in events] == [0, 0, 0, 0, 1, 1, 1, 1]
