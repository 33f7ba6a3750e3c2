"""Edge cases real clients produce: half-closed requests, HEAD on streams, CL+TE, absolute-form,
reading past the body, concurrent keep-alive clients, TLS pipelining, IPv6, stale unix sockets."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from live_helpers import LiveServer, insecure_client_context, read_response, recv_until_closed

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def test_request_then_half_close(server: LiveServer) -> None:
    """A client that shuts down its sending side after the request (``nc -N``) gets the answer."""
    with server.raw_socket() as sock:
        sock.sendall(b"GET /half-closed HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(response.partition(b"\r\n\r\n")[2])["path"] == "/half-closed"


def test_head_of_streaming_response(server: LiveServer) -> None:
    """HEAD on a response without Content-Length: no body, no chunk bytes, connection usable."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /after-head HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        if b"Connection: close" in head.split(b"\r\n"):
            assert rest + recv_until_closed(sock) == b""
        else:
            _, _, body = read_response(sock, bytearray(rest))
            assert json.loads(body)["path"] == "/after-head"


def test_pipelined_streaming_responses_keep_order(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /first-after HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /second-after HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        bodies = [read_response(sock, buf)[2] for _ in range(4)]
    assert bodies[0] == bodies[2] == b"0\n1\n2\n3\n4\n"
    assert [json.loads(bodies[i])["path"] for i in (1, 3)] == ["/first-after", "/second-after"]


def test_content_length_with_chunked_closes_after(server: LiveServer) -> None:
    """Transfer-Encoding wins over Content-Length; framing is in doubt, so the server closes."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /cl-te HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        buf = bytearray()
        _, headers, body = read_response(sock, buf)
        assert headers["connection"] == "close"
        assert buf + recv_until_closed(sock) == b""
    data = json.loads(body)
    assert data["body"] == "abc" and data["content_length"] == "100"


def test_absolute_form_target(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET http://user@example.test:8080/abs?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
        data = json.loads(read_response(sock, bytearray())[2])
    assert (data["path"], data["query"]) == ("/abs", "q=1")
    assert data["headers"]["HTTP_HOST"] == "example.test:8080"


def test_read_without_size_stops_at_the_body_end(server: LiveServer) -> None:
    """``wsgi.input.read()`` returns the body and does not wait for more (werkzeug's blocks)."""
    conn = server.connect(timeout=10)
    try:
        conn.request("POST", "/readall", body=b"exactly this")
        first = json.loads(conn.getresponse().read())
        conn.request("POST", "/readall", body=iter([b"chunked ", b"too"]), encode_chunked=True)
        second = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert first["body"] == "exactly this"
    assert second["body"] == "chunked too"


def test_app_connection_close_is_honoured(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"GET /app-close HTTP/1.1\r\nHost: t\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        _, headers, body = read_response(sock, buf)
        assert (headers["connection"], body) == ("close", b"bye")
        assert buf + recv_until_closed(sock) == b""


def test_many_response_headers(server: LiveServer) -> None:
    status, headers, body = server.request("/many-headers")
    assert (status, body) == (200, b"ok")
    assert [headers[f"X-Header-{i}"] for i in range(90)] == [f"value {i}" for i in range(90)]


def test_invalid_chunk_in_request_body(server: LiveServer) -> None:
    """A bad chunk size found while the app reads: an error status and a close, not a hang;
    nothing after it is read as a request."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /bad-chunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        response = recv_until_closed(sock)
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 500 INTERNAL SERVER ERROR")
    assert b"/smuggled" not in response
    assert not any(c["path"] == "/smuggled" for c in server.calls())


def test_concurrent_keep_alive_clients(server: LiveServer) -> None:
    """16 clients x 20 requests each on their own connections: every answer is the right one."""
    errors: list[str] = []

    def client(n: int) -> None:
        conn = server.connect(timeout=20)
        try:
            for i in range(20):
                payload = f"client {n} request {i}".encode() * (i + 1)
                conn.request("POST", f"/c/{n}/{i}", body=payload)
                data = json.loads(conn.getresponse().read())
                if data["path"] != f"/c/{n}/{i}" or data["body_length"] != len(payload):
                    errors.append(f"{n}/{i}: {data['path']} {data['body_length']}")
        except Exception as e:  # collected and reported below
            errors.append(f"{n}: {e!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_tls_pipelining_and_large_bodies(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", ssl_context="adhoc")
    upload = os.urandom(3 * 1024 * 1024)
    ctx = insecure_client_context()
    with socket.create_connection((server.host, server.port), timeout=20) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(
                b"GET /tls-a HTTP/1.1\r\nHost: t\r\n\r\nGET /big HTTP/1.1\r\nHost: t\r\n\r\n"
                b"POST /tls-up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                % len(upload)
                + upload
            )
            buf = bytearray()
            first = json.loads(read_response(tls, buf)[2])  # type: ignore[arg-type]
            big = read_response(tls, buf)[2]  # type: ignore[arg-type]
            up = json.loads(read_response(tls, buf)[2])  # type: ignore[arg-type]
    assert first["path"] == "/tls-a" and first["scheme"] == "https"
    assert big == b"x" * (4 * 1024 * 1024)
    assert up["body_sha256"] == hashlib.sha256(upload).hexdigest()


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", hostname="::1")
    conn = http.client.HTTPConnection("::1", server.port, timeout=10)
    try:
        conn.request("GET", "/v6")
        data = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert data["remote_addr"] == "::1"
    assert data["headers"]["HTTP_HOST"] == f"[::1]:{server.port}"


def test_stale_unix_socket_file_is_replaced(start_server: Callable[..., LiveServer]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fs-stale-"))  # short: sun_path holds 108 bytes
    try:
        sock_path = workdir / "stale.sock"
        with socket.socket(socket.AF_UNIX) as stale:
            stale.bind(str(sock_path))  # a socket file nobody listens on, as a crash leaves it
        server = start_server("echo", hostname=f"unix://{sock_path}")
        assert server.json("/after-stale")["path"] == "/after-stale"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_tls_handshake_failure_is_not_logged_as_traceback(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("echo", ssl_context="adhoc")
    ctx = ssl.create_default_context()  # verifies: the self-signed certificate is refused
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert server.json("/after-failed-handshake")["scheme"] == "https"
    assert "Traceback" not in server.log()
