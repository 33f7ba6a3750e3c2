"""Slow peers (issue 7): clients that trickle, stall or never read cost a
connection in the poller, never a thread, and each is cut by a whole-operation
deadline or a minimum rate.

The contract under test (server class attributes, set per test through the
``serve`` fixture):

==============  =======  ===========================================================
body_timeout    20 s     grace for a request body; then it must keep arriving at
body_min_rate   500 B/s  ... this rate: deadline = start + body_timeout + received
                         bytes / body_min_rate
preread_limit   64 KiB   a body this small (and no ``Expect: 100-continue``) is read
                         in the poller before the app runs; a miss is a 408 and a
                         close, the app is never called. Larger bodies: the app's
                         read raises ``ClientDisconnected`` (a subclass of it for a
                         deadline), as does a body that ends early
send_timeout    20 s     grace for a stalled send; then the client must take
send_min_rate   500 B/s  ... this rate while data waits; the clock runs only while
                         a send is blocked, and a stalled response holds no thread
drain_timeout   1 s      the drain of an unread body is one deadline, not per recv
max_threads              at the cap ready requests wait their turn; the poller
                         keeps accepting, reading and expiring
==============  =======  ===========================================================

Times are asserted as generous ranges (a busy two-core machine), never exact;
every wait polls for its condition under a deadline. These run a real server
(its engine, threads and clock); the same deadlines on one connection, checked
at chosen clock values without a listener, are in ``test_conn_*.py``.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from server_helpers import Reader, recv_all

pytestmark = [pytest.mark.timeout(60), pytest.mark.live]

PIECE = 64 * 1024


#: werkzeug's access line: ``... "GET /path HTTP/1.1" 200 -`` (maybe ANSI-styled)
def _wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def _nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _trickle_until_answered(
    sock: socket.socket, piece: bytes, interval: float, timeout: float
) -> tuple[bytes, float]:
    """Send ``piece`` every ``interval`` seconds until the server answers or closes.

    :return: everything received until the server closed, and the monotonic time
        the first response byte (or the close) arrived.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            break
        try:
            sock.sendall(piece)
        except OSError:  # the server gave up on us: what it said is readable
            break
    else:
        raise AssertionError(f"no answer within {timeout} s of trickling")
    answered = time.monotonic()
    return recv_all(sock, timeout=10), answered


def _post_head(path: str, length: int, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Stream:
    """A response iterable of ``count`` pieces that records its progress and close()."""

    def __init__(self, count: int, piece: bytes = b"x" * PIECE) -> None:
        self.count, self.piece = count, piece
        self.yielded = 0
        self.started = time.monotonic()
        self.closed_at: float | None = None

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.count):
            self.yielded += 1
            yield self.piece

    def close(self) -> None:
        self.closed_at = time.monotonic()


def _streaming_app(streams: list[_Stream], count: int) -> Callable[..., Any]:
    """``/big``: ``count`` pieces of 64 KiB (recorded in ``streams``); else ``ok``."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/big":
            stream = _Stream(count)
            streams.append(stream)
            start_response("200 OK", [("Content-Length", str(count * PIECE))])
            return stream
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    return app


def _get_ok(port: int, path: str = "/ok", timeout: float = 10.0) -> float:
    """One GET on a fresh connection; returns how long the answer took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        response = Reader(s, timeout=timeout).response()
    assert (response.status, response.body) == (200, b"ok")
    return time.monotonic() - start


# -- request bodies ---------------------------------------------------------------------


def test_trickled_small_body_gets_408_at_body_timeout_without_the_app(serve: Any) -> None:
    called = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(environ["PATH_INFO"])
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(app, body_timeout=1.0, body_min_rate=500)
    with _nodelay(srv.connect(timeout=10)) as s:
        s.sendall(_post_head("/trickle", 1000))
        start = time.monotonic()
        data, answered = _trickle_until_answered(s, b"a", interval=0.1, timeout=15)
    # ~10 bytes/s against 500 bytes/s: the deadline is body_timeout plus a few ms
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    assert 0.8 <= answered - start <= 6.0
    assert called == []


