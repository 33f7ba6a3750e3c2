"""The bundled load generator (and its driver) against a canned-response server on loopback.

The server answers every request with fixed bytes, so each test knows what
the generator must count: responses framed by Content-Length, by chunked
encoding or by the close of the connection, error statuses, refused
connections and a server that never answers.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fastserve._bench.drivers import BundledDriver, run_child
from fastserve._bench.loadgen import Histogram, LoadResult, build_request, run_load
from fastserve._bench.scenarios import Scenario
from fastserve._bench.servers import keeps_alive, listen_queue

pytestmark = pytest.mark.live

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"  # a chunk extension and a trailer
)
CLOSE_DELIMITED = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nerr"


@contextmanager
def canned_server(response: bytes | None) -> Iterator[tuple[int, dict[str, int]]]:
    """A loopback server answering each request with ``response`` (``None``: never answer).

    Yields its port and its counts of ``requests`` read and ``connections`` accepted.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen = {"requests": 0, "connections": 0}
    stop = threading.Event()
    lock = threading.Lock()

    def handle(conn: socket.socket) -> None:
        buf = b""
        with conn:
            while not stop.is_set():
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[length:]
                with lock:
                    seen["requests"] += 1
                if response is None:
                    stop.wait(30)
                    return
                conn.sendall(response)
                if response is CLOSE_DELIMITED or b"connection: close" in head.lower():
                    return

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with lock:
                seen["connections"] += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield port, seen
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize(
    "response",
    [OK, CHUNKED, CLOSE_DELIMITED],
    ids=["content-length", "chunked-with-trailer", "close-delimited"],
)
def test_every_framing_is_read_to_its_end(response: bytes) -> None:
    with canned_server(response) as (port, seen):
        result = run_load(port, build_request(port), 4, 0.5)
    assert result.requests > 0
    assert result.errors == {"connect": 0, "read": 0, "timeout": 0, "status": 0}
    # the server read at most the requests answered plus one in flight per connection
    assert result.requests <= seen["requests"] <= result.requests + 4


def test_keep_alive_reuses_connections_and_close_does_not() -> None:
    with canned_server(OK) as (port, seen):
        kept = run_load(port, build_request(port), 2, 0.3)
        assert seen["connections"] == 2 and kept.requests > 2
    with canned_server(OK) as (port, seen):
        closed = run_load(port, build_request(port, close=True), 2, 0.3, close=True)
        assert closed.requests > 2 and seen["connections"] >= closed.requests


def test_error_statuses_are_counted_as_requests_and_errors() -> None:
    with canned_server(ERROR) as (port, _):
        result = run_load(port, build_request(port), 2, 0.3)
    assert result.requests > 0
    assert result.errors["status"] == result.requests


def test_refused_connections_are_connect_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        result = run_load(port, build_request(port), 2, 0.3)
    assert result.requests == 0
    assert result.errors["connect"] >= 2
    # retried after a pause, not in a busy loop
    assert result.errors["connect"] < 2 * 0.3 / 0.01 + 10


def test_a_server_that_never_answers_gives_timeouts() -> None:
    with canned_server(None) as (port, _):
        result = run_load(port, build_request(port), 2, 1.0, timeout=0.3)
    assert result.requests == 0
    assert result.errors["timeout"] >= 2


def test_a_post_body_is_sent_whole() -> None:
    with canned_server(OK) as (port, seen):
        request = build_request(port, "/upload", body_size=200_000)
        result = run_load(port, request, 2, 0.5)
    assert request.startswith(b"POST /upload HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 200000\r\n" in request
    assert result.requests > 0 and result.errors["read"] == 0
    assert seen["requests"] >= result.requests


def test_histogram_quantiles_and_merge() -> None:
    a, b = Histogram(), Histogram()
    for ms in range(1, 101):
        (a if ms % 2 else b).add(ms / 1000)
    a.merge(b)
    assert sum(a.counts.values()) == 100
    assert a.quantile(0.5) == pytest.approx(0.050, rel=0.03)
    assert a.quantile(0.99) == pytest.approx(0.099, rel=0.03)
    assert Histogram().quantile(0.5) != Histogram().quantile(0.5)  # NaN when empty


def test_result_round_trips_through_json() -> None:
    hist = Histogram()
    hist.add(0.002)
    result = LoadResult(7, {"connect": 1, "read": 0, "timeout": 2, "status": 0}, 1.5, hist)
    again = LoadResult.from_json(result.to_json())
    assert again == result


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc/net/tcp")
def test_listen_queue_counts_connections_not_yet_accepted() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        port = listener.getsockname()[1]
        assert listen_queue(port) == 0
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            deadline = time.monotonic() + 10
            while listen_queue(port) != 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert listen_queue(port) == 3
            conn, _ = listener.accept()
            conn.close()
            assert listen_queue(port) == 2
        finally:
            for c in clients:
                c.close()


def test_run_child_measures_the_childs_own_cpu() -> None:
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    status, out, _, cpu, wall = run_child([sys.executable, "-c", busy + "\nprint('done')"], 60)
    assert (status, out.strip()) == (0, "done")
    assert 0.3 <= cpu <= wall
    status, _, _, cpu, _ = run_child([sys.executable, "-c", "import time; time.sleep(0.3)"], 60)
    assert status == 0 and cpu < 0.25


def test_run_child_kills_a_child_past_its_timeout() -> None:
    start = time.monotonic()
    status, _, _, _, _ = run_child([sys.executable, "-c", "import time; time.sleep(60)"], 0.5)
    assert status == -signal.SIGKILL and time.monotonic() - start < 30


def test_the_bundled_driver_reports_rate_latency_and_its_own_cpu() -> None:
    driver = BundledDriver(processes=2)
    with canned_server(OK) as (port, seen):
        m = driver.measure(port, Scenario("ka", 3), "/", 0.5)
    assert m.requests > 0 and m.errors == 0 and m.rps > 0
    assert 0 < m.p50_ms <= m.p99_ms
    assert m.client_threads == 2 and m.client_cpu > 0
    assert seen["connections"] == 3  # split 2 + 1 between the processes


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (OK, True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nconnection:  Close\r\nContent-Length: 2\r\n\r\nok", False),
        (CLOSE_DELIMITED, False),
    ],
    ids=["http11", "connection-close", "connection-close-lowercase", "http10"],
)
def test_keeps_alive_reads_the_response_head(response: bytes, expected: bool) -> None:
    with canned_server(response) as (port, _):
        assert keeps_alive(port) is expected
