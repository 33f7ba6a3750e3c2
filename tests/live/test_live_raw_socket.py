"""Raw-socket clients: pipelining, malformed input, 100-continue, body draining, HTTP/1.0."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from collections.abc import Callable
from http import HTTPStatus

import pytest
from live_helpers import LiveServer, read_response, recv_until_closed

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def test_pipelined_requests_answered_in_order(server: LiveServer) -> None:
    """Three requests in one send: three responses, in request order, on one connection."""
    requests = (
        b"".join(b"GET /pipe/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3))
        + b"POST /pipe/post HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    )
    with server.raw_socket() as sock:
        sock.sendall(requests)
        buf = bytearray()
        paths, ports = [], set()
        for _ in range(4):
            status, headers, body = read_response(sock, buf)
            assert status == b"HTTP/1.1 200 OK"
            assert headers.get("connection") != "close"
            data = json.loads(body)
            paths.append(data["path"])
            ports.add(data["remote_port"])
        assert data["body"] == "hello"
    assert paths == ["/pipe/0", "/pipe/1", "/pipe/2", "/pipe/post"]
    assert len(ports) == 1


def test_pipelined_byte_by_byte(server: LiveServer) -> None:
    """Two requests trickled one byte at a time still get two ordered responses."""
    data = b"GET /trickle/a HTTP/1.1\r\nHost: t\r\n\r\nGET /trickle/b HTTP/1.1\r\nHost: t\r\n\r\n"
    with server.raw_socket() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            sock.sendall(data[i : i + 1])
        buf = bytearray()
        first = json.loads(read_response(sock, buf)[2])
        second = json.loads(read_response(sock, buf)[2])
    assert [first["path"], second["path"]] == ["/trickle/a", "/trickle/b"]


def status_line(code: int) -> bytes:
    """The exact status line of a refusal: the server's version, the code, the stdlib phrase
    (its wording moved with Python versions, e.g. 414 "URI Too Long" since 3.13)."""
    return b"HTTP/1.1 %d %s" % (code, HTTPStatus(code).phrase.encode())


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
    assert "Traceback" not in server.log(since=mark)


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


def test_expect_100_continue(server: LiveServer) -> None:
    """100 Continue comes only when the app reads the body, before the client sends it."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1)
            assert chunk, interim
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello world")
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)["body"] == "hello world"


def test_expect_100_continue_not_sent_when_body_unread(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        buf = bytearray()
        status, _, body = read_response(sock, buf)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"ignored")


def test_expect_100_continue_not_sent_to_http10(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /upload HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"
        )
        response = recv_until_closed(sock)
    assert b"100 Continue" not in response
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(response.partition(b"\r\n\r\n")[2])["body"] == "hello"


def test_unread_body_does_not_leak_into_next_request(server: LiveServer) -> None:
    """The app ignores a body; the bytes after it are the next request, not a body slice."""
    body = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n" * 1000
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body
            + b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        status, headers, first = read_response(sock, buf)
        assert (status, first) == (b"HTTP/1.1 200 OK", b"ignored")
        if headers.get("connection") == "close":
            assert buf + recv_until_closed(sock) == b""
        else:
            status, _, second = read_response(sock, buf)
            assert json.loads(second)["path"] == "/after"
    assert not any(c["path"] == "/smuggled" for c in server.calls())


def test_chunked_upload_then_keep_alive(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
            b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        data = json.loads(read_response(sock, buf)[2])
        assert data["body"] == "hello world"
        assert data["input_terminated"] is True
        assert json.loads(read_response(sock, buf)[2])["path"] == "/next"


def test_http10_streaming_is_close_delimited(server: LiveServer) -> None:
    """No chunked framing for an HTTP/1.0 client: the body ends when the connection does."""
    with server.raw_socket() as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        response = recv_until_closed(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Connection: close" in lines
    assert not any(line.lower().startswith(b"transfer-encoding") for line in lines)
    assert body == b"0\n1\n2\n3\n4\n"


def test_http10_keep_alive_when_asked(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        buf = bytearray()
        status, headers, body = read_response(sock, buf)
        assert json.loads(body)["path"] == "/a"
        assert headers.get("connection", "").lower() == "keep-alive"
        sock.sendall(b"GET /b HTTP/1.0\r\n\r\n")
        status, headers, body = read_response(sock, buf)
        assert json.loads(body)["path"] == "/b"
        assert headers.get("connection") == "close"


def test_head_has_no_body(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\nGET /after-head HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: " in head  # the length a GET would have, no body bytes
        buf = bytearray(rest)
        status, _, body = read_response(sock, buf)
        assert json.loads(body)["path"] == "/after-head"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(server: LiveServer, status: int) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"GET /status/%d HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n"
            % status
        )
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d Custom\r\n" % status)
        assert b"Transfer-Encoding" not in head
        assert json.loads(read_response(sock, bytearray(rest))[2])["path"] == "/next"


def test_client_disconnect_mid_response(server: LiveServer) -> None:
    """A client that leaves during a large response costs nothing: the server keeps serving."""
    mark = server.log_mark()
    for _ in range(3):
        with server.raw_socket() as sock:
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200 OK")
            # close with a reset, the harshest way to leave
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    data = server.json("/still-alive")
    assert data["path"] == "/still-alive"
    assert "Traceback" not in server.log(since=mark)


def test_tls_client_on_plain_port(server: LiveServer) -> None:
    """An HTTPS client talking to the plain port fails its handshake; no traceback is logged."""
    mark = server.log_mark()
    ctx = ssl.create_default_context()
    with server.raw_socket() as sock:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(sock, server_hostname="localhost")
    time.sleep(0.2)
    assert "Traceback" not in server.log(since=mark)
    assert server.json("/after-tls")["path"] == "/after-tls"


def test_http10_keep_alive_request_for_a_stream_is_close_delimited(server: LiveServer) -> None:
    """An HTTP/1.0 client asked for keep-alive, but a body of unknown length can only end with
    the connection: no chunking, ``Connection: close``, the whole body."""
    with server.raw_socket() as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = recv_until_closed(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert b"Connection: close" in lines
    assert not any(line.lower().startswith(b"transfer-encoding") for line in lines)
    assert body == b"0\n1\n2\n3\n4\n"
