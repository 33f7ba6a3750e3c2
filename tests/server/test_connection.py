"""Connection behaviour that needs the engine and a listener: the poller's
deadlines on a real clock, parked connections at server_close(), threads and
the thread cap, TCP's reset when unread input is closed. What one connection
does with its bytes is tested without a listener in ``test_conn_*.py``."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from server_helpers import Reader, hello_app, recv_all

pytestmark = pytest.mark.live


def test_keep_alive_serves_requests_in_sequence(serve: Any) -> None:
    srv = serve(hello_app)
    with srv.connect() as s:
        reader = Reader(s)
        for path in ("/a", "/b", "/c"):
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            resp = reader.response()
            assert resp.status == 200
            assert resp.body == b"hello " + path.encode()
            assert resp.header("Connection") is None
        assert len(srv.server._engine.conns) == 1


def test_large_unread_body_gets_response_not_reset(serve: Any) -> None:
    """A Flask-style 413 sent without reading the upload reaches the client."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("413 Request Entity Too Large", [("Content-Type", "text/plain")])
        return [b"too large"]

    srv = serve(app, drain_limit=1024)
    body = b"x" * (8 * 1024 * 1024)
    received = []

    with srv.connect() as s:

        def upload() -> None:
            try:
                s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
                s.sendall(body)
            except OSError:
                pass

        t = threading.Thread(target=upload)
        t.start()
        received.append(recv_all(s, timeout=10))
        t.join(10)
    data = received[0]
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in data
    assert data.endswith(b"too large")


def test_partial_head_times_out_with_408(serve: Any, logs: Any) -> None:
    srv = serve(hello_app, request_head_timeout=0.3)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost")
        data = recv_all(s, timeout=5)
    assert data.startswith(b"HTTP/1.1 408 ")
    logs.wait_for("code 408")


def test_idle_keep_alive_connection_is_closed(serve: Any) -> None:
    srv = serve(hello_app, keep_alive_timeout=0.3)
    with srv.connect() as s:
        reader = Reader(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response().status == 200
        s.settimeout(5)
        assert s.recv(1) == b""
    deadline = time.monotonic() + 2
    while srv.server._engine.conns and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.server._engine.conns == {}


def test_server_close_closes_parked_connections(serve: Any) -> None:
    srv = serve(hello_app)
    socks = [srv.connect() for _ in range(3)]
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(s).response().status == 200
    engine = srv.server._engine
    server_socks = [c.sock for c in engine.conns.values()]
    assert len(server_socks) == 3
    srv.stop()
    assert all(s.fileno() == -1 for s in server_socks)
    for s in socks:
        s.settimeout(5)
        assert s.recv(1) == b""
        s.close()


def test_slow_request_does_not_block_other_connections(serve: Any) -> None:
    fast_done = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            # returns only once a request on another connection was served
            assert fast_done.wait(10)
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    srv = serve(app)
    slow = srv.connect()
    slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.05)
    with srv.connect() as fast:
        fast.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(fast).response().body == b"/fast"
    fast_done.set()
    assert Reader(slow).response().body == b"/slow"
    slow.close()


def test_many_idle_connections_need_no_threads(serve: Any) -> None:
    srv = serve(hello_app)
    socks = []
    try:
        for _ in range(200):
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:
            assert Reader(s).response().status == 200
        assert threading.active_count() < 20
        assert len(srv.server._engine.conns) == 200
    finally:
        for s in socks:
            s.close()


def test_thread_cap_is_logged_and_requests_wait(serve: Any, logs: Any) -> None:
    release = threading.Event()
    entered = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            entered.append(1)
            assert release.wait(10)
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    srv = serve(app, max_threads=2)
    slow = [srv.connect(), srv.connect()]
    for s in slow:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 10
    while len(entered) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(entered) == 2
    assert not any("server threads are busy" in m for m in logs.messages)  # not yet true
    with srv.connect() as late:
        late.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        logs.wait_for("server threads are busy")  # the poller still runs: it queued /late
        late.settimeout(0.3)
        with pytest.raises(TimeoutError):
            late.recv(1)  # waits its turn
        late.settimeout(10)
        release.set()  # a thread frees up: the waiting request is served
        assert Reader(late).response().body == b"/late"
    for s in slow:
        assert Reader(s).response().body == b"/slow"
        s.close()
