"""Interleaved rounds: every server, every cell, ``rounds`` times.

Flow of :func:`run`:

1. each round starts the servers one after another, in an order rotated by
   one place every round (so no server always runs first, or right after the
   heaviest one);
2. a server is started once per app its scenarios need (the app under test,
   or the Flask app of the ``flask`` scenarios), waited for until it answers,
   and stopped after its cells;
3. each cell gets a warm-up by the bundled load generator, in this process
   (threads started, code paths hot), then the driver's measurement, with
   the server's process-group CPU read before and after and its listen
   queue sampled meanwhile (connections it never accepted);
4. a server that does not start (twice, on two ports), or a cell whose
   driver fails, is recorded with the reason and not tried again in later
   rounds.

The caller gets a :class:`Progress` after every cell and the
:class:`Results` at the end; medians and ratios are ``report.py``'s.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from .drivers import Driver, Measurement
from .loadgen import build_request, run_load
from .scenarios import Scenario
from .servers import RunningServer, Server, keeps_alive, listen_queue

__all__ = ["Plan", "Progress", "Results", "run"]

#: seconds a cell costs beyond its warm-up and measurement (the driver's start, CPU reads)
STEP_OVERHEAD: Final = 0.3
#: seconds to start a server and stop it again
START_OVERHEAD: Final = 1.0


@dataclass(frozen=True)
class Plan:
    """What to measure.

    :param target: the ``module:app`` under test.
    :param path: the request path.
    :param cwd: the directory the servers run in (the user's modules import from it).
    """

    servers: Sequence[Server]
    scenarios: Sequence[Scenario]
    rounds: int
    duration: float
    warmup: float
    target: str
    path: str = "/"
    cwd: str | None = None

    @property
    def cells(self) -> int:
        return self.rounds * len(self.servers) * len(self.scenarios)

    def estimate(self, whole_seconds: bool) -> float:
        """Roughly how long the run takes, in seconds.

        :param whole_seconds: the driver measures whole seconds only (wrk).
        """
        measured = max(1, math.ceil(self.duration)) if whole_seconds else self.duration
        starts = self.rounds * len(self.servers) * len(_groups(self))
        return self.cells * (self.warmup + measured + STEP_OVERHEAD) + starts * START_OVERHEAD


@dataclass
class Progress:
    """Where a run is, after a cell."""

    done: int
    total: int
    round: int
    server: str
    scenario: Scenario
    measurement: Measurement | None
    error: str | None
    elapsed: float

    @property
    def remaining(self) -> float:
        """Seconds left, estimated from the cells so far."""
        return self.elapsed / self.done * (self.total - self.done) if self.done else 0.0


@dataclass
class Results:
    """Every measurement, by server name and scenario key; and what failed, with why."""

    servers: list[str]
    scenarios: list[Scenario]
    cells: dict[str, dict[str, list[Measurement]]] = field(default_factory=dict)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)


def _groups(plan: Plan) -> list[tuple[str, list[Scenario]]]:
    """The plan's scenarios grouped by the app they are served, in first-use order."""
    groups: dict[str, list[Scenario]] = {}
    for scenario in plan.scenarios:
        groups.setdefault(scenario.app_spec(plan.target), []).append(scenario)
    return list(groups.items())


def run(
    plan: Plan, driver: Driver, progress: Callable[[Progress], None] = lambda p: None
) -> Results:
    """Measure every cell of ``plan`` ``plan.rounds`` times with ``driver``."""
    results = Results([s.name for s in plan.servers], list(plan.scenarios))
    for server in plan.servers:
        results.cells[server.name] = {}
    servers = list(plan.servers)
    done, start = 0, time.monotonic()

    def report(rnd: int, server: Server, scenario: Scenario, m: Measurement | None) -> None:
        nonlocal done
        done += 1
        error = results.failures.get((server.name, scenario.key)) if m is None else None
        progress(
            Progress(done, plan.cells, rnd, server.name, scenario, m, error,
                     time.monotonic() - start)
        )  # fmt: skip

    for rnd in range(plan.rounds):
        shift = rnd % len(servers) if servers else 0
        for server in servers[shift:] + servers[:shift]:
            for app_spec, scenarios in _groups(plan):
                todo = [s for s in scenarios if (server.name, s.key) not in results.failures]
                for scenario in scenarios:
                    if scenario not in todo:
                        report(rnd, server, scenario, None)
                if not todo:
                    continue
                try:
                    running = _start(server, app_spec, plan)
                except RuntimeError as exc:
                    for scenario in todo:
                        results.failures[(server.name, scenario.key)] = str(exc)
                        report(rnd, server, scenario, None)
                    continue
                with running:
                    for scenario in todo:
                        try:
                            m = _cell(running, driver, scenario, plan)
                        except (RuntimeError, ValueError, OSError) as exc:
                            results.failures[(server.name, scenario.key)] = str(exc)
                            report(rnd, server, scenario, None)
                            continue
                        results.cells[server.name].setdefault(scenario.key, []).append(m)
                        report(rnd, server, scenario, m)
    return results


def _start(server: Server, app_spec: str, plan: Plan) -> RunningServer:
    """``server`` serving ``app_spec``, answering; tried twice, on two ports.

    The free port is chosen before the server binds it, so another program may take it first.
    """
    for attempt in (1, 2):
        running = RunningServer(server, app_spec, plan.cwd)
        try:
            running.wait_ready(plan.path)
            running.keeps_alive = keeps_alive(running.port, plan.path)
            return running
        except (RuntimeError, OSError):
            running.stop()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _cell(running: RunningServer, driver: Driver, scenario: Scenario, plan: Plan) -> Measurement:
    if plan.warmup > 0:
        request = build_request(
            running.port, plan.path, close=scenario.close, body_size=scenario.body_size
        )
        run_load(running.port, request, scenario.connections, plan.warmup, close=scenario.close)
    queue = _QueueSampler(running.port)
    before, t0 = running.cpu_seconds(), time.perf_counter()
    try:
        m = driver.measure(running.port, scenario, plan.path, plan.duration)
    finally:
        waiting = queue.stop()
    after, wall = running.cpu_seconds(), time.perf_counter() - t0
    if before is not None and after is not None:
        m.server_cpu = (after - before) / wall
    if not scenario.close and running.keeps_alive:
        # with keep-alive every connection opens at the start: one still queued
        # later was never served (where connections close after each response,
        # as with Connection: close, a queue is the normal churn)
        m.unaccepted = waiting
    if running.exited():
        raise RuntimeError(f"the server exited during the cell: {running.output()}")
    return m


class _QueueSampler:
    """Samples the server's listen queue every 0.2 s from a thread (see ``listen_queue``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            n = listen_queue(self.port)
            if n is None:
                return
            self.samples.append(n)

    def stop(self) -> int | None:
        """The median queue length over the second half of the samples (None: no /proc)."""
        self._stop.set()
        self._thread.join(5)
        late = self.samples[len(self.samples) // 2 :]
        return int(statistics.median(late)) if late else None
