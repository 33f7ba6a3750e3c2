"""How responses are framed and delimited: chunked when the length is unknown, the
application's Content-Length kept (and enforced), close-delimited for HTTP/1.0, no body
for HEAD, 204 and 304; the ``write`` callable, repeated and latin-1 header fields, and the
iterable's ``close()`` (PEP 3333)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable

import pytest
from live_clients import Request, client_params, exchange
from live_helpers import LiveServer, read_response, recv_until_closed

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

STREAM = b"0\n1\n2\n3\n4\n"


@pytest.fixture(scope="module")
def server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on()


def _head_and_rest(sock: socket.socket) -> tuple[bytes, bytes]:
    """The first response head, and the bytes received after it."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize(("transport", "client"), client_params())
def test_chunked_and_sized_responses_on_one_connection(
    server: LiveServer, transport: str, client: str
) -> None:
    """A body of unknown length is chunked, a declared one keeps its Content-Length; both
    leave the connection usable."""
    stream, big, after = exchange(
        client,
        server,
        [Request("GET", "/stream"), Request("GET", "/big"), Request("GET", "/after")],
    )
    assert stream.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in stream.headers
    assert stream.body == STREAM
    assert len(big.body) == int(big.headers["content-length"]) == 4 * 1024 * 1024
    assert big.body == b"x" * len(big.body)
    assert after.json()["path"] == "/after"
    assert [big.new_connection, after.new_connection] in ([False, False], [None, None])


def test_head_has_no_body(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\nGET /after-head HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        head, rest = _head_and_rest(sock)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        # the length a GET would have, and no body bytes: the next response follows at once
        length = [
            int(line[15:]) for line in head.split(b"\r\n") if line.startswith(b"Content-Length: ")
        ]
        assert len(length) == 1 and length[0] > 0
        status, _, body = read_response(sock, bytearray(rest))
        assert json.loads(body)["path"] == "/after-head"


def test_head_of_streaming_response(server: LiveServer) -> None:
    """HEAD on a response without Content-Length: no body, no chunk bytes, connection usable."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /after-head HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        head, rest = _head_and_rest(sock)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        if b"Connection: close" in head.split(b"\r\n"):
            assert rest + recv_until_closed(sock) == b""
        else:
            _, _, body = read_response(sock, bytearray(rest))
            assert json.loads(body)["path"] == "/after-head"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(server: LiveServer, status: int) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"GET /status/%d HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n"
            % status
        )
        head, rest = _head_and_rest(sock)
        assert head.startswith(b"HTTP/1.1 %d Custom\r\n" % status)
        assert b"Transfer-Encoding" not in head
        assert json.loads(read_response(sock, bytearray(rest))[2])["path"] == "/next"


def test_status_passthrough(server: LiveServer) -> None:
    status, _, body = server.request("/status/404")
    assert (status, body) == (404, b"")


@pytest.mark.parametrize(
    "extra", [b"", b"Connection: keep-alive\r\n"], ids=["plain", "keep-alive-asked"]
)
def test_http10_stream_is_close_delimited(server: LiveServer, extra: bytes) -> None:
    """No chunked framing for an HTTP/1.0 client: the body ends when the connection does,
    also when the client asked for keep-alive."""
    with server.raw_socket() as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\n" + extra + b"\r\n")
        response = recv_until_closed(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Connection: close" in lines
    assert not any(line.lower().startswith(b"transfer-encoding") for line in lines)
    assert body == STREAM


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


def test_iterable_closed_after_a_normal_response(server: LiveServer) -> None:
    assert server.request("/tracked")[2] == b"done"
    server.wait_closed("/tracked")


def test_repeated_response_headers_kept(server: LiveServer) -> None:
    _, headers, _ = server.request("/cookies")
    assert headers.get_all("Set-Cookie") == ["c0=0; Path=/", "c1=1; Path=/", "c2=2; Path=/"]


def test_latin1_response_header(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /latin1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        response = recv_until_closed(sock)
    assert b"\r\nX-Latin: caf\xe9\r\n" in response


def test_many_response_headers(server: LiveServer) -> None:
    status, headers, body = server.request("/many-headers")
    assert (status, body) == (200, b"ok")
    assert [headers[f"X-Header-{i}"] for i in range(90)] == [f"value {i}" for i in range(90)]
