"""Two fastserve instances as one nginx upstream group (``docs/nginx.md``, "Several instances").

Requests are spread over both; one instance stopped with SIGTERM while clients
keep sending finishes the requests it has, refuses new connections - nginx sends
those to the other instance - and no request is lost or served twice.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections import Counter

import pytest
from nginx_helpers import Fastserve, Nginx, Processes, wait_for

pytestmark = [pytest.mark.live, pytest.mark.nginx, pytest.mark.timeout(120)]

SLOW = 0.3  # seconds each request of the stop test spends in the app


@pytest.fixture
def group(processes: Processes) -> tuple[Nginx, Fastserve, Fastserve]:
    first, second = processes.fastserve(), processes.fastserve()
    return processes.nginx(first, second), first, second


def test_requests_spread_over_both_instances(group: tuple[Nginx, Fastserve, Fastserve]) -> None:
    nginx, first, second = group
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20)
    try:
        served = []
        for i in range(20):
            conn.request("GET", f"/spread/{i}")
            response = conn.getresponse()
            assert response.status == 200
            served.append(json.loads(response.read())["instance"])
    finally:
        conn.close()
    counts = Counter(served)
    assert set(counts) == {first.name, second.name}
    assert min(counts.values()) >= 5, counts  # round robin: 10 and 10
    assert len(first.calls()) + len(second.calls()) == 20


class Clients:
    """Client threads that send ``GET /slow/...`` through nginx until stopped.

    Each request has a unique target; ``answers`` maps it to the instance that
    answered, ``failures`` lists everything that was not a 200.
    """

    def __init__(self, nginx: Nginx, count: int) -> None:
        self.nginx = nginx
        self.answers: dict[str, str] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.nginx.port, timeout=30)
        try:
            i = 0
            while not self._stop.is_set():
                target = f"/slow/{SLOW}/{n}-{i}"
                i += 1
                try:
                    conn.request("GET", target)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"{target}: {exc!r}")
                    conn.close()
                    continue
                if response.status != 200:
                    self.failures.append(f"{target}: {response.status} {body!r}")
                else:
                    self.answers[target] = json.loads(body)["instance"]
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self._threads)


def test_one_instance_stopped_gracefully_loses_no_request(
    group: tuple[Nginx, Fastserve, Fastserve],
) -> None:
    nginx, stopped, kept = group
    clients = Clients(nginx, 4)
    try:
        wait_for(lambda: len(stopped.calls()) >= 3 and len(kept.calls()) >= 3, "both to serve")
        # Signal while a request has just entered the stopping instance's app.
        wait_for(
            lambda: time.time() - stopped.calls()[-1]["started"] < SLOW / 3,
            "a request to start in the instance to stop",
        )
        signalled = time.time()
        stopped.terminate()
        assert stopped.proc.wait(20) == -signal.SIGTERM, stopped.log()
        after = len(kept.calls())
        wait_for(lambda: len(kept.calls()) >= after + 8, "the other instance to serve on")
    finally:
        clients.stop()
    assert clients.failures == []
    # Every request answered 200 was served by exactly one instance, once.
    served = Counter(call["uri"] for server in (stopped, kept) for call in server.calls())
    assert served == Counter(list(clients.answers))
    assert {clients.answers[c["uri"]] for c in kept.calls()} == {kept.name}
    # The stopping instance finished the request(s) it was running when signalled.
    in_flight = [c for c in stopped.calls() if c["started"] < signalled < c["started"] + SLOW]
    assert in_flight, "no request was in flight when the instance was signalled"
    assert all(clients.answers[c["uri"]] == stopped.name for c in in_flight)
    statuses = Counter(entry["status"] for entry in nginx.access_log())
    assert statuses == Counter({"200": len(clients.answers)})
