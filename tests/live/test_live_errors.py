"""What goes wrong, and what the server does about it: malformed requests are refused with
their exact status before the application sees them; an application that fails gets a 500
(or, once its body started, a truncated response) and the server keeps serving; a client
that leaves mid-response costs nothing. None of it logs a traceback unless the
application raised."""

from __future__ import annotations

import http.client
import json
import socket
import struct
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest
from live_clients import Request, exchange
from live_helpers import LiveServer, read_response, recv_until_closed, wait_until

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

DISCONNECTED = "Client disconnected while sending the response"


@pytest.fixture(scope="module")
def server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on()


def status_line(code: int) -> bytes:
    """The exact status line of a refusal: the server's version, the code, the stdlib phrase
    (its wording moved with Python versions, e.g. 414 "URI Too Long" since 3.13)."""
    return b"HTTP/1.1 %d %s" % (code, HTTPStatus(code).phrase.encode())


# -- malformed requests ------------------------------------------------------------------

# (id, request bytes, status). Every request names the path /never-called so a
# call reaching the app would show in /calls.
GET = b"GET /never-called HTTP/1.1\r\nHost: t\r\n"
POST = b"POST /never-called HTTP/1.1\r\nHost: t\r\n"
MALFORMED: list[tuple[str, bytes, int]] = [
    ("method-not-token", b"G@T /never-called HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("lowercase-http-version", b"GET /never-called http/1.1\r\nHost: t\r\n\r\n", 400),
    ("version-garbage", b"GET /never-called HTTP/1.x\r\nHost: t\r\n\r\n", 400),
    ("http-2", b"GET /never-called HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("http-0.9", b"GET /never-called\r\n\r\n", 400),
    ("two-spaces", b"GET  /never-called HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("target-not-origin-form", b"GET never-called HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("raw-non-ascii-target", b"GET /never-called/caf\xc3\xa9 HTTP/1.1\r\n\r\n", 400),
    ("bare-lf", b"GET /never-called HTTP/1.1\nHost: t\n\n", 400),
    ("space-before-colon", b"GET /never-called HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    ("no-colon", GET + b"nocolon\r\n\r\n", 400),
    ("nul-in-value", GET + b"X: a\x00b\r\n\r\n", 400),
    ("fold-after-request-line", b"GET /never-called HTTP/1.1\r\n X: y\r\nHost: t\r\n\r\n", 400),
    ("duplicate-host", GET + b"Host: b\r\n\r\n", 400),
    ("content-length-not-digits", POST + b"Content-Length: 5x\r\n\r\nhello", 400),
    ("content-length-negative", POST + b"Content-Length: -1\r\n\r\n", 400),
    ("content-length-conflict", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
    ("te-unknown-coding", POST + b"Transfer-Encoding: bogus\r\n\r\n", 501),
    ("te-chunked-not-last", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("request-line-too-long", b"GET /never-called?" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    ("field-line-too-long", GET + b"X: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ("too-many-fields", GET + b"X: y\r\n" * 120 + b"\r\n", 431),
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400),
]


@pytest.mark.parametrize(
    ("request_bytes", "status"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_request_refused(server: LiveServer, request_bytes: bytes, status: int) -> None:
    mark = server.log_mark()
    calls_before = len(server.calls())
    with server.raw_socket() as sock:
        sock.sendall(request_bytes)
        response = recv_until_closed(sock)  # the server closes after refusing
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == status_line(status), response[:300]
    assert b"Connection: close" in lines[1:], response[:300]
    length = [int(v.split(b":")[1]) for v in lines if v.lower().startswith(b"content-length:")]
    assert length == [len(body)], response[:300]
    assert len(server.calls()) == calls_before, "the application saw a refused request"
    # the refusal's own lines (its reason, then its access line) are the last it logs
    log = server.wait_for_log(f"code {status}, message", f'" {status} -', since=mark)
    assert "Traceback" not in log


def test_malformed_request_after_a_good_one(server: LiveServer) -> None:
    """A good request is answered, then the bad one behind it is refused, then the close."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"GET /good HTTP/1.1\r\nHost: t\r\n\r\nGET /bad\x01 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        status, _, body = read_response(sock, buf)
        assert status == b"HTTP/1.1 200 OK" and json.loads(body)["path"] == "/good"
        status, headers, _ = read_response(sock, buf)
        assert status == b"HTTP/1.1 400 Bad Request"
        assert headers["connection"] == "close"
        assert buf + recv_until_closed(sock) == b""


@pytest.mark.parametrize(
    "size_line",
    [b"ffffffffffffffffffffffff", b"-5", b"0x5", b"5 5", b"zz"],
    ids=["overflow", "negative", "hex-prefix", "space-inside", "not-hex"],
)
def test_bad_chunk_size_line(server: LiveServer, size_line: bytes) -> None:
    """A chunk size outside RFC 9112 §7.1's ``1*HEXDIG`` is a malformed request: 400, then a
    close; nothing after it is read as a request."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /bad-chunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + size_line
            + b"\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        response = recv_until_closed(sock)
    assert response.split(b"\r\n", 1)[0] == b"HTTP/1.1 400 Bad Request", response[:200]
    assert b"\r\nConnection: close\r\n" in response
    assert b"/smuggled" not in response
    assert not any(c["path"] == "/smuggled" for c in server.calls())


# -- the application fails ---------------------------------------------------------------------

# (id, app, server options, path that fails, text in the 500 page, whether the connection
# closes after it, the log lines it leaves)
APP_ERRORS: list[tuple[str, str, dict[str, Any], str, str, bool | None, tuple[str, ...]]] = [
    (
        "fastserve-handler", "echo", {}, "/crash", "Internal Server Error", True,
        ("Error on request", "RuntimeError: crash requested"),
    ),
    (
        "werkzeug-handler", "echo", {"request_handler": "werkzeug"}, "/crash",
        "Internal Server Error", True,
        (
            "Error on request", "RuntimeError: crash requested",
            # werkzeug colours a 500 line bold magenta inside the quotes
            '"\x1b[35m\x1b[1mGET /crash HTTP/1.1\x1b[0m" 500 -',
        ),
    ),
    (
        "flask-view", "flask", {}, "/error", "<h1>Internal Server Error</h1>", None,
        ("Exception on /error [GET]", "RuntimeError: boom from a Flask view"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("app", "options", "path", "page", "closes", "logged"),
    [e[1:] for e in APP_ERRORS],
    ids=[e[0] for e in APP_ERRORS],
)
def test_app_error_gives_500_and_keeps_serving(
    server_on: Callable[..., LiveServer],
    app: str,
    options: dict[str, Any],
    path: str,
    page: str,
    closes: bool | None,
    logged: tuple[str, ...],
) -> None:
    server = server_on(app, **options)
    mark = server.log_mark()
    crashed, after = exchange("http.client", server, [Request("GET", path), Request("GET", "/")])
    assert crashed.status == 500
    assert page in crashed.body.decode()
    if closes:
        assert crashed.headers["connection"] == "close"
        assert after.new_connection is True
    assert after.status == 200
    server.wait_for_log(*logged, since=mark)


def test_response_header_with_crlf_is_refused(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /badheader HTTP/1.1\r\nHost: t\r\n\r\n")
        response = recv_until_closed(sock)
    head = response.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"Injected" not in response
    assert server.json("/after-bad-header")["path"] == "/after-bad-header"


def test_error_after_first_body_byte_truncates(server: LiveServer) -> None:
    """Headers are sent with the first body byte: a later error cannot become a 500; the client
    sees the truncation and the iterable is still closed."""
    mark = server.log_mark()
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
    server.wait_closed("/fail-after-body")
    server.wait_for_log("RuntimeError: failed after the first body byte", since=mark)


def test_exc_info_replaces_unsent_status(server: LiveServer) -> None:
    status, headers, body = server.request("/exc-info")
    assert (status, body) == (503, b"retried")
    assert headers["Content-Type"] is None


# -- the client leaves -----------------------------------------------------------------------


def test_client_disconnect_mid_response(server: LiveServer) -> None:
    """A client that leaves during a large response costs nothing: the server notes it,
    without a traceback, and keeps serving."""
    mark = server.log_mark()
    for _ in range(3):
        with server.raw_socket() as sock:
            # 64 MiB: far more than the socket buffers hold, so the server is still sending
            sock.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200 OK")
            # close with a reset, the harshest way to leave
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    data = server.json("/still-alive")
    assert data["path"] == "/still-alive"
    wait_until(lambda: server.log(mark).count(DISCONNECTED) >= 3, "three disconnects logged")
    assert "Traceback" not in server.log(mark)


def test_client_leaving_a_stream_frees_the_request(server: LiveServer) -> None:
    """A client that goes away mid-stream: the server notices on its next send, closes the
    app's iterable (freeing the thread) and logs the drop without a traceback."""
    mark = server.log_mark()
    with server.raw_socket() as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"tick" not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
    server.wait_closed("/forever")
    assert "Traceback" not in server.wait_for_log(DISCONNECTED, since=mark)
