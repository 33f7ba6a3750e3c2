"""Request bodies: Content-Length and chunked uploads from every client arrive whole and
leave the connection usable; chunk extensions and trailers; Transfer-Encoding beside
Content-Length; ``read()`` without a size; a body the application does not read is
skipped, never read as the next request; too large a body is refused (413) in a way the
client can read."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests
from live_apps import echo
from live_clients import Request, client_params, exchange
from live_helpers import LiveServer, read_response, recv_until_closed

from fastserve import serving

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

FLASK_LIMIT = 64 * 1024  # the Flask app's MAX_CONTENT_LENGTH


@pytest.fixture(scope="module")
def server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("transport", "client"), client_params())
def test_upload_arrives_whole_and_the_connection_stays_usable(
    server: LiveServer, transport: str, client: str, chunked: bool
) -> None:
    body = os.urandom(2 * 1024 * 1024)
    upload, after = exchange(
        client,
        server,
        [
            Request(
                "POST", "/upload", body=body, chunked=chunked,
                headers={"Content-Type": "application/octet-stream"},
            ),
            Request("GET", "/after-upload"),
        ],
    )  # fmt: skip
    assert upload.status == 200
    data = upload.json()
    assert data["method"] == "POST"
    assert data["content_type"] == "application/octet-stream"
    assert data["body_length"] == len(body)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()
    if chunked:
        assert data["headers"]["HTTP_TRANSFER_ENCODING"] == "chunked"
        assert data["content_length"] is None and data["input_terminated"] is True
    else:
        assert data["content_length"] == str(len(body))
    assert after.json()["path"] == "/after-upload"
    assert after.json()["remote_port"] == data["remote_port"]
    assert after.new_connection in (False, None)


def test_chunk_extensions_and_trailers_then_keep_alive(server: LiveServer) -> None:
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


# -- too large -----------------------------------------------------------------------------


class _SmallBodies(serving.ThreadedWSGIServer):
    max_content_length = 1000


def test_max_content_length_refuses_before_the_app(
    in_process_server: Callable[..., Any],
) -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        calls.append(environ["PATH_INFO"])
        return echo(environ, start_response)

    server = in_process_server(_SmallBodies("127.0.0.1", 0, app))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /too-big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
        sock.sendall(b"x" * 5000)
        response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert calls == []


@pytest.fixture(scope="module")
def flask_server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on("flask")


@pytest.mark.parametrize(
    "size", [FLASK_LIMIT + 1, 512 * 1024, 8 * 1024 * 1024], ids=["just-over", "512KiB", "8MiB"]
)
def test_413_from_the_app_is_read_not_reset(flask_server: LiveServer, size: int) -> None:
    """Flask refuses the body without reading it; the client still reads the 413."""
    with requests.Session() as session:
        response = session.post(f"{flask_server.url}/data", data=b"x" * size, timeout=30)
        assert response.status_code == 413
        assert "Request Entity Too Large" in response.text
        assert session.get(f"{flask_server.url}/", timeout=10).text == "Hello from Flask"


def test_413_to_a_client_that_sends_everything_first(flask_server: LiveServer) -> None:
    """A client that writes the whole body before reading gets the 413, then an orderly close
    or a usable connection - never a reset."""
    body = b"y" * (2 * 1024 * 1024)
    with flask_server.raw_socket(timeout=30) as sock:
        sock.sendall(b"POST /data HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        sock.sendall(body)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 413 REQUEST ENTITY TOO LARGE\r\n")
    head_lines = response.partition(b"\r\n\r\n")[0].split(b"\r\n")
    if b"Connection: close" not in head_lines:
        assert response.endswith(b"Hello from Flask")
