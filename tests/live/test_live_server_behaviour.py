"""Server behaviour seen from real clients: concurrency, parked connections, response checks,
signals."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable

import pytest
from live_helpers import LiveServer, recv_until_closed

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def test_slow_request_does_not_block_others(server: LiveServer) -> None:
    """threaded=True: a request holding its thread (a long poll) leaves the others served."""
    blocked: list[object] = []

    def long_poll() -> None:
        blocked.append(server.json("/block", timeout=60))

    t = threading.Thread(target=long_poll)
    t.start()
    try:
        conn = server.connect()
        try:
            for i in range(5):
                conn.request("GET", f"/meanwhile/{i}")
                assert json.loads(conn.getresponse().read())["path"] == f"/meanwhile/{i}"
        finally:
            conn.close()
        assert blocked == []  # still held
    finally:
        server.json("/release")
        t.join(30)
    assert blocked == [{"released": True}]


def test_idle_keep_alive_connections_hold_no_threads(server: LiveServer) -> None:
    """Idle keep-alive connections are parked in the poller, not one thread each."""
    baseline = server.json("/threads")["threads"]
    conns: list[http.client.HTTPConnection] = []
    try:
        for i in range(200):
            conn = server.connect()
            conn.request("GET", f"/idle/{i}")
            response = conn.getresponse()
            response.read()
            assert not response.will_close
            conns.append(conn)
        threads = server.json("/threads")["threads"]
        # every connection is still open and usable
        conns[0].request("GET", "/idle/again")
        assert json.loads(conns[0].getresponse().read())["path"] == "/idle/again"
    finally:
        for conn in conns:
            conn.close()
    assert threads < baseline + 50, (baseline, threads)


def test_response_header_with_crlf_is_refused(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /badheader HTTP/1.1\r\nHost: t\r\n\r\n")
        response = recv_until_closed(sock)
    head = response.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"Injected" not in response
    assert server.json("/after-bad-header")["path"] == "/after-bad-header"


def test_short_body_closes_the_connection(server: LiveServer) -> None:
    """The app sends less than its Content-Length: the client sees the truncation."""
    conn = server.connect()
    try:
        conn.request("GET", "/short")
        response = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
        assert excinfo.value.partial == b"12345"
    finally:
        conn.close()


def test_long_body_never_leaks_into_the_next_response(server: LiveServer) -> None:
    """The app sends more than its Content-Length: nothing past it reaches the client as if
    it were the next response."""
    with server.raw_socket() as sock:
        sock.sendall(b"GET /long HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        response = recv_until_closed(sock)
    head, _, rest = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 3" in head
    assert rest[:3] == b"too"
    assert rest[3:] == b"" or rest[3:].startswith(b"HTTP/1.1 200 OK\r\n"), rest


def test_write_callable(server: LiveServer) -> None:
    status, _, body = server.request("/write")
    assert (status, body) == (200, b"via write+iterable")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_server_with_open_connections(
    start_server: Callable[..., LiveServer], signum: signal.Signals
) -> None:
    """Ctrl+C / SIGTERM stop the server even with parked connections and a request in flight."""
    server = start_server("echo")
    idle = server.connect()
    idle.request("GET", "/parked")
    idle.getresponse().read()
    in_flight = server.raw_socket()
    in_flight.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
    try:
        server.wait_for_log("GET /parked")
        server.proc.send_signal(signum)
        returncode = server.proc.wait(timeout=15)
    finally:
        idle.close()
        in_flight.close()
    # SIGINT: werkzeug's serve_forever swallows KeyboardInterrupt (exit 0); SIGTERM: werkzeug
    # installs no handler, so the default action ends the process (-SIGTERM) - or exit 0.
    assert returncode in ((0,) if signum == signal.SIGINT else (0, -signal.SIGTERM))
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()


def _wait_closed(server: LiveServer, path: str, count: int = 1) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        closed = server.json("/closed")
        if closed.count(path) >= count or time.monotonic() > deadline:
            return closed
        time.sleep(0.05)


def test_iterable_closed_after_a_normal_response(server: LiveServer) -> None:
    assert server.request("/tracked")[2] == b"done"
    assert "/tracked" in _wait_closed(server, "/tracked")


def test_client_leaving_a_stream_frees_the_request(server: LiveServer) -> None:
    """A client that goes away mid-stream: the server notices on its next send, closes the
    app's iterable (freeing the thread) and logs the drop without a traceback."""
    mark = server.log_mark()
    with server.raw_socket() as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"tick" not in received:
            received += sock.recv(4096)
    assert "/forever" in _wait_closed(server, "/forever")
    assert "Traceback" not in server.log(since=mark)


def test_error_after_first_body_byte_truncates(server: LiveServer) -> None:
    """Headers are sent with the first body byte: a later error cannot become a 500; the client
    sees the truncation and the iterable is still closed."""
    conn = server.connect()
    try:
        conn.request("GET", "/fail-after-body")
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
        assert excinfo.value.partial == b"partial"
    finally:
        conn.close()
    assert "/fail-after-body" in _wait_closed(server, "/fail-after-body")
    log = server.wait_for_log("RuntimeError: failed after the first body byte")
    assert "RuntimeError: failed after the first body byte" in log


def test_exc_info_replaces_unsent_status(server: LiveServer) -> None:
    status, headers, body = server.request("/exc-info")
    assert (status, body) == (503, b"retried")
    assert headers["Content-Type"] is None


def test_repeated_response_headers_kept(server: LiveServer) -> None:
    _, headers, _ = server.request("/cookies")
    assert headers.get_all("Set-Cookie") == ["c0=0; Path=/", "c1=1; Path=/", "c2=2; Path=/"]


def test_latin1_response_header(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /latin1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        response = recv_until_closed(sock)
    assert b"\r\nX-Latin: caf\xe9\r\n" in response
