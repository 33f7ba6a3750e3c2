"""Request bodies on one connection driven over a socket pair
(``conn_driver``): Content-Length and chunked bodies read, partly read or
unread (drained to keep the connection, or a half-close), bodies received in
the poller before the application runs, ``Expect: 100-continue``, and the
body deadlines."""

from __future__ import annotations

import json
import socket
import time
from http import HTTPStatus
from typing import Any

import pytest
from conn_driver import (
    CLOSE,
    LINGER,
    PARK,
    chunked,
    get,
    log_lines,
    post,
    recv_until,
    split_responses,
)
from server_helpers import LogCapture, hello_app
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request

from fastserve._body import RequestBodyTimeout


class Echo:
    """Reads the whole body (``wsgi.input.read()``), answers with it; records calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls.append(environ)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]


class Raising:
    """Reads the body and records what the read raised (then re-raises it)."""

    def __init__(self, how: str = "wsgi.input", before: Any = None) -> None:
        self.how = how
        self.before = before
        self.caught: list[BaseException] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if self.before is not None:
            self.before()  # the client sends the body now: the app is running
        try:
            if self.how == "wsgi.input":
                environ["wsgi.input"].read()
            else:
                Request(environ).get_data()
        except BaseException as e:
            self.caught.append(e)
            raise
        start_response("200 OK", [])
        return [b"read"]


def assert_refusal_logged(logs: LogCapture, status: int, reason: str) -> None:
    """The error line and the access line of a refused request, nothing else
    (which request line the access line shows: see
    test_refusal_after_the_head_logs_its_request_line)."""
    lines = log_lines(logs)
    assert lines[0] == f"code {status}, message {reason}"
    assert len(lines) == 2 and lines[1].endswith(f'" {status} -')


# -- bodies the application reads ------------------------------------------------------


def test_content_length_body_then_pipelined_request(drive: Any) -> None:
    app = Echo()
    drv = drive(app)
    data = drv.exchange(post("/", b"hello") + post("/", b"world"))
    assert [r.body for r in split_responses(data)] == [b"hello", b"world"]
    assert drv.state == PARK and drv.conn.buf == b""
    assert [e["CONTENT_LENGTH"] for e in app.calls] == ["5", "5"]


def test_chunked_request_body_then_pipelined_request(drive: Any) -> None:
    app = Echo()
    drv = drive(app)
    data = drv.exchange(
        get("/", "Transfer-Encoding: chunked", method="POST")
        + b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
        + post("/", b"abc")
    )
    assert [r.body for r in split_responses(data)] == [b"hello world", b"abc"]
    assert [e.get("wsgi.input_terminated") for e in app.calls] == [True, None]
    assert drv.state == PARK and drv.conn.buf == b""


@pytest.mark.parametrize("te", [False, True], ids=["content-length", "chunked"])
def test_small_body_arriving_late_is_received_before_the_app(drive: Any, te: bool) -> None:
    """A body up to preread_limit is received in the poller (PARK, waiting):
    the application runs once, with the whole body there."""
    app = Echo()
    drv = drive(app, body_timeout=20.0, body_min_rate=500.0)
    if te:
        head = get("/", "Transfer-Encoding: chunked", method="POST")
        first, rest = b"5\r\nhel", b"lo\r\n0\r\n\r\n"
    else:
        head = post("/", b"", length=5)
        first, rest = b"hel", b"lo"
    assert drv.exchange(head + first) == b""
    assert drv.state == PARK and drv.conn.waiting and app.calls == []
    conn = drv.conn
    assert conn.deadline == conn.body_start + 20.0 + conn.body_received / 500.0
    (resp,) = split_responses(drv.exchange(rest))
    assert resp.body == b"hello" and len(app.calls) == 1
    assert drv.state == PARK and not drv.conn.waiting


def test_small_body_missing_its_deadline_gets_408_before_the_app(
    drive: Any, logs: LogCapture
) -> None:
    app = Echo()
    drv = drive(app, body_timeout=20.0)
    assert drv.exchange(post("/", b"abc", length=10)) == b""
    assert not drv.sweep(drv.conn.deadline - 0.01)
    drv.expire()
    (resp,) = split_responses(drv.read(), eof=True)
    assert resp.status == 408
    assert resp.body == b"Request Timeout: request body not received in time\n"
    assert app.calls == []
    assert_refusal_logged(logs, 408, "Request body not received in time")


def test_client_closing_during_a_small_body_is_closed_without_the_app(drive: Any) -> None:
    app = Echo()
    drv = drive(app)
    drv.send(post("/", b"abc", length=10))
    drv.client.shutdown(socket.SHUT_WR)
    assert drv.run() == CLOSE
    assert app.calls == [] and drv.read_to_eof() == b""


@pytest.mark.parametrize("te", [False, True], ids=["content-length", "chunked"])
def test_one_read_of_n_bytes_returns_n_bytes(drive: Any, te: bool) -> None:
    # as werkzeug's buffered wsgi.input: read(n) waits for n bytes (or the end);
    # the body is larger than preread_limit, so the application receives it
    body = bytes(range(256)) * 1024  # 256 KiB
    sizes: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.read(len(body) - 1000)
        rest = stream.read(5000)  # more than is left: the rest
        sizes.extend([len(first), len(rest), len(stream.read(10))])
        start_response("200 OK", [])
        return [b"ok" if first + rest == body else b"mismatch"]

    drv = drive(app)
    if te:
        head = get("/", "Transfer-Encoding: chunked", method="POST")
        payload = chunked(*(body[i : i + 4096] for i in range(0, len(body), 4096)))
    else:
        head = post("/", b"", length=len(body))
        payload = body

    def client(sock: socket.socket) -> None:
        for i in range(100, len(payload), 10000):  # in pieces: reads find part of it
            sock.sendall(payload[i : i + 10000])

    drv.send(head + payload[:100])
    drv.client_thread(client)
    drv.run_with_clients()
    (resp,) = split_responses(drv.read())
    assert resp.body == b"ok"
    assert sizes == [len(body) - 1000, 1000, 0]
    assert drv.state == PARK


def test_wsgi_input_file_api(drive: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        rest = stream.readlines()
        again = stream.read()
        start_response("200 OK", [])
        return [json.dumps([first.decode(), [x.decode() for x in rest], again.decode()]).encode()]

    (resp,) = split_responses(drive(app).exchange(post("/", b"line1\nline2\nline3")))
    assert json.loads(resp.body) == ["line1\n", ["line2\n", "line3"], ""]


# -- bodies the application does not read (all) ----------------------------------------


def test_small_unread_body_is_drained_and_connection_kept(drive: Any) -> None:
    drv = drive(hello_app)
    assert drv.exchange(post("/a", b"12345", length=10)) == b""
    (resp,) = split_responses(drv.exchange(b"67890"))
    assert resp.body == b"hello /a" and resp.header("Connection") is None
    (resp,) = split_responses(drv.exchange(get("/b")))
    assert resp.body == b"hello /b"


def test_partly_read_body_is_drained_and_connection_kept(drive: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        first = environ["wsgi.input"].read(3)
        start_response("200 OK", [])
        return [first]

    drv = drive(app)
    data = drv.exchange(post("/", b"0123456789") + get("/next"))
    assert [r.body for r in split_responses(data)] == [b"012", b""]
    assert drv.state == PARK


def test_unread_body_beyond_preread_is_drained_in_the_poller(drive: Any) -> None:
    """Larger than preread_limit (the app runs at once) but within drain_limit:
    after the response the rest is received and discarded in the poller, with
    one deadline for the whole drain, and the next request is served."""
    drv = drive(hello_app, preread_limit=100, drain_limit=10_000, drain_timeout=1.0)
    data = drv.exchange(post("/a", b"x" * 1000, length=5000))
    (resp,) = split_responses(data)
    assert resp.body == b"hello /a" and resp.header("Connection") is None
    conn = drv.conn
    assert drv.state == PARK and conn.waiting  # draining
    assert drv.deadline_set_in_last_run(1.0)  # drain_timeout
    deadline = conn.deadline
    assert drv.exchange(b"x" * 3000) == b""
    assert conn.deadline == deadline  # one deadline, not per recv
    (resp,) = split_responses(drv.exchange(b"x" * 1000 + get("/b")))
    assert resp.body == b"hello /b"
    assert drv.state == PARK and not conn.waiting


def test_drain_missing_its_deadline_is_closed_without_a_word(drive: Any, logs: LogCapture) -> None:
    drv = drive(hello_app, preread_limit=100, drain_limit=10_000)
    drv.exchange(post("/a", b"x" * 1000, length=5000))
    assert drv.conn.waiting
    drv.expire()
    assert drv.read() == b"" and drv.client_sees_eof()
    assert log_lines(logs) == ['"POST /a HTTP/1.1" 200 -']


def test_large_unread_body_gets_response_then_half_close(drive: Any) -> None:
    """A Flask-style 413 sent without reading the upload reaches the client:
    the connection half-closes and discards what the client still sends
    (no reset), up to linger_limit bytes or linger_timeout."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("413 Request Entity Too Large", [("Content-Type", "text/plain")])
        return [b"too large"]

    drv = drive(app, drain_limit=1024, linger_limit=100_000, linger_timeout=2.0)
    data = drv.exchange(post("/", b"x" * 2000, length=8 * 1024 * 1024))
    assert drv.state == LINGER and drv.conn.lingering
    (resp,) = split_responses(data)
    assert resp.status == 413 and resp.header("Connection") == "close"
    assert resp.body == b"too large"
    assert drv.client_sees_eof()  # our side is shut for writing
    assert drv.deadline_set_in_last_run(2.0)  # linger_timeout
    drv.send(b"x" * 50_000)
    assert drv.run() == PARK and not drv.closed  # discarded
    drv.send(b"x" * 60_000)
    assert drv.run() == CLOSE  # past linger_limit


