"""A Flask app served by ``fastserve.run_simple``: routes, JSON, forms, streaming, aborts,
``request.data`` of a chunked upload, ``send_file`` with ranges and conditional requests.

(Its 500 page and log: ``test_live_errors.py``; its 413 for too large a body:
``test_live_request_bodies.py``.)"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

import pytest
import requests
from live_helpers import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def flask_server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on("flask")


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
