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
every wait polls for its condition under a deadline.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from server_helpers import LogCapture, Reader, recv_all
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request

from fastserve.connection import WSGIRequestHandler

pytestmark = pytest.mark.timeout(60)

PIECE = 64 * 1024

#: werkzeug's access line: ``... "GET /path HTTP/1.1" 200 -`` (maybe ANSI-styled)
_ACCESS = re.compile(r'"[A-Z]+ \S* HTTP/\d\.\d" \d{3} ')


def _wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def _other_lines(logs: LogCapture) -> list[str]:
    """Logged messages that are not access lines (with any traceback text)."""
    lines = []
    for record in list(logs.records):
        text = record.getMessage()
        if _ACCESS.search(text):
            continue
        if record.exc_info and record.exc_info[1] is not None:
            text += f"\n{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        lines.append(text)
    return lines


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


@pytest.mark.parametrize("reader", ["wsgi.input", "Request.get_data"])
def test_trickled_large_body_raises_client_disconnected_in_the_app(
    serve: Any, logs: LogCapture, reader: str
) -> None:
    """A body above preread_limit reaches the app; when it misses its deadline the
    app's read raises ClientDisconnected (a subclass of it: a deadline)."""
    caught: list[tuple[BaseException, float]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start = time.monotonic()
        try:
            if reader == "wsgi.input":
                environ["wsgi.input"].read()
            else:
                Request(environ).get_data()
        except BaseException as e:
            caught.append((e, time.monotonic() - start))
            raise
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(app, body_timeout=1.0, body_min_rate=500)
    with _nodelay(srv.connect(timeout=10)) as s:
        s.sendall(_post_head("/large", 200_000) + b"c" * 100)
        # 100 bytes/s: the deadline 1 s + received / 500 is met after ~1.5 s
        _trickle_until_answered(s, b"c" * 10, interval=0.1, timeout=15)
    assert len(caught) == 1, caught
    error, elapsed = caught[0]
    assert isinstance(error, ClientDisconnected), repr(error)
    if reader == "wsgi.input":
        assert type(error) is not ClientDisconnected, "a deadline is a subclass"
    assert 0.8 <= elapsed <= 8.0
    assert "Error on request" not in logs.text()


@pytest.mark.parametrize("shape", ["large-body", "expect-continue"])
def test_body_ending_early_raises_client_disconnected_in_the_app(
    serve: Any, logs: LogCapture, shape: str
) -> None:
    """The client half-closes before Content-Length: the app's read raises
    ClientDisconnected at once (not at some timeout)."""
    caught: list[tuple[BaseException, float]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start = time.monotonic()
        try:
            environ["wsgi.input"].read()
        except BaseException as e:
            caught.append((e, time.monotonic() - start))
            raise
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(app)  # default body_timeout (20 s): only the half-close can end this early
    with _nodelay(srv.connect(timeout=10)) as s:
        if shape == "large-body":
            s.sendall(_post_head("/short", 200_000) + b"d" * 1000)
        else:
            s.sendall(_post_head("/short", 100, "Expect: 100-continue"))
            interim = b""
            while not interim.endswith(b"\r\n\r\n"):
                chunk = s.recv(1)
                assert chunk, interim
                interim += chunk
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            s.sendall(b"d" * 10)
        s.shutdown(socket.SHUT_WR)
        recv_all(s, timeout=10)
    assert len(caught) == 1, caught
    error, elapsed = caught[0]
    assert isinstance(error, ClientDisconnected), repr(error)
    assert elapsed < 5.0
    assert "Error on request" not in logs.text()


def test_drain_of_unread_body_is_one_deadline(serve: Any) -> None:
    """The app ignores a 500 kB body the client keeps trickling in (each piece well
    within drain_timeout of the last): the drain still ends ~drain_timeout after
    it began, and the connection closes."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(app, drain_timeout=1.0)
    with _nodelay(srv.connect(timeout=10)) as s:
        s.sendall(_post_head("/ignored", 500_000) + b"e" * 1000)
        reader = Reader(s, timeout=10)
        assert reader.response().body == b"ok"
        answered = time.monotonic()
        # 2 kB/s: the whole body would take four minutes
        rest, closed = _trickle_until_answered(s, b"e" * 100, interval=0.05, timeout=15)
    assert rest == b""
    assert closed - answered <= 6.0


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


# -- application mistakes ---------------------------------------------------------------


@pytest.mark.parametrize("returns", ["list", "generator"])
@pytest.mark.parametrize(
    ("sent", "received"),
    [(b"12345", b"12345"), (b"x" * 20, b"x" * 10)],
    ids=["too-short", "too-long"],
)
def test_content_length_mismatch_closes_promptly_with_one_log_line(
    serve: Any, logs: LogCapture, returns: str, sent: bytes, received: bytes
) -> None:
    """The app declares Content-Length: 10: the client gets what fits, then a close
    (not a wait for keep_alive_timeout); one log line says what went wrong."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "10")])
        if environ["PATH_INFO"] == "/ok":
            return [b"0123456789"]
        if returns == "list":
            return [sent]
        return iter([sent])

    srv = serve(app)
    with srv.connect(timeout=10) as s:
        start = time.monotonic()
        s.sendall(b"GET /mismatch HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s, timeout=10)
        elapsed = time.monotonic() - start
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == received
    assert elapsed < 3.0
    if returns == "list" and len(sent) < 10:
        assert b"\r\nConnection: close" in head
    assert _wait_until(lambda: len(_other_lines(logs)) >= 1, 5), logs.messages
    with srv.connect(timeout=10) as s:  # a later request, so late extra lines show up
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(s, timeout=10).response().body == b"0123456789"
    assert _wait_until(lambda: sum("/ok" in m for m in logs.messages) >= 1, 5)
    assert len(_other_lines(logs)) == 1, _other_lines(logs)


def test_raising_log_request_is_logged_once_and_the_response_arrives(
    serve: Any, logs: LogCapture
) -> None:
    class Handler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if self.path == "/boom":
                raise RuntimeError("log_request exploded")
            super().log_request(code, size)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    srv = serve(app, handler=Handler)
    with srv.connect(timeout=10) as s:
        s.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        response = Reader(s, timeout=10).response()
    assert (response.status, response.body) == (200, b"/boom")

    def mentions() -> list[str]:
        return [line for line in _other_lines(logs) if "log_request exploded" in line]

    assert _wait_until(lambda: len(mentions()) >= 1, 5), logs.messages
    with srv.connect(timeout=10) as s:
        s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(s, timeout=10).response().body == b"/after"
    assert _wait_until(lambda: sum("/after" in m for m in logs.messages) >= 1, 5)
    assert len(mentions()) == 1, _other_lines(logs)