def test_expect_continue_body_unread_is_not_drained(drive: Any) -> None:
    drv = drive(hello_app)
    data = drv.exchange(post("/", b"", "Expect: 100-continue", length=4))
    (resp,) = split_responses(data)
    assert resp.status == 200
    assert resp.header("Connection") == "close"  # the body was never sent
    assert b"100 Continue" not in data
    assert drv.state == LINGER
    drv.send(b"data")  # a client that stopped waiting for the 100 sends it anyway
    assert drv.run() == PARK and drv.read() == b""


# -- Expect: 100-continue ------------------------------------------------------------


def test_expect_continue_sent_once_when_the_app_reads(drive: Any) -> None:
    app = Echo()
    drv = drive(app)
    interim: list[bytes] = []

    def client(sock: socket.socket) -> None:
        interim.append(recv_until(sock, b"\r\n\r\n"))
        sock.sendall(b"da")
        sock.sendall(b"ta")

    drv.send(post("/", b"", "Expect: 100-continue", length=4))
    drv.client_thread(client)
    drv.run()
    drv.join_clients()
    assert interim == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    (resp,) = split_responses(drv.read())
    assert resp.status == 200 and resp.body == b"data"
    assert drv.state == PARK
    (resp,) = split_responses(drv.exchange(post("/", b"ok", "Expect: 100-continue")))
    assert resp.body == b"ok"  # the body came with the head: read without a 100


