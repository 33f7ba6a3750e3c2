"""``http.client`` against fastserve over TCP and a unix socket, threaded and not."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

import pytest
from live_helpers import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def test_get(server: LiveServer) -> None:
    status, headers, body = server.request("/hello/w%C3%B6rld?x=1&y=%20")
    assert status == 200
    data = json.loads(body)
    assert data["path"] == "/hello/w\u00c3\u00b6rld"  # PEP 3333: UTF-8 bytes as latin-1
    assert data["query"] == "x=1&y=%20"
    assert data["protocol"] == "HTTP/1.1"
    assert data["scheme"] == "http"
    assert data["remote_addr"] == "127.0.0.1"
    assert isinstance(data["remote_port"], int)
    assert data["content_length"] is None and data["content_type"] is None
    assert headers["Server"].startswith("fastserve/")
    assert headers["Date"].endswith(" GMT")
    assert headers["Content-Type"] == "application/json"


def test_keep_alive_reuses_the_connection(server: LiveServer) -> None:
    conn = server.connect()
    try:
        ports, socks = set(), set()
        for i in range(5):
            conn.request("GET", f"/ka/{i}")
            response = conn.getresponse()
            data = json.loads(response.read())
            assert response.status == 200 and data["path"] == f"/ka/{i}"
            assert not response.will_close
            ports.add(data["remote_port"])
            socks.add(id(conn.sock))
    finally:
        conn.close()
    assert len(ports) == 1 and len(socks) == 1


def test_post_body(server: LiveServer) -> None:
    body = os.urandom(300_000)
    status, _, response = server.request(
        "/upload", method="POST", body=body, headers={"Content-Type": "application/octet-stream"}
    )
    data = json.loads(response)
    assert status == 200
    assert data["content_length"] == str(len(body))
    assert data["content_type"] == "application/octet-stream"
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload(server: LiveServer) -> None:
    pieces = [os.urandom(1000), os.urandom(70_000), b"end"]
    conn = server.connect()
    try:
        conn.request("POST", "/chunked", body=iter(pieces), encode_chunked=True)
        response = conn.getresponse()
        data = json.loads(response.read())
        # the connection stays usable after a chunked body
        conn.request("GET", "/after-chunked")
        after = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert data["input_terminated"] is True
    assert data["headers"]["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert data["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert after["path"] == "/after-chunked"


def test_streaming_response_is_chunked(server: LiveServer) -> None:
    conn = server.connect()
    try:
        conn.request("GET", "/stream")
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == b"0\n1\n2\n3\n4\n"
        conn.request("GET", "/after-stream")
        assert json.loads(conn.getresponse().read())["path"] == "/after-stream"
    finally:
        conn.close()


def test_head(server: LiveServer) -> None:
    status, headers, body = server.request("/head", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers["Content-Length"]) > 0


def test_large_response(server: LiveServer) -> None:
    status, headers, body = server.request("/big")
    assert status == 200
    assert len(body) == int(headers["Content-Length"]) == 4 * 1024 * 1024


def test_status_passthrough(server: LiveServer) -> None:
    status, _, body = server.request("/status/404")
    assert (status, body) == (404, b"")


def test_app_error_gives_500_and_keeps_serving(server: LiveServer) -> None:
    status, headers, body = server.request("/crash")
    assert status == 500
    assert b"Internal Server Error" in body
    assert headers["Connection"] == "close"
    log = server.wait_for_log("Error on request", "RuntimeError: crash requested")
    assert "Error on request" in log and "RuntimeError: crash requested" in log
    assert server.json("/after-crash")["path"] == "/after-crash"


def test_unix_socket(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", hostname="unix")
    conn = server.connect()
    try:
        paths = []
        for i in range(3):
            conn.request("POST", f"/unix/{i}", body=b"x" * i)
            response = conn.getresponse()
            data = json.loads(response.read())
            assert not response.will_close
            paths.append((data["path"], data["body_length"]))
    finally:
        conn.close()
    assert paths == [("/unix/0", 0), ("/unix/1", 1), ("/unix/2", 2)]
    assert data["remote_addr"] == "<local>"
    assert data["remote_port"] == 0


def test_make_server(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", mode="make_server")
    conn = server.connect()
    try:
        for i in range(3):
            conn.request("GET", f"/made/{i}")
            assert json.loads(conn.getresponse().read())["path"] == f"/made/{i}"
    finally:
        conn.close()


def test_non_threaded_server_speaks_http10_and_closes(
    start_server: Callable[..., LiveServer],
) -> None:
    """werkzeug's plain server: HTTP/1.0 status line, ``Connection: close``, close-delimited
    streaming."""
    server = start_server("echo", threaded=False)
    conn = server.connect()
    try:
        conn.request("GET", "/single")
        response = conn.getresponse()
        assert response.version == 10
        assert response.getheader("Connection") == "close"
        assert json.loads(response.read())["path"] == "/single"
        conn.request("GET", "/stream")  # http.client reconnects after the close
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") is None
        assert response.read() == b"0\n1\n2\n3\n4\n"
    finally:
        conn.close()


def test_processes(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", threaded=False, processes=2)
    conn = server.connect()
    try:
        for i in range(4):
            conn.request("GET", f"/forked/{i}")
            response = conn.getresponse()
            assert response.version == 11 and not response.will_close
            assert json.loads(response.read())["path"] == f"/forked/{i}"
    finally:
        conn.close()
