"""Keep-alive, pipelining, bad input, request bodies, drain and timeouts,
over loopback sockets."""

from __future__ import annotations

import socket
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


def test_pipelined_requests_answered_in_order(serve: Any) -> None:
    srv = serve(hello_app)
    with srv.connect() as s:
        s.sendall(b"".join(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5)))
        reader = Reader(s)
        assert [reader.response().body for _ in range(5)] == [b"hello /%d" % i for i in range(5)]


def test_pipelined_request_after_a_body_is_not_read_from_the_body(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]  # never reads the body

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(
            b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 28\r\n\r\n"
            b"GET /evil HTTP/1.1\r\nX: y\r\n\r\n"
            b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        reader = Reader(s)
        assert reader.response().body == b"/one"
        assert reader.response().body == b"/two"


def test_chunked_request_body_then_pipelined_request(serve: Any) -> None:
    seen = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ.get("wsgi.input_terminated"))
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [body]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        )
        reader = Reader(s)
        assert reader.response().body == b"hello world"
        assert reader.response().body == b"abc"
    assert seen == [True, None]


def test_http10_request_gets_close_delimited_response(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"a"
        yield b"b"

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in head
    assert b"Transfer-Encoding" not in head
    assert body == b"ab"


def test_http10_keep_alive_with_content_length(serve: Any) -> None:
    srv = serve(hello_app)
    with srv.connect() as s:
        reader = Reader(s)
        for _ in range(2):
            s.sendall(b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = reader.response()
            assert resp.header("Connection") == "keep-alive"
            assert resp.body == b"hello /k"


def test_client_connection_close_is_honoured(serve: Any) -> None:
    srv = serve(hello_app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_all(s)
    assert data.count(b"HTTP/1.1 200") == 1
    assert b"Connection: close" in data


def test_non_threaded_server_speaks_http10_and_closes(serve: Any) -> None:
    srv = serve(hello_app, threaded=False)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in data


BAD_REQUESTS = [
    pytest.param(b"GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n", 400, id="space-in-field-name"),
    pytest.param(b"GET / HTTP/2.0\r\n\r\n", 505, id="http-2-version"),
    pytest.param(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, id="long-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, id="long-field"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="two-hosts"),
    pytest.param(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501, id="unknown-coding"
    ),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, id="negative-length"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", 400, id="bare-lf"),
]


@pytest.mark.parametrize(("raw", "status"), BAD_REQUESTS)
def test_bad_request_refused_before_the_app(serve: Any, logs: Any, raw: bytes, status: int) -> None:
    called = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(environ)
        start_response("200 OK", [])
        return [b""]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(raw)
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nConnection: close\r\n" in data
    assert b"Content-Type: text/plain" in data
    assert called == []
    assert logs.wait_for(f"code {status}, message").startswith("127.0.0.1 - - [")
    assert any(m.endswith(f" {status} -") for m in logs.messages)


def test_tls_client_hello_on_plain_port_gets_400_without_traceback(serve: Any, logs: Any) -> None:
    import ssl

    srv = serve(hello_app)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with srv.connect() as s:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(s, server_hostname="localhost")
    logs.wait_for("code 400")
    assert "Traceback" not in logs.text()


@pytest.mark.parametrize("chunked", [False, True])
def test_one_read_of_n_bytes_returns_n_bytes(serve: Any, chunked: bool) -> None:
    # as werkzeug's buffered wsgi.input: read(n) waits for n bytes (or the end)
    body = bytes(range(256)) * 1024  # 256 KiB, arriving in several recv()s
    sizes: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.read(len(body) - 1000)
        rest = stream.read(5000)  # more than is left: the rest
        sizes.extend([len(first), len(rest), len(stream.read(10))])
        start_response("200 OK", [])
        return [b"ok" if first + rest == body else b"mismatch"]

    srv = serve(app)
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n\r\n"
        payload = b"".join(
            b"%x\r\n%s\r\n" % (4096, body[i : i + 4096]) for i in range(0, len(body), 4096)
        )
        payload += b"0\r\n\r\n"
    else:
        framing = b"Content-Length: %d\r\n\r\n" % len(body)
        payload = body
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" + framing)
        for i in range(0, len(payload), 10000):  # in pieces, so reads find part of it
            s.sendall(payload[i : i + 10000])
            time.sleep(0.001)
        resp = Reader(s).response()
    assert resp.body == b"ok"
    assert sizes == [len(body) - 1000, 1000, 0]


def test_expect_continue_sent_once_when_the_app_reads(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [body]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        s.settimeout(5)
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += s.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"data")
        resp = Reader(s).response()
        assert resp.status == 200 and resp.body == b"data"


def test_expect_continue_not_sent_when_the_app_does_not_read(serve: Any) -> None:
    srv = serve(hello_app)
    with srv.connect() as s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = Reader(s)
        resp = reader.response()
        assert resp.status == 200
        assert resp.header("Connection") == "close"  # the body was never sent
        assert b"100 Continue" not in reader.buf


def test_expect_continue_not_sent_to_http10_clients(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [body]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok")
        data = recv_all(s)
    assert b"100 Continue" not in data
    assert data.endswith(b"\r\n\r\nok")


def test_small_unread_body_is_drained_and_connection_kept(serve: Any) -> None:
    srv = serve(hello_app)
    with srv.connect() as s:
        reader = Reader(s)
        s.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        time.sleep(0.05)
        s.sendall(b"67890")
        assert reader.response().body == b"hello /a"
        s.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response().body == b"hello /b"


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


def test_max_content_length_refuses_before_the_app(serve: Any) -> None:
    called = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(1)
        start_response("200 OK", [])
        return [b""]

    srv = serve(app, max_content_length=10)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890")
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 413 ")
    assert called == []


def test_max_content_length_limits_chunked_bodies(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b""]

    srv = serve(app, max_content_length=4)
    with srv.connect() as s:
        head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        s.sendall(head + b"5\r\nhello\r\n0\r\n\r\n")
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 413 ")


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


def test_small_body_missing_its_deadline_gets_408_before_the_app(serve: Any) -> None:
    called = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b""]

    srv = serve(app, body_timeout=0.2)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert b"request body not received in time" in data
    assert called == []


def test_large_body_read_past_its_deadline_raises_client_disconnected(serve: Any) -> None:
    from werkzeug.exceptions import ClientDisconnected

    from fastserve._body import RequestBodyTimeout

    caught: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as e:
            caught.append(e)
            raise
        start_response("200 OK", [])
        return [b""]

    srv = serve(app, body_timeout=0.2, preread_limit=4)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        data = recv_all(s)
    assert data == b""
    assert len(caught) == 1 and isinstance(caught[0], RequestBodyTimeout)


def test_short_body_raises_client_disconnected(serve: Any) -> None:
    from werkzeug.exceptions import ClientDisconnected

    caught: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as e:
            caught.append(e)
            raise
        start_response("200 OK", [])
        return [b""]

    srv = serve(app, preread_limit=4)
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        s.shutdown(socket.SHUT_WR)
        data = recv_all(s)
    assert data == b""
    assert len(caught) == 1


def test_client_disconnect_mid_response_costs_a_log_line(serve: Any, logs: Any) -> None:
    started = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        if environ["PATH_INFO"] == "/ok":
            yield b"fine"
            return
        started.set()
        for _ in range(2000):
            yield b"x" * 65536
            time.sleep(0.001)

    srv = serve(app)
    s = srv.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert started.wait(5)
    s.recv(1000)
    s.close()  # RST
    deadline = time.monotonic() + 10
    while not any("disconnected" in m for m in logs.messages) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum("disconnected" in m for m in logs.messages) == 1
    with srv.connect() as s2:
        s2.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(s2).response().body == b"fine"


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


def test_truncated_chunked_body_is_a_dropped_connection(serve: Any, logs: Any) -> None:
    from werkzeug.exceptions import ClientDisconnected

    seen = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as e:
            seen.append(e)
            raise
        start_response("200 OK", [])
        return [b""]

    srv = serve(app, preread_limit=0)  # the app reads the body itself
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    assert len(seen) == 1
    assert "Error on request" not in logs.text()


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
