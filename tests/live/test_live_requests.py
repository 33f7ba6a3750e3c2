"""``requests`` and ``urllib3`` against fastserve: keep-alive pools, uploads, streaming."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator

import pytest
import requests
import urllib3
from live_helpers import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def test_session_reuses_one_connection(server: LiveServer) -> None:
    with requests.Session() as session:
        ports = {
            session.get(f"{server.url}/s/{i}", timeout=10).json()["remote_port"] for i in range(10)
        }
    assert len(ports) == 1


def test_urllib3_pool_opens_one_connection(server: LiveServer) -> None:
    with urllib3.HTTPConnectionPool(server.host, server.port, maxsize=1, timeout=10) as pool:
        for i in range(10):
            response = pool.request("GET", f"/pool/{i}")
            assert response.status == 200 and response.json()["path"] == f"/pool/{i}"
        assert pool.num_connections == 1
        assert pool.num_requests == 10


def test_json_post(server: LiveServer) -> None:
    response = requests.post(f"{server.url}/json", json={"a": [1, 2, 3]}, timeout=10)
    data = response.json()
    assert response.status_code == 200
    assert data["content_type"] == "application/json"
    assert data["body"] == '{"a": [1, 2, 3]}'


def test_form_post(server: LiveServer) -> None:
    response = requests.post(f"{server.url}/form", data={"name": "v a l", "x": "ä"}, timeout=10)
    data = response.json()
    assert data["content_type"] == "application/x-www-form-urlencoded"
    assert data["body"] == "name=v+a+l&x=%C3%A4"


def test_large_upload(server: LiveServer) -> None:
    body = os.urandom(2 * 1024 * 1024)
    with requests.Session() as session:
        data = session.post(f"{server.url}/big-upload", data=body, timeout=30).json()
        after = session.get(f"{server.url}/after-upload", timeout=10).json()
    assert data["body_length"] == len(body)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert after["remote_port"] == data["remote_port"]


def test_generator_upload_is_chunked(server: LiveServer) -> None:
    def pieces() -> Iterator[bytes]:
        for i in range(10):
            yield bytes([65 + i]) * 5000

    data = requests.post(f"{server.url}/gen", data=pieces(), timeout=10).json()
    assert data["headers"]["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert data["input_terminated"] is True
    assert data["body_sha256"] == hashlib.sha256(b"".join(pieces())).hexdigest()


def test_streaming_download(server: LiveServer) -> None:
    with requests.get(f"{server.url}/stream", stream=True, timeout=10) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert b"".join(response.iter_content(chunk_size=None)) == b"0\n1\n2\n3\n4\n"
    with requests.get(f"{server.url}/big", stream=True, timeout=30) as response:
        digest = hashlib.sha256()
        for piece in response.iter_content(chunk_size=65536):
            digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(b"x" * 4 * 1024 * 1024).hexdigest()


def test_error_statuses(server: LiveServer) -> None:
    with requests.Session() as session:
        assert session.get(f"{server.url}/status/404", timeout=10).status_code == 404
        crashed = session.get(f"{server.url}/crash", timeout=10)
        assert crashed.status_code == 500 and "Internal Server Error" in crashed.text
        assert session.get(f"{server.url}/after", timeout=10).json()["path"] == "/after"