def test_expect_continue_not_sent_to_http10_clients(drive: Any) -> None:
    drv = drive(Echo())
    raw = b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok"
    data = drv.exchange(raw)
    assert b"100 Continue" not in data
    assert data.endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("shape", ["large-body", "expect-continue"])
def test_body_ending_early_raises_client_disconnected_in_the_app(
    drive: Any, logs: LogCapture, shape: str
) -> None:
    """The client half-closes before Content-Length: the app's read raises
    ClientDisconnected at once (not at a deadline), no error is logged."""
    app = Raising()
    drv = drive(app)
    if shape == "large-body":
        drv.send(post("/short", b"d" * 1000, length=200_000))
        drv.client.shutdown(socket.SHUT_WR)
    else:
        drv.send(post("/short", b"", "Expect: 100-continue", length=100))

        def client(sock: socket.socket) -> None:
            assert recv_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"d" * 10)
            sock.shutdown(socket.SHUT_WR)

        drv.client_thread(client)
    start = time.monotonic()
    assert drv.run() == CLOSE
    assert time.monotonic() - start < 5.0
    drv.join_clients()
    assert len(app.caught) == 1 and type(app.caught[0]) is ClientDisconnected
    assert drv.read_to_eof() == b""
    assert not any("Error on request" in m for m in logs.messages)


def test_truncated_chunked_body_is_a_dropped_connection(drive: Any, logs: LogCapture) -> None:
    app = Raising()
    drv = drive(app, preread_limit=0)  # the app reads the body itself
    drv.send(get("/", "Transfer-Encoding: chunked", method="POST") + b"5\r\nhel")
    drv.client.shutdown(socket.SHUT_WR)
    assert drv.run() == CLOSE
    assert drv.read_to_eof() == b""
    assert len(app.caught) == 1 and isinstance(app.caught[0], ClientDisconnected)
    assert "Error on request" not in logs.text()