def test_trickling_clients_hold_no_thread(serve: Any) -> None:
    """Small bodies trickling in are read in the poller: with every thread the cap
    allows taken by tricklers in the old design, a plain GET is still answered."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(app, max_threads=2, body_timeout=15.0)
    tricklers = [_nodelay(srv.connect(timeout=10)) for _ in range(6)]
    try:
        for s in tricklers:
            s.sendall(_post_head("/trickle", 1000) + b"a")
        for _ in range(3):  # still trickling, far from their deadline
            for s in tricklers:
                s.sendall(b"a")
            assert _get_ok(srv.port) < 3.0
    finally:
        for s in tricklers:
            s.close()


@pytest.mark.parametrize("preread_limit", [65536, 1000], ids=["preread", "app-reads"])
def test_steady_body_slower_than_body_timeout_is_served(serve: Any, preread_limit: int) -> None:
    """3000 bytes at ~1000 bytes/s take 3 s, past body_timeout=1 s, but stay above
    body_min_rate: each received byte extends the deadline, so the body is accepted."""
    lengths = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        lengths.append(len(environ["wsgi.input"].read()))
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(app, body_timeout=1.0, body_min_rate=500, preread_limit=preread_limit)
    with _nodelay(srv.connect(timeout=10)) as s:
        s.sendall(_post_head("/steady", 3000))
        for _ in range(30):
            s.sendall(b"b" * 100)
            time.sleep(0.1)
        response = Reader(s, timeout=10).response()
    assert (response.status, response.body) == (200, b"ok")
    assert lengths == [3000]


# -- responses to clients that read slowly or not at all --------------------------------


def test_non_reading_pipelining_client_is_cut_at_send_timeout(serve: Any) -> None:
    """Eight pipelined GETs of 1 MiB each, never read: the first response stalls,
    and about send_timeout later the connection is closed (the app's iterable is
    closed then); other clients are served meanwhile."""
    streams: list[_Stream] = []
    srv = serve(_streaming_app(streams, 16), send_timeout=1.0, send_min_rate=500)
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", srv.port))
        start = time.monotonic()
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 8)
        assert _wait_until(lambda: len(streams) >= 1, 5)
        assert _get_ok(srv.port) < 2.0
        # responses the kernel buffers took whole are closed at once; the one that
        # stalled is closed by the cut, and no later request is started
        assert _wait_until(lambda: all(st.closed_at for st in streams), 15), "never cut"
        cut = max(st.closed_at or 0.0 for st in streams)
        assert len(streams) < 8
        assert 0.8 <= cut - start <= 8.0
        received = len(recv_all(s, timeout=10))  # the close, after what the kernels held
    finally:
        s.close()
    assert received < 8 * 16 * PIECE
    assert _get_ok(srv.port) < 2.0


def test_stalled_responses_hold_no_thread_and_are_not_buffered(serve: Any) -> None:
    """Three clients stop reading 32 MiB responses with max_threads=2: while they
    wait for send_timeout (10 s) a GET is answered at once, and each app was
    advanced no further than what the kernel buffers hold plus a piece."""
    streams: list[_Stream] = []
    srv = serve(_streaming_app(streams, 512), max_threads=2, send_timeout=10.0)
    stalled = []
    try:
        for _ in range(3):
            s = socket.socket()
            stalled.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _wait_until(lambda: len(streams) == 3, 5), len(streams)

        def settled() -> bool:
            before = [st.yielded for st in streams]
            time.sleep(0.3)
            return [st.yielded for st in streams] == before

        assert _wait_until(settled, 5, step=0)
        assert _get_ok(srv.port) < 3.0
        assert all(st.closed_at is None for st in streams), "cut long before send_timeout"
        for st in streams:
            assert st.yielded * PIECE <= 12 * 1024 * 1024, st.yielded
    finally:
        for s in stalled:
            s.close()


def test_event_stream_read_by_the_client_outlives_send_timeout(serve: Any) -> None:
    """The send clock runs only while a send is blocked: a stream of small events
    (far below send_min_rate) that the client reads lives past send_timeout."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        for i in range(25):
            time.sleep(0.1)
            yield f"data: {i}\n\n".encode()

    srv = serve(app, send_timeout=0.5, send_min_rate=500)
    with srv.connect(timeout=10) as s:
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        response = Reader(s, timeout=10).response()
    assert response.status == 200
    assert response.body == b"".join(f"data: {i}\n\n".encode() for i in range(25))


# -- the thread cap ---------------------------------------------------------------------


def test_thread_cap_queues_requests_and_the_poller_keeps_working(serve: Any) -> None:
    """Both threads of max_threads=2 are in the app: the poller still accepts new
    connections and still expires parked ones (a partial head gets its 408, an
    idle keep-alive connection is closed), while complete requests wait their
    turn - longer than request_head_timeout, without a 408 - and are answered
    once a thread frees."""
    release = threading.Event()
    entered = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            entered.append(1)
            release.wait(20)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(app, max_threads=2, request_head_timeout=1.0, keep_alive_timeout=1.0)
    idle, partial = srv.connect(timeout=20), srv.connect(timeout=20)
    busy = [srv.connect(timeout=20) for _ in range(2)]
    queued: list[socket.socket] = []
    try:
        idle.sendall(b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(idle, timeout=10).response().body == b"ok"
        partial.sendall(b"GET / HTTP/1.1\r\nHo")
        for s in busy:
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _wait_until(lambda: len(entered) == 2, 5)
        at_cap = time.monotonic()
        for _ in range(5):
            s = srv.connect(timeout=20)
            queued.append(s)
            s.sendall(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _wait_until(lambda: len(srv.server._engine.conns) >= 9, 5), "not accepted at the cap"
        data = recv_all(partial, timeout=10)
        assert data.startswith(b"HTTP/1.1 408 "), data[:200]
        assert recv_all(idle, timeout=10) == b""
        assert time.monotonic() - at_cap <= 8.0
        # the queued requests have now waited past request_head_timeout
        assert _wait_until(lambda: time.monotonic() - at_cap > 1.5, 5)
        release.set()
        for s in busy + queued:
            response = Reader(s, timeout=20).response()
            assert (response.status, response.body) == (200, b"ok")
    finally:
        release.set()
        for s in [idle, partial, *busy, *queued]:
            s.close()
