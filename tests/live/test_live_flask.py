"""A Flask app served by ``fastserve.run_simple``: routes, JSON, forms, streaming, errors, 413."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

import pytest
import requests
from live_helpers import LiveServer, recv_until_closed

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

LIMIT = 64 * 1024  # the app's MAX_CONTENT_LENGTH


@pytest.fixture(scope="module")
def flask_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("flask")


def test_index(flask_server: LiveServer) -> None:
    response = requests.get(f"{flask_server.url}/", timeout=10)
    assert response.status_code == 200
    assert response.text == "Hello from Flask"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_json_routes(flask_server: LiveServer) -> None:
    with requests.Session() as session:
        got = session.get(f"{flask_server.url}/json", timeout=10)
        posted = session.post(f"{flask_server.url}/json", json={"k": ["v", 1]}, timeout=10)
    assert got.json() == {"answer": 42, "items": [1, 2, 3]}
    assert posted.json() == {"received": {"k": ["v", 1]}, "method": "POST"}


def test_form_post(flask_server: LiveServer) -> None:
    response = requests.post(
        f"{flask_server.url}/form",
        data={"name": "fastserve", "lang": "ça va"},
        files={"upload": ("a.txt", b"file body")},
        timeout=10,
    )
    assert response.json() == {"form": {"name": "fastserve", "lang": "ça va"}, "files": ["upload"]}


def test_streaming(flask_server: LiveServer) -> None:
    with requests.get(f"{flask_server.url}/stream", stream=True, timeout=10) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        lines = list(response.iter_lines())
    assert lines == [f"line {i}".encode() for i in range(5)]


def test_not_found(flask_server: LiveServer) -> None:
    response = requests.get(f"{flask_server.url}/missing", timeout=10)
    assert response.status_code == 404
    assert "<h1>Not Found</h1>" in response.text


def test_abort_status(flask_server: LiveServer) -> None:
    assert requests.get(f"{flask_server.url}/teapot", timeout=10).status_code == 418


def test_view_error_is_500_page(flask_server: LiveServer) -> None:
    with requests.Session() as session:
        response = session.get(f"{flask_server.url}/error", timeout=10)
        assert response.status_code == 500
        assert "<h1>Internal Server Error</h1>" in response.text
        assert session.get(f"{flask_server.url}/", timeout=10).status_code == 200
    log = flask_server.wait_for_log("Exception on /error [GET]", "RuntimeError: boom")
    assert "Exception on /error [GET]" in log
    assert "RuntimeError: boom from a Flask view" in log


def test_chunked_upload_request_data(flask_server: LiveServer) -> None:
    """``request.data`` sees the whole body of a chunked upload."""
    pieces = [os.urandom(10_000) for _ in range(5)]
    conn = flask_server.connect()
    try:
        conn.request("POST", "/data", body=iter(pieces), encode_chunked=True)
        response = conn.getresponse()
        data = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200
    assert data == {"length": 50_000, "sha256": hashlib.sha256(b"".join(pieces)).hexdigest()}


@pytest.mark.parametrize(
    "size", [LIMIT + 1, 512 * 1024, 8 * 1024 * 1024], ids=["just-over", "512KiB", "8MiB"]
)
def test_413_is_read_not_reset(flask_server: LiveServer, size: int) -> None:
    """Flask refuses the body without reading it; the client still reads the 413."""
    with requests.Session() as session:
        response = session.post(f"{flask_server.url}/data", data=b"x" * size, timeout=30)
        assert response.status_code == 413
        assert "Request Entity Too Large" in response.text
        assert session.get(f"{flask_server.url}/", timeout=10).text == "Hello from Flask"


def test_413_raw_client_sends_everything_first(flask_server: LiveServer) -> None:
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


FILE = bytes(range(256)) * 4096


def test_send_file_full_range_conditional_head(flask_server: LiveServer) -> None:
    """send_file on one keep-alive connection: 200, 206 for a Range, 304 for its ETag, HEAD."""
    url = f"{flask_server.url}/file"
    with requests.Session() as session:
        full = session.get(url, timeout=10)
        assert full.status_code == 200 and full.content == FILE
        part = session.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
        assert part.status_code == 206 and part.content == FILE[10:20]
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(FILE)}"
        cached = session.get(url, headers={"If-None-Match": full.headers["ETag"]}, timeout=10)
        assert cached.status_code == 304 and cached.content == b""
        head = session.head(url, timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["Content-Length"]) == len(FILE)
        again = session.get(url, timeout=10)
        assert again.content == FILE