@pytest.mark.parametrize("how", ["wsgi.input", "Request.get_data"])
def test_large_body_read_past_its_deadline_raises_client_disconnected(
    drive: Any, logs: LogCapture, how: str
) -> None:
    """The application waits for the body (a real wait, bounded by the short
    body_timeout): the read raises RequestBodyTimeout, a ClientDisconnected."""
    app = Raising(how)
    drv = drive(app, body_timeout=0.2, preread_limit=4)
    drv.send(post("/", b"abc", length=10))
    assert drv.run() == CLOSE
    assert drv.read_to_eof() == b""
    assert len(app.caught) == 1 and isinstance(app.caught[0], ClientDisconnected)
    if how == "wsgi.input":
        assert isinstance(app.caught[0], RequestBodyTimeout)
    assert "Error on request" not in logs.text()


# -- limits ------------------------------------------------------------------------------


def test_max_content_length_refuses_before_the_app(drive: Any, logs: LogCapture) -> None:
    app = Echo()
    drv = drive(app, max_content_length=10)
    data = drv.exchange(post("/", b"01234567890"))
    assert app.calls == []
    (resp,) = split_responses(data)
    assert resp.status == 413 and resp.header("Connection") == "close"
    assert drv.state == LINGER
    assert_refusal_logged(logs, 413, "Request body too large")


def test_max_content_length_limits_chunked_bodies(drive: Any, logs: LogCapture) -> None:
    app = Echo()
    drv = drive(app, max_content_length=4)
    head = get("/", "Transfer-Encoding: chunked", method="POST")
    data = drv.exchange(head + chunked(b"hello"))
    (resp,) = split_responses(data)
    assert resp.status == 413
    assert app.calls == []
    assert_refusal_logged(logs, 413, "Request body too large")


def test_max_content_length_on_a_chunked_body_the_app_reads(drive: Any, logs: LogCapture) -> None:
    drv = drive(hello_app, max_content_length=4, preread_limit=0)
    app = Raising(before=lambda: drv.client.sendall(chunked(b"hello")))
    drv.server.app = app
    data = drv.exchange(get("/", "Transfer-Encoding: chunked", method="POST"))
    (resp,) = split_responses(data)
    # the stdlib's phrase: "Request Entity Too Large", "Content Too Large" from Python 3.13
    reason = HTTPStatus(413).phrase.encode()
    assert resp.status == 413 and resp.body == reason + b": Request body too large\n"
    assert len(app.caught) == 1
    assert_refusal_logged(logs, 413, "Request body too large")
    assert drv.state == LINGER


def test_bad_chunk_in_a_body_the_app_reads_is_a_400(drive: Any, logs: LogCapture) -> None:
    drv = drive(hello_app, preread_limit=0)
    app = Raising(before=lambda: drv.client.sendall(b"zz\r\nhello\r\n0\r\n\r\n"))
    drv.server.app = app
    data = drv.exchange(get("/", "Transfer-Encoding: chunked", method="POST"))
    (resp,) = split_responses(data)
    assert resp.status == 400 and resp.body == b"Bad Request: Missing chunk size\n"
    assert len(app.caught) == 1
    assert_refusal_logged(logs, 400, "Missing chunk size")


def test_bad_chunk_in_a_small_body_is_a_400_before_the_app(drive: Any, logs: LogCapture) -> None:
    app = Echo()
    drv = drive(app)
    head = get("/", "Transfer-Encoding: chunked", method="POST")
    data = drv.exchange(head + b"zz\r\nhello\r\n0\r\n\r\n")
    (resp,) = split_responses(data)
    assert resp.status == 400 and resp.body == b"Bad Request: Missing chunk size\n"
    assert app.calls == []
    assert drv.state == LINGER
    assert_refusal_logged(logs, 400, "Missing chunk size")


def _small_body_408(drv: Any) -> None:
    drv.exchange(post("/", b"abc", length=10))
    drv.expire()


REFUSED_AFTER_THE_HEAD = [
    pytest.param({"max_content_length": 4}, post("/", b"01234567890"), id="413-content-length"),
    pytest.param(
        {"max_content_length": 4},
        get("/", "Transfer-Encoding: chunked", method="POST") + chunked(b"hello"),
        id="413-chunked",
    ),
    pytest.param(
        {},
        get("/", "Transfer-Encoding: chunked", method="POST") + b"zz\r\n\r\n",
        id="400-bad-chunk",
    ),
    pytest.param({}, None, id="408-body-deadline"),
]


@pytest.mark.parametrize(("limits", "raw"), REFUSED_AFTER_THE_HEAD)
def test_refusal_after_the_head_logs_its_request_line(
    drive: Any, logs: LogCapture, limits: dict[str, Any], raw: bytes | None
) -> None:
    drv = drive(Echo(), **limits)
    if raw is None:
        _small_body_408(drv)
    else:
        drv.exchange(raw)
    assert log_lines(logs)[-1].startswith('"POST / HTTP/1.1" ')
